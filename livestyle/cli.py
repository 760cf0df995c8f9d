"""`livestyle`: subcommands that build configs and hand them on. No logic lives here."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys

from livestyle import __version__

EPILOG = """examples:
  livestyle run --style cartoon                      webcam 0 -> preview window
  livestyle run --style starry-night --vcam          also a virtual camera for Zoom/Meet/OBS
  livestyle run --source talk.mp4 --style cartoon --output talk-cartoon.mp4 --no-preview
  livestyle run --source photo.jpg --style the-kiss -o photo-kiss.png   an image (or folder -> folder)
  livestyle styles                                   the installed styles and where they come from
  livestyle cameras                                  the cameras here and their modes
  livestyle doctor                                   what works on this machine
  livestyle bench                                    frames per second and latency here
  livestyle train --style-image monet.jpg --name monet   make a style (needs .[train])
"""


def _run_parser(sub) -> None:
    p = sub.add_parser("run", help="stylize a webcam, video file or URL",
                       description="Stylize a webcam, file or URL into a window, a virtual "
                                   "camera and/or a video file.")
    p.add_argument("--style", action="append", required=True, metavar="NAME",
                   help="style name or .onnx path; repeat to preload several (keys n/p/1-9 switch)")
    p.add_argument("--source", default="0",
                   help="camera index, video file, URL, image, or folder of images (default 0)")
    p.add_argument("--size", default=None,
                   help="size asked of a camera, WxH (default 640x480); for what is written, "
                        "--output-size")
    p.add_argument("--fps", type=float, default=30.0, help="rate asked of a camera (default 30)")
    p.add_argument("--loop", action="store_true", help="replay a video file forever")
    p.add_argument("--backend", default="auto",
                   help="auto (fastest available), openvino, onnxruntime, torch, torch-cuda, tensorrt")
    p.add_argument("--scale", type=float, default=None,
                   help="processing size relative to the frame; 0.5 = generator at half size, "
                        "upscaled (default: auto: on a CPU full size up to 640x480, larger frames "
                        "at 640x360 worth of pixels; full size on a GPU; never larger than a "
                        "style's native side, e.g. the cartoon's 512-px long side)")
    p.add_argument("--blend", type=float, default=1.0, help="1 = fully stylized, 0 = original")
    p.add_argument("--stroke", type=float, default=1.0,
                   help="stroke scale, 0.5-4: 2 draws strokes and outlines twice as large (the "
                        "generator runs at half the processing size, upscaled); live: [ and ]")
    p.add_argument("--upscale", default="style",
                   help="how the smaller stylized frame is enlarged to the frame: the style's "
                        "own way (the cartoon: pixel for pixel, crisp, like its teacher; the "
                        "others: linear), linear (smoother), or nearest (default: style)")
    p.add_argument("--steady", type=float, default=None,
                   help="temporal steadying of a video, 0 (off) to 0.95: where the picture "
                        "did not change since the last frame, this share of the last result is "
                        "kept, so strokes on still walls and faces do not shimmer; whatever "
                        "moves is drawn anew at once (default 0.8)")
    p.add_argument("--vcam", action="store_true", help="also send to a virtual camera")
    p.add_argument("--vcam-device", default=None, help="e.g. /dev/video10 (default: first found)")
    p.add_argument("--vcam-backend", default=None,
                   help="pyvirtualcam backend: v4l2loopback, obs, unitycapture (default: auto)")
    p.add_argument("--output", "-o", default=None,
                   help="also write a video file (.mp4 H.264, .mkv, .mov, .avi); it appears when "
                        "the run ends, whole. For an image source an image (.png, .jpg...), for "
                        "a folder of images a folder (same names)")
    p.add_argument("--output-size", default=None, metavar="WxH",
                   help="size of what is written to --output and the virtual camera, e.g. "
                        "1280x720; 0 for one side keeps the aspect ratio (1280x0) (default: the "
                        "source's size)")
    p.add_argument("--overwrite", "-y", action="store_true",
                   help="replace --output if it exists (default: refuse; never the source)")
    p.add_argument("--no-audio", dest="audio", action="store_false",
                   help="write --output without the source video's sound (default: keep it, "
                        "copied as it is where the container takes it, else re-encoded)")
    p.add_argument("--no-preview", dest="preview", action="store_false", help="no window")
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0 = no limit)")
    p.add_argument("--threads", type=int, default=0, help="inference threads (0 = all cores)")
    p.add_argument("--snapshot-dir", default=".", help="where the s key saves PNGs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livestyle", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="Real-time neural style filter for webcams.")
    parser.add_argument("--version", action="version", version=f"livestyle {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _run_parser(sub)
    sub.add_parser("styles", help="list the installed styles, where each comes from",
                   description="List the installed styles: bundled and yours ($LIVESTYLE_STYLES), "
                               "which one is used when names clash, and files that cannot be "
                               "read. Exit 2 when $LIVESTYLE_STYLES is empty or not a folder.")
    c = sub.add_parser("cameras", help="list the cameras and the modes each offers",
                       description="List the cameras found and the modes each offers (size, "
                                   "fps, pixel format), asked of each device through OpenCV. "
                                   "Exit 0 when a camera gives a picture, 1 when none is found "
                                   "or none gives a picture.")
    c.add_argument("sources", nargs="*", metavar="SOURCE",
                   help="examine these instead of looking for cameras: a camera index, a "
                        "device such as /dev/video2, or any --source of `livestyle run`")
    sub.add_parser("doctor", help="check cameras, virtual camera, backends and GPU")
    # these two parse their own flags (see PASSTHROUGH)
    sub.add_parser("bench", help="measure frames per second and latency (--help for options)")
    sub.add_parser("train", help="train a style (needs .[train]; --help for options)")
    g = sub.add_parser("build", help="prebuild a TensorRT engine for a style (NVIDIA GPUs)")
    g.add_argument("--style", required=True)
    g.add_argument("--fp32", dest="fp16", action="store_false", help="build FP32 (default FP16)")
    g.add_argument("--force", action="store_true",
                   help="rebuild even when a valid cached engine exists")
    return parser


def _parse_size(text: str, flag: str = "--size") -> tuple[int, int]:
    from livestyle.config import ConfigError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"{flag} {text!r} is not WxH (for example 1280x720)") from None
    return w, h


def cmd_run(a) -> int:
    from livestyle.config import RunConfig, SourceConfig
    from livestyle.interrupts import HANGUP, STOP_SIGNALS, deferred_interrupts, leave_terminal

    with deferred_interrupts():  # the run's modules, and any native library they load
        from livestyle.keys import Controls
        from livestyle.pipeline import run

    signals: list[int] = []
    controls = Controls()

    def on_signal(signum, frame):
        # Ctrl-C, SIGTERM or SIGHUP: the loop ends after the frame it is on, so the outputs
        # hold whole frames and the report below is printed; a second signal, or one that
        # comes before the loop runs (loading, opening), interrupts at once. A hang-up comes
        # twice (the shell passes its own on, then the kernel sends one when the shell
        # exits): only the first counts, and it never cuts the finishing short
        hangup = signum == HANGUP
        if hangup:
            leave_terminal()  # the terminal is gone: what is printed now goes nowhere
            if signum in signals:
                return
        signals.append(signum)
        if not controls.request_stop() and not (hangup and controls.quit):
            raise KeyboardInterrupt

    from livestyle.progress import Progress

    w, h = _parse_size(a.size or "640x480")
    out_size = _parse_size(a.output_size, "--output-size") if a.output_size else None
    cfg = RunConfig(styles=tuple(a.style),
                    source=SourceConfig(a.source, w, h, a.fps, loop=a.loop),
                    backend=a.backend, scale=a.scale, blend=a.blend, stroke=a.stroke,
                    upscale=a.upscale,
                    **({} if a.steady is None else {"steady": a.steady}),
                    preview=a.preview,
                    vcam=a.vcam, vcam_device=a.vcam_device, vcam_backend=a.vcam_backend, output=a.output,
                    output_size=out_size,
                    overwrite=a.overwrite, audio=a.audio, snapshot_dir=a.snapshot_dir, max_frames=a.max_frames, threads=a.threads)
    progress = Progress()
    if a.size and not cfg.source.is_camera:
        progress.log(f"note: --size is what a camera is asked for; a file keeps its size "
                     f"(use --output-size {a.size} to resize what is written)")
    # `nohup livestyle ...` starts with SIGHUP ignored: it stays so
    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS
                if not (s == HANGUP and signal.getsignal(s) == signal.SIG_IGN)}
    try:
        stats = run(cfg, log=progress.log, controls=controls, progress=progress)
    finally:
        progress.finish()
        for s, handler in previous.items():
            signal.signal(s, handler)
    (pw, ph), (fw, fh) = stats.processing_size, stats.frame_size
    why = (f" for {fw}x{fh} frames ({stats.scale_reason}; enlarged to the frame after)"
           if stats.scale_reason else "")
    print(f"{stats.frames} frames in {stats.seconds:.1f} s ({stats.fps:.1f} fps), "
          f"{stats.dropped} dropped at the source; processing {pw}x{ph}{why} on {stats.backend}",
          file=sys.stderr)
    for written in stats.outputs:
        print(f"wrote {written}", file=sys.stderr)
    if signals:
        print("livestyle: stopped; camera and outputs released", file=sys.stderr)
        return 130
    if stats.incomplete:  # a truncated file: what was read is written, and the run says so
        print(f"livestyle: {stats.incomplete}; processed the {stats.frames} frames read",
              file=sys.stderr)
        return 1
    return 0


def cmd_styles(_a) -> int:
    import os
    from dataclasses import replace

    from livestyle.styles import BUNDLED_DIR, catalogue, user_dir, user_dir_problem

    env = os.environ.get("LIVESTYLE_STYLES", "").strip()
    problem = user_dir_problem()
    entries = catalogue(read_all=True)
    print(f"bundled: {BUNDLED_DIR}\nyours:   {user_dir()}"
          f"{'  ($LIVESTYLE_STYLES)' if env else ''} (overrides bundled styles of the same name)")
    if not entries:
        print("no styles installed.\n"
              "Make one with `livestyle train --style-image PAINTING.jpg --name NAME`.")
    i = 0
    for e in entries:
        if e.used:
            i += 1
        # the file's name is what --style takes, whatever name its metadata carries
        text = (replace(e.style, name=e.name).summary if e.style else
                f"{e.name:<16} UNREADABLE: {e.error}")
        where = e.origin + (f"; {e.note}" if e.note else "")
        print(f"{i:2}. {text}  ({where})" if e.used else f"    {text}  ({where})")
    if problem:
        print(f"livestyle: {problem}", file=sys.stderr)
        return 2
    return 0 if entries else 1


def cmd_build(a) -> int:
    from livestyle.backends.tensorrt import build_engine_for_style
    from livestyle.styles import resolve

    path = build_engine_for_style(resolve(a.style).path, fp16=a.fp16, force=a.force)
    print(f"engine ready: {path}")
    return 0


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt  # one clean shutdown path for Ctrl-C and SIGTERM


def _on_sighup(signum, frame):
    from livestyle.interrupts import leave_terminal

    leave_terminal()  # the terminal was closed: the line saying so goes nowhere, not to EIO
    raise KeyboardInterrupt


STOPPED = "\nlivestyle: stopped; camera and outputs released"


def main(argv: list[str] | None = None) -> int:
    """The CLI. Ctrl-C or SIGTERM at any moment, imports and start-up included, ends with
    one line and exit 130; the signal handlers in place before are put back on return."""
    from livestyle.paths import printable_names

    printable_names()  # a file name that is not UTF-8 prints as its own bytes
    from livestyle.interrupts import HANGUP, STOP_SIGNALS

    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
        if HANGUP is not None and previous[HANGUP] != signal.SIG_IGN:  # not under nohup
            signal.signal(HANGUP, _on_sighup)
        code = _main(argv)
        sys.stdout.flush()  # a reader that went away shows here, while we can still stay quiet
        return code
    except BrokenPipeError:
        # `livestyle styles | head`: the reader has what it wanted; stop as `ls | head`
        # does, silently. Point stdout at /dev/null so the interpreter's last flush of what
        # is still buffered does not fail again on the way out.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        return 128 + 13  # as a shell reports a process ended by SIGPIPE
    except KeyboardInterrupt:
        for s in previous:  # a second Ctrl-C while we say so must not print a traceback
            signal.signal(s, signal.SIG_IGN)
        print(STOPPED, file=sys.stderr)
        return 130
    finally:
        for s, handler in previous.items():
            if handler is not None:
                signal.signal(s, handler)


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if argv and argv[0] in ("bench", "train"):
        # their own parsers read the rest, so `livestyle train --help` shows the trainer's flags
        a = argparse.Namespace(command=argv[0], args=argv[1:])
    else:
        a = parser.parse_args(argv)
    from livestyle.interrupts import caused_by_ctrl_c, deferred_interrupts

    with deferred_interrupts():  # OpenCV and NumPy load here (errors -> camera, sinks), for
        from livestyle.errors import USER_ERRORS  # every command

    try:
        if a.command == "run":
            return cmd_run(a)
        if a.command == "styles":
            return cmd_styles(a)
        if a.command == "cameras":
            from livestyle.cameras import main as cameras

            return cameras(a.sources)
        if a.command == "doctor":
            from livestyle.doctor import main as doctor

            return doctor()
        if a.command == "bench":
            from livestyle.bench import main as bench

            return bench(a.args)
        if a.command == "train":
            try:
                try:  # installed from a wheel, the trainer lives inside the package
                    from livestyle.train.__main__ import main as train
                except ModuleNotFoundError as e:
                    if e.name not in ("livestyle.train", "livestyle.train.__main__"):
                        raise
                    from train.__main__ import main as train  # a source checkout
            except ImportError as e:
                print(f"livestyle train needs the trainer's packages ({e.name}): "
                      "pip install -e .[train]", file=sys.stderr)
                return 2
            return train(a.args)
        if a.command == "build":
            return cmd_build(a)
    except USER_ERRORS as e:
        if caused_by_ctrl_c(e):  # a Ctrl-C that a library re-raised as its own error
            raise KeyboardInterrupt from None
        print(f"livestyle: {e}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
