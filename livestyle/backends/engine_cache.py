"""The TensorRT plan cache: one file per (model, TensorRT, GPU, precision, profile).

A serialized TensorRT engine ("plan") only runs on the TensorRT version and the GPU model it
was built with, and building one takes about a minute, so plans are cached on disk under a
key made from everything the plan depends on. No GPU library is imported here: the caller
passes the TensorRT version and the GPU's identity in.

Folder: $LIVESTYLE_CACHE, else $XDG_CACHE_HOME/livestyle/engines, else
~/.cache/livestyle/engines.

File layout (one entry):
    b"LSTRT1\\n"                      magic: format 1 of this layout
    uint32 little-endian N           length of the header
    N bytes of UTF-8 JSON            the key fields, extra build notes, payload_sha256/size
    the serialized plan              exactly payload_size bytes

The header is checked against what the caller expects before the plan is handed out, so a
plan copied between machines or left over from another TensorRT version is refused with a
reason instead of crashing TensorRT's deserializer; the payload hash catches truncation and
bit rot. Writes go to a temporary file in the same folder and are renamed into place, so a
reader never sees half an entry, whatever interrupts the writer.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from livestyle.atomic import atomic_open

MAGIC = b"LSTRT1\n"
_LEN = struct.Struct("<I")
_MAX_HEADER = 1 << 20  # a header is a few hundred bytes; anything near this is corruption
PRECISIONS = ("fp16", "fp32")
_STALE_TEMP_S = 3600  # temp files older than this were left by a killed writer

__all__ = ["MAGIC", "ReadResult", "cache_dir", "cache_key", "cache_path", "file_sha256",
           "key_fields", "read_entry", "write_entry"]


def cache_dir() -> Path:
    """Where plans live; the folder is created on first write, not here."""
    explicit = os.environ.get("LIVESTYLE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "livestyle" / "engines"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _normalized(value):
    """JSON round trip: tuples become lists, so expected and stored values compare equal."""
    return json.loads(json.dumps(value, sort_keys=True))


def key_fields(*, model_sha256: str, tensorrt_version: str, gpu_name: str,
               compute_capability: str, precision: str, profile: Mapping,
               recipe: int = 1) -> dict:
    """Everything a plan depends on, as the dict that is hashed and stored in the header.

    `profile` maps "min"/"opt"/"max" to input shapes. `recipe` is the builder's own version:
    the caller bumps it when it changes how plans are built (flags, number of profiles), which
    retires every plan built the old way.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    missing = {"min", "opt", "max"} - set(profile)
    if missing:
        raise ValueError(f"profile lacks {sorted(missing)}")
    return _normalized({
        "model_sha256": model_sha256,
        "tensorrt_version": str(tensorrt_version),
        "gpu_name": gpu_name,
        "compute_capability": str(compute_capability),
        "precision": precision,
        "profile": {k: [int(d) for d in profile[k]] for k in ("min", "opt", "max")},
        "recipe": int(recipe),
    })


def cache_key(fields: Mapping) -> str:
    """sha256 hex of the key fields in canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(_normalized(dict(fields)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def cache_path(key: str, directory: str | Path | None = None) -> Path:
    return Path(directory if directory is not None else cache_dir()) / f"{key}.plan"


def write_entry(path: str | Path, header_fields: Mapping, plan_bytes) -> Path:
    """Write one entry atomically: all of it lands at `path`, or nothing does.

    `plan_bytes` is anything with the buffer protocol (bytes, memoryview, TensorRT's
    IHostMemory). `header_fields` must be JSON-serializable; payload_sha256 and payload_size
    are added here. On any exception, KeyboardInterrupt included, the temporary file is
    removed and an entry already at `path` is left as it was.
    """
    path = Path(path)
    payload = memoryview(plan_bytes).cast("B")
    header = dict(_normalized(dict(header_fields)))
    header["payload_sha256"] = hashlib.sha256(payload).hexdigest()
    header["payload_size"] = payload.nbytes
    header_bytes = json.dumps(header, sort_keys=True).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale_temps(path.parent)
    with atomic_open(path) as f:  # fsynced before the rename: the data reaches disk first
        f.write(MAGIC)
        f.write(_LEN.pack(len(header_bytes)))
        f.write(header_bytes)
        f.write(payload)
    return path


def _sweep_stale_temps(directory: Path) -> None:
    """Remove temp files a killed writer (SIGKILL, power loss) could not clean up itself."""
    now = time.time()
    for p in directory.glob(".*.tmp"):
        try:
            if now - p.stat().st_mtime > _STALE_TEMP_S:
                p.unlink()
        except OSError:
            pass  # another process got there first, or it is not ours to remove


@dataclass
class ReadResult:
    """What `read_entry` found. `plan` is None when the caller must rebuild; `reason` says why
    (empty on a hit). `header` is whatever could be parsed (empty if nothing could)."""

    plan: bytes | None
    reason: str = ""
    header: dict = field(default_factory=dict)
    missing: bool = False  # no file at all: the ordinary first run, not worth a warning

    def __bool__(self) -> bool:
        return self.plan is not None


def read_entry(path: str | Path, expected_fields: Mapping) -> ReadResult:
    """The plan stored at `path` if the file is whole and was built for `expected_fields`.

    Never raises for a bad file: missing, truncated, corrupt (bad magic, bad JSON, payload
    hash mismatch) or mismatched (another TensorRT version, GPU, precision, model, profile)
    all give plan=None and a reason, and the caller rebuilds over it.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ReadResult(None, f"no cached engine at {path}", missing=True)
    except OSError as e:
        return ReadResult(None, f"cannot read {path}: {e}")
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            return ReadResult(None, "truncated: the file ends inside the magic bytes")
        return ReadResult(None, "not a livestyle engine file (bad magic bytes)")
    start = len(MAGIC) + _LEN.size
    if len(data) < start:
        return ReadResult(None, "truncated: the file ends inside the header length")
    (n,) = _LEN.unpack_from(data, len(MAGIC))
    if n > _MAX_HEADER:
        return ReadResult(None, f"corrupt header: length {n} is implausible")
    if len(data) < start + n:
        return ReadResult(None, f"truncated: header of {n} bytes, {len(data) - start} present")
    try:
        header = json.loads(data[start:start + n].decode())
    except (UnicodeDecodeError, ValueError) as e:
        return ReadResult(None, f"corrupt header: not JSON ({e})")
    if not isinstance(header, dict):
        return ReadResult(None, "corrupt header: not a JSON object")
    for k, want in _normalized(dict(expected_fields)).items():
        if k not in header:
            return ReadResult(None, f"header lacks {k!r} (written by another livestyle)",
                              header)
        if header[k] != want:
            return ReadResult(None, f"built for another {k.replace('_', ' ')}: "
                                    f"{_short(header[k])}, need {_short(want)}", header)
    payload = memoryview(data)[start + n:]
    size = header.get("payload_size")
    if size != payload.nbytes:
        return ReadResult(None, f"truncated or padded payload: {payload.nbytes} bytes, "
                                f"header says {size}", header)
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        return ReadResult(None, "corrupt payload: sha256 does not match the header", header)
    return ReadResult(bytes(payload), "", header)


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."
