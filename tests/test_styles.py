"""The style catalogue as users meet it: where each style comes from, which one wins a name
clash, broken user styles, and a wrong $LIVESTYLE_STYLES. Real CLI subprocesses, real files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from livestyle.styles import BUNDLED_DIR, catalogue, resolve, style_files
from tests.conftest import CLIP, REPO, need


def livestyle(*args, env=None, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "livestyle", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def _line(stdout: str, name: str, numbered: bool) -> str:
    pattern = rf"\s*\d+\. {re.escape(name)} " if numbered else rf"    {re.escape(name)} "
    found = [line for line in stdout.splitlines() if re.match(pattern, line)]
    assert len(found) == 1, stdout
    return found[0]


@pytest.fixture(scope="module")
def bundled_name() -> str:
    files = style_files([BUNDLED_DIR])
    if not files:
        pytest.skip(f"no bundled styles in {BUNDLED_DIR}")
    return sorted(files)[-1]


@pytest.fixture()
def home(tmp_path):
    """An empty home, so the default user styles folder is known to hold nothing."""
    h = tmp_path / "home"
    h.mkdir()
    return {"HOME": str(h)}


@pytest.fixture()
def broken_user_dir(tmp_path, bundled_name, styles_dir) -> tuple:
    """A user folder with a truncated copy of a bundled style, and one good style of its own."""
    d = tmp_path / "mine"
    d.mkdir()
    data = (BUNDLED_DIR / f"{bundled_name}.onnx").read_bytes()
    (d / f"{bundled_name}.onnx").write_bytes(data[: len(data) // 3])
    shutil.copy(styles_dir / "rand-a.onnx", d)
    return d, bundled_name


def test_broken_user_style_does_not_hide_the_bundled_one(broken_user_dir, home):
    d, name = broken_user_dir
    r = livestyle("styles", env={"LIVESTYLE_STYLES": str(d), **home})
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    used = _line(r.stdout, name, numbered=True)
    assert "UNREADABLE" not in used and "(bundled; used because your" in used, r.stdout
    hidden = _line(r.stdout, name, numbered=False)
    assert "UNREADABLE" in hidden and str(d / f"{name}.onnx") in hidden, r.stdout
    assert f"(user; the bundled {name} is used instead)" in hidden, r.stdout
    assert "(user)" in _line(r.stdout, "rand-a", numbered=True), r.stdout
    # the run uses the bundled style and says why
    out = d.parent / "out.mp4"
    r = livestyle("run", "--style", name, "--source", str(need(CLIP)), "--max-frames", "3",
                  "--no-preview", "--output", str(out), env={"LIVESTYLE_STYLES": str(d), **home})
    assert r.returncode == 0, r.stderr
    assert f"using the bundled {name} ({BUNDLED_DIR / (name + '.onnx')}) instead" in r.stderr
    assert f"fix or delete {d / (name + '.onnx')}" in r.stderr, r.stderr
    assert out.is_file()


def test_doctor_reports_the_broken_user_style(broken_user_dir, home):
    d, name = broken_user_dir
    bundled = len(style_files([BUNDLED_DIR]))
    r = livestyle("doctor", env={"LIVESTYLE_STYLES": str(d), **home, "DISPLAY": ""})
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    # the bundled styles and the user's good one, not the broken file
    assert f"ok styles: {bundled + 1} installed" in r.stdout, r.stdout
    assert f"-- style {name} (user) is BROKEN: cannot read model {d / (name + '.onnx')}" in r.stdout
    assert f"-> the bundled {name} is used instead" in r.stdout, r.stdout


def test_resolve_falls_back_to_the_bundled_style_with_a_warning(broken_user_dir, capsys):
    d, name = broken_user_dir
    dirs = [BUNDLED_DIR, d]
    assert resolve(name, dirs).path == BUNDLED_DIR / f"{name}.onnx"
    assert f"using the bundled {name}" in capsys.readouterr().err
    assert resolve("rand-a", dirs).path == d / "rand-a.onnx"
    # only the clashing files were opened: a broken file of a new name is listed, unread
    (d / "zz-broken.onnx").write_bytes(b"not a model")
    (entry,) = [e for e in catalogue(dirs) if e.name == "zz-broken"]
    assert entry.used and entry.origin == "user" and not entry.error and entry.style is None
    (entry,) = [e for e in catalogue(dirs, read_all=True) if e.name == "zz-broken"]
    assert "truncated or not an ONNX model" in entry.error


def test_a_good_user_style_wins_a_clash_and_the_listing_says_so(tmp_path, bundled_name,
                                                                   styles_dir, home):
    d = tmp_path / "mine"
    d.mkdir()
    shutil.copy(styles_dir / "rand-b.onnx", d / f"{bundled_name}.onnx")
    r = livestyle("styles", env={"LIVESTYLE_STYLES": str(d), **home})
    assert r.returncode == 0, r.stderr
    assert f"yours:   {d}  ($LIVESTYLE_STYLES)" in r.stdout, r.stdout
    used = _line(r.stdout, bundled_name, numbered=True)
    assert used.endswith(f"(user; overrides the bundled {bundled_name} "
                         f"({BUNDLED_DIR / (bundled_name + '.onnx')}))"), r.stdout
    hidden = _line(r.stdout, bundled_name, numbered=False)
    assert hidden.endswith(f"(bundled; overridden by the user {bundled_name} "
                           f"({d / (bundled_name + '.onnx')}))"), r.stdout
    assert resolve(bundled_name, [BUNDLED_DIR, d]).path == d / f"{bundled_name}.onnx"
    # every other bundled style says where it comes from
    others = [n for n in style_files([BUNDLED_DIR]) if n != bundled_name]
    for n in others:
        assert _line(r.stdout, n, numbered=True).endswith("(bundled)"), r.stdout


def test_empty_livestyle_styles_is_reported_and_never_scans_the_current_folder(tmp_path,
                                                                               styles_dir, home):
    cwd = tmp_path / "work"
    cwd.mkdir()
    shutil.copy(styles_dir / "rand-a.onnx", cwd / "stray.onnx")
    env = {"LIVESTYLE_STYLES": "", **home}
    r = livestyle("styles", env=env, cwd=cwd)
    assert r.returncode == 2, r.stderr
    assert "stray" not in r.stdout, r.stdout
    assert "LIVESTYLE_STYLES is set but empty" in r.stderr, r.stderr
    assert f"yours:   {home['HOME']}/.local/share/livestyle/styles " in r.stdout, r.stdout
    r = livestyle("run", "--style", "stray", "--no-preview", "--output", "o.mp4", env=env,
                  cwd=cwd)
    assert r.returncode == 2 and "unknown style 'stray'" in r.stderr, r.stderr
    assert "LIVESTYLE_STYLES is set but empty" in r.stderr, r.stderr


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_wrong_livestyle_styles_is_reported(kind, tmp_path, styles_dir, home):
    target = tmp_path / "nope"
    if kind == "file":
        shutil.copy(styles_dir / "rand-a.onnx", target)
    why = "does not exist" if kind == "missing" else "is a file, not a folder"
    r = livestyle("styles", env={"LIVESTYLE_STYLES": str(target), **home}, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert f"LIVESTYLE_STYLES={target} {why}" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "rand-a" not in r.stdout, r.stdout
    if kind == "missing":
        r = livestyle("doctor", env={"LIVESTYLE_STYLES": str(target), **home, "DISPLAY": ""})
        assert r.returncode == 0, r.stderr
        assert f"-- styles folder: LIVESTYLE_STYLES={target} does not exist" in r.stdout, r.stdout


@pytest.mark.parametrize("training, side", [
    ({"teacher": "cartoon", "long_side": 512}, 512),
    ({"style_image": "starry.jpg", "long_side": 384}, 384),  # strokes drawn at 384x288
    ({"style_image": "starry.jpg", "long_side": 0}, None),  # photos at many sizes: any size
    ({"teacher": "sketch"}, None),  # made before the long side was recorded
    ({}, None),
])
def test_native_side_is_the_training_long_side(training, side, tmp_path):
    from livestyle.styles import Style

    assert Style("s", tmp_path / "s.onnx", "", {}, 0, training).native_side == side


def test_a_style_says_how_it_is_enlarged_and_old_files_stay_linear(tmp_path):
    """export_onnx records the upscale; a file without the key (exported before it existed)
    reads as linear; export refuses a name the runtime would not know."""
    from livestyle.styles import read_style
    from tests.conftest import random_generator
    from train.export import export_onnx

    g = random_generator()
    near = export_onnx(g, tmp_path / "near.onnx", style="near", upscale="nearest")
    assert read_style(near).upscale == "nearest"
    assert read_style(export_onnx(g, tmp_path / "lin.onnx", style="lin")).upscale == "linear"
    import onnx

    model = onnx.load(str(near))
    kept = [p for p in model.metadata_props if p.key != "livestyle.upscale"]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, str(tmp_path / "old.onnx"))
    assert read_style(tmp_path / "old.onnx").upscale == "linear"
    with pytest.raises(ValueError, match="'cubic' is not one of linear, nearest"):
        export_onnx(g, tmp_path / "bad.onnx", style="bad", upscale="cubic")
    assert not (tmp_path / "bad.onnx").exists()


def test_a_style_moved_to_another_native_side_keeps_its_weights_and_record(tmp_path):
    """set_native_side: only the side changes; the copy draws exactly what the original does."""
    import numpy as np
    import onnxruntime as ort

    from livestyle.styles import read_style
    from tests.conftest import random_generator
    from train.export import export_onnx, set_native_side

    src = export_onnx(random_generator(), tmp_path / "a.onnx", style="a", description="d",
                      training={"long_side": 384, "style_weight": 2.5}, upscale="nearest")
    moved = read_style(set_native_side(src, tmp_path / "b.onnx", 320))
    assert moved.native_side == 320 and read_style(src).native_side == 384
    assert moved.training == {"long_side": 384, "style_weight": 2.5, "native_side": 320}
    assert (moved.description, moved.upscale) == ("d", "nearest")
    frame = np.random.default_rng(0).integers(0, 256, (1, 40, 56, 3), dtype=np.uint8)
    a, b = (ort.InferenceSession(str(f), providers=["CPUExecutionProvider"]).run(
        None, {"frame": frame})[0] for f in (src, moved.path))
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="at least 16 px"):
        set_native_side(src, tmp_path / "c.onnx", 8)
    assert not (tmp_path / "c.onnx").exists()
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot read model"):
        set_native_side(tmp_path / "junk.onnx", tmp_path / "d.onnx", 320)
    assert not (tmp_path / "d.onnx").exists()


@pytest.mark.parametrize("training,side", [
    ({"long_side": 384}, 384),  # photos read at the side the style runs at
    ({"long_side": 0}, None),  # photos at a size of their own: any size
    ({"long_side": 0, "native_side": 384}, 384),  # ...unless the style names its side
    ({"long_side": 512, "native_side": 0}, 512),
    ({}, None),
])
def test_a_styles_native_side_comes_from_how_it_was_trained(training, side):
    from livestyle.styles import native_side

    assert native_side(training) == side


@pytest.mark.parametrize("path", sorted(BUNDLED_DIR.glob("*.onnx")), ids=lambda p: p.stem)
def test_every_bundled_style_rebuilds_in_pytorch_as_onnx_runtime_runs_it(path):
    """The torch backends rebuild the network from the style's metadata and weights: a field
    the generator no longer knows (seven paintings briefly carried one) would refuse to load
    there while ONNX Runtime and OpenVINO ran the file fine."""
    import numpy as np

    from livestyle import backends

    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    with backends.create("torch", path) as ours, backends.create("onnxruntime", path) as theirs:
        a, b = ours.infer(frame), theirs.infer(frame)
    assert np.abs(a.astype(int) - b).max() <= 2


@pytest.mark.parametrize("name", ["great-wave"])
def test_a_style_no_longer_bundled_says_so_instead_of_guessing_another(name):
    """great-wave is one letter from grande-jatte: its name once bundled must get the reason
    it is gone and how to have it back, not a guess at another style."""
    from livestyle.styles import RETIRED, StyleError

    assert not (BUNDLED_DIR / f"{name}.onnx").exists() and name in RETIRED
    with pytest.raises(StyleError) as e:
        resolve(name, [BUNDLED_DIR])
    assert "no longer" in str(e.value) and "make_styles.sh" in str(e.value)
    assert "Did you mean" not in str(e.value)
