"""The catalogue of styles: self-describing ONNX generators in engines/ and the user's folder.

A style is one `<name>.onnx` file whose metadata (written by train/export.py) says what it is.
Search order, later folders overriding earlier ones on a name clash: the bundled `engines/`,
then `$LIVESTYLE_STYLES` (default ~/.local/share/livestyle/styles). A user style that cannot
be read never hides a bundled style of its name: the bundled one is used, and `livestyle
styles`, `livestyle doctor` and `run` say so.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from livestyle.frames import UPSCALE_FLAGS

FORMAT_VERSION = 1
IO_CONVENTION = "uint8 BGR NHWC in, uint8 BGR NHWC out, any height and width"
# an installed wheel carries the styles inside the package (livestyle/engines); a source
# checkout keeps them in the repository's top-level engines/
_HERE = Path(__file__).resolve().parent
BUNDLED_DIR = _HERE / "engines" if (_HERE / "engines").is_dir() else _HERE.parent / "engines"


BUNDLED, USER = "bundled", "user"


def default_user_dir() -> Path:
    return Path.home() / ".local" / "share" / "livestyle" / "styles"


def user_dir() -> Path:
    """$LIVESTYLE_STYLES, or the default folder when it is unset or empty (an empty value is
    never the current folder; `user_dir_problem` reports it)."""
    env = os.environ.get("LIVESTYLE_STYLES", "")
    return Path(env).expanduser() if env.strip() else default_user_dir()


def user_dir_problem() -> str:
    """What is wrong with $LIVESTYLE_STYLES ('' if it is unset or names a folder). A folder
    that does not exist yet is fine when it is the default: nobody has trained a style."""
    env = os.environ.get("LIVESTYLE_STYLES")
    if env is None:
        d = default_user_dir()
        return f"the styles folder {d} is a file, not a folder" if d.exists() and not d.is_dir() else ""
    if not env.strip():
        return (f"LIVESTYLE_STYLES is set but empty, so your styles are read from the default "
                f"folder {default_user_dir()}; unset it or set it to your styles folder")
    p = Path(env).expanduser()
    if not p.exists():
        return (f"LIVESTYLE_STYLES={env} does not exist, so no styles of yours are listed; "
                "create the folder or fix the variable")
    if not p.is_dir():
        return (f"LIVESTYLE_STYLES={env} is a file, not a folder, so no styles of yours are "
                "listed; set it to the folder that holds your .onnx styles")
    return ""


class StyleError(ValueError):
    """A style that cannot be found or read; the message says what to do."""


def native_side(training: dict) -> int | None:
    """The long side (pixels) a style's look is defined at, from its training config, or None
    (any size). A network learns its strokes and outlines at the scale of its training photos
    and draws finer ones on larger frames: a painting trained on photos of a 384-px long side
    draws brush strokes a viewer sees when it runs at 384x288 and is enlarged, and a teacher's
    student learned the teacher's strokes at its long side (the cartoon teacher itself works
    at 512 px). `--scale auto` runs a style there and upscales. A style trained on photos
    read at a size of their own (long_side 0) may name its side (native_side)."""
    side = training.get("native_side") or training.get("long_side")
    return int(side) if side else None


@dataclass(frozen=True)
class Style:
    name: str
    path: Path
    description: str
    generator: dict  # GeneratorConfig as a dict
    macs_per_pixel: int
    training: dict
    upscale: str = "linear"  # how its output is enlarged to the frame (frames.UPSCALE_FLAGS)

    @property
    def native_side(self) -> int | None:
        return native_side(self.training)

    @property
    def summary(self) -> str:
        size_kb = self.path.stat().st_size / 1024
        return (f"{self.name:<16} {self.description or '(no description)'}  "
                f"[{self.macs_per_pixel} MAC/px, {size_kb:.0f} KB]")


def read_style(path: str | Path) -> Style:
    """Read a style's metadata without building an inference session."""
    import onnx  # the metadata lives in the protobuf; onnx reads it without the weights' cost

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises several types for a bad file
        raise StyleError(
            f"cannot read model {path}: {e.__class__.__name__}: {e}. The file is truncated or "
            "not an ONNX model; re-export it with `livestyle train` or delete it."
        ) from None
    meta = {p.key: p.value for p in model.metadata_props}
    missing = [k for k in ("livestyle.format", "livestyle.style", "livestyle.generator")
               if k not in meta]
    if missing:
        raise StyleError(
            f"model {path} lacks livestyle metadata ({', '.join(missing)}); it was not made by "
            "`livestyle train` (train/export.py), which writes the metadata the runtime needs"
        )
    try:
        version = int(meta["livestyle.format"])
        style = Style(
            # the file's name is what --style takes and what every log names, whatever name
            # the metadata was trained under (a copied or renamed file keeps the old one)
            name=path.stem,
            path=path,
            description=meta.get("livestyle.description", ""),
            generator=json.loads(meta["livestyle.generator"]),
            macs_per_pixel=int(meta.get("livestyle.macs_per_pixel", 0)),
            training=json.loads(meta.get("livestyle.training", "{}")),
            upscale=meta.get("livestyle.upscale", "linear"),
        )
        if not isinstance(style.generator, dict):
            raise TypeError(f"livestyle.generator is {style.generator!r}, not an object")
        if style.upscale not in UPSCALE_FLAGS:
            raise ValueError(f"livestyle.upscale is {style.upscale!r}, not one of "
                             f"{', '.join(UPSCALE_FLAGS)}")
    except (ValueError, TypeError) as e:
        raise StyleError(f"model {path} has malformed livestyle metadata: {e}") from None
    if version > FORMAT_VERSION:
        raise StyleError(f"model {path} has format {version}, newer than this livestyle "
                         f"understands ({FORMAT_VERSION}); upgrade livestyle")
    bad_io = _io_mismatch(model.graph)
    if bad_io:
        raise StyleError(f"model {path} is not a livestyle generator: {bad_io} (expected "
                         f"{IO_CONVENTION}); re-export it with `livestyle train`")
    return style


def _io_mismatch(graph) -> str:
    """What is wrong with the graph's inputs and outputs for IO_CONVENTION ('' if nothing)."""
    from onnx import TensorProto

    weights = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    if len(inputs) != 1 or len(graph.output) != 1:
        return f"{len(inputs)} inputs and {len(graph.output)} outputs"
    for kind, v in (("input", inputs[0]), ("output", graph.output[0])):
        t = v.type.tensor_type
        dims = [d.dim_value for d in t.shape.dim]
        if t.elem_type != TensorProto.UINT8:
            return f"its {kind} is {TensorProto.DataType.Name(t.elem_type).lower()}"
        if len(dims) == 4 and dims[1] == 3 and dims[3] != 3:
            return (f"its {kind} is channels-first (NCHW, shape {_shape(t)}), but livestyle "
                    "passes frames channels-last (NHWC: height, width, then 3 colours)")
        if len(dims) != 4 or dims[3] not in (0, 3):  # 0: a named (free) dimension
            return f"its {kind} has shape {_shape(t)}"
    return ""


def _shape(t) -> str:
    """A tensor type's shape as a user reads it: [1, 3, h, w], free dimensions by name."""
    return "[" + ", ".join(str(d.dim_value) if d.dim_value else (d.dim_param or "?")
                           for d in t.shape.dim) + "]"


@dataclass
class Entry:
    """One `<name>.onnx` found in a search folder, and whether it is the one used."""

    name: str
    path: Path
    origin: str  # BUNDLED or USER
    used: bool = True
    error: str = ""  # why it cannot be read ('' when it was not read, or reads fine)
    note: str = ""  # the clash, when another file has the same name
    style: Style | None = None  # its metadata, when it was read


def _folders(dirs: list[Path] | None) -> list[tuple[Path, str]]:
    if dirs is None:
        return [(BUNDLED_DIR, BUNDLED), (user_dir(), USER)]
    bundled = BUNDLED_DIR.resolve()
    return [(d, BUNDLED if d.resolve() == bundled else USER) for d in dirs]


def _read(e: Entry) -> None:
    try:
        e.style = read_style(e.path)
    except StyleError as err:
        e.error = str(err)


def catalogue(dirs: list[Path] | None = None, read_all: bool = False) -> list[Entry]:
    """Every style file in the search folders, in listing order, each marked used or not.

    A later folder's file overrides an earlier one of the same name, unless it cannot be read:
    then the earlier one stays in use and the broken one says why. Only clashing files are
    opened, unless `read_all` (which also fills `error` for every other unreadable file)."""
    by_name: dict[str, list[Entry]] = {}
    seen: set[Path] = set()
    for d, origin in _folders(dirs):
        if d.resolve() in seen:  # $LIVESTYLE_STYLES may name the bundled folder itself
            continue
        seen.add(d.resolve())
        if d.is_dir():
            for p in sorted(d.glob("*.onnx")):
                by_name.setdefault(p.stem, []).append(Entry(p.stem, p, origin))
    out: list[Entry] = []
    for name in by_name:  # bundled names first, then the user's new ones
        entries = by_name[name]
        if read_all or len(entries) > 1:
            for e in entries:
                _read(e)
        winner = entries[-1]
        for e in reversed(entries):  # the last readable one wins; all broken: the last
            if not e.error:
                winner = e
                break
        for e in entries:
            e.used = e is winner
            if len(entries) == 1:
                continue
            if e is winner and e is not entries[-1]:
                broken = entries[-1]
                e.note = (f"used because your {name} ({broken.path}) cannot be read")
            elif e is winner:
                e.note = "overrides " + ", ".join(f"the {o.origin} {name} ({o.path})"
                                                  for o in entries if o is not e)
            elif e.error:
                e.note = f"the {winner.origin} {name} is used instead"
            else:
                e.note = f"overridden by the {winner.origin} {name} ({winner.path})"
        out.append(winner)  # the one used first, then what it hides
        out.extend(e for e in entries if e is not winner)
    return out


def style_files(dirs: list[Path] | None = None) -> dict[str, Path]:
    """name -> path of the file used for every style name (only clashing files are opened)."""
    return {e.name: e.path for e in catalogue(dirs) if e.used}


_warned: set = set()  # what resolve has warned about, once per process


# styles that were bundled once and are not any more, with the date they left the bundle
RETIRED = {"great-wave": "2026-12-05"}


def resolve(name_or_path: str, dirs: list[Path] | None = None) -> Style:
    """A style by name, or an .onnx path; unknown names list the known ones."""
    p = Path(name_or_path)
    if p.suffix == ".onnx" or os.sep in name_or_path:
        if not p.is_file():
            raise StyleError(f"model file not found: {p}")
        return read_style(p)
    entries = catalogue(dirs)
    used = {e.name: e for e in entries if e.used}
    files = {name: e.path for name, e in used.items()}
    problem = user_dir_problem() if dirs is None else ""
    if problem and "LIVESTYLE_STYLES" not in _warned:
        _warned.add("LIVESTYLE_STYLES")
        print(f"livestyle: warning: {problem}", file=sys.stderr)
    for e in entries:
        if e.name == name_or_path and not e.used and e.error and e.path not in _warned:
            _warned.add(e.path)
            print(f"livestyle: warning: {e.error}\n  -> using the {used[e.name].origin} "
                  f"{e.name} ({files[e.name]}) instead; fix or delete {e.path}", file=sys.stderr)
    if name_or_path in files:
        return read_style(files[name_or_path])
    why = f" ({problem})" if problem else ""
    if not files:
        raise StyleError(f"unknown style {name_or_path!r}: no styles are installed "
                         f"(looked in {BUNDLED_DIR} and {user_dir()}){why}; train one with "
                         "`livestyle train` or pass a model path")
    if name_or_path in RETIRED:
        hint = (f" It was bundled until {RETIRED[name_or_path]}, and is no longer: it did not "
                "reach our quality floors (docs/paintings.md in the source). Train it again "
                "with `bash train/make_styles.sh` from a source checkout (uncomment its line in "
                "train/paintings.txt), or pass the .onnx of an older version as a path.")
    else:
        near = difflib.get_close_matches(name_or_path, list(files), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
    raise StyleError(f"unknown style {name_or_path!r}.{hint} Installed: {', '.join(files)} "
                     f"(`livestyle styles` lists them).{why}")
