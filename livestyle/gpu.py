"""Is there a usable NVIDIA GPU? Asked of the CUDA driver itself, before any GPU library loads.

Constructing a TensorRT runtime with no device crashes the whole process, and pycuda fails to
import without libcuda, so every GPU path asks here first. ctypes talks to the driver
directly: no package is needed to ask, and the answer is the driver's, not a guess.
"""

from __future__ import annotations

import ctypes
import functools

# NVIDIA's own package index: TensorRT's libraries are downloaded from there (the PyPI
# tensorrt and tensorrt-*-libs packages hold none, only a step that fetches them from it)
NVIDIA_INDEX = "https://pypi.nvidia.com"


def _libcuda():
    for name in ("libcuda.so.1", "nvcuda.dll"):  # Linux, Windows
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


@functools.cache
def cuda_device_count() -> tuple[int, str]:
    """(number of CUDA devices, why zero) from the driver API: cuInit + cuDeviceGetCount."""
    lib = _libcuda()
    if lib is None:
        return 0, "no NVIDIA driver (libcuda) on this machine"
    if lib.cuInit(0) != 0:
        return 0, "the NVIDIA driver is present but cuInit failed (no GPU, or a driver mismatch)"
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return 0, "the NVIDIA driver reports no CUDA device"
    return count.value, ""


def has_cuda() -> bool:
    return cuda_device_count()[0] > 0


def driver_cuda_version() -> tuple[int, int] | None:
    """The newest CUDA version the installed driver supports, (major, minor), or None
    without a driver (cuDriverGetVersion: 13000 is CUDA 13.0; needs no cuInit)."""
    lib = _libcuda()
    version = ctypes.c_int(0)
    if lib is None or lib.cuDriverGetVersion(ctypes.byref(version)) != 0 or not version.value:
        return None
    return version.value // 1000, version.value % 1000 // 10


def tensorrt_install_hint(cuda: tuple[int, int] | None = None) -> str:
    """The exact command that installs TensorRT for this machine's driver (`cuda`: what
    driver_cuda_version() says; asked when not given).

    `pip install tensorrt` resolves to TensorRT 11 built for CUDA 13, which needs an NVIDIA
    driver of the 580 series or later; a driver for CUDA 12 (525 to 575) needs the -cu12
    packages. Either way the libraries come from NVIDIA's index, not PyPI.
    """
    cuda = driver_cuda_version() if cuda is None else cuda
    index = f"--extra-index-url {NVIDIA_INDEX}"
    rule = ("(pip install tensorrt is TensorRT 11 for CUDA 13, which needs NVIDIA driver 580 "
            "or later; with an older driver, for CUDA 12: pip install 'tensorrt-cu12>=10' "
            f"{index}; the libraries come from NVIDIA's index, {NVIDIA_INDEX}, not PyPI)")
    if cuda is None or cuda >= (13, 0):
        return f"pip install 'tensorrt>=10' {index} {rule}"
    if cuda >= (12, 0):
        return (f"this driver supports CUDA {cuda[0]}.{cuda[1]}, not 13: pip install "
                f"'tensorrt-cu12>=10' {index} (plain `pip install tensorrt` would install "
                "TensorRT 11 for CUDA 13, which needs NVIDIA driver 580 or later; the "
                f"libraries come from NVIDIA's index, {NVIDIA_INDEX}, not PyPI)")
    return (f"this driver supports only CUDA {cuda[0]}.{cuda[1]}; TensorRT 10 and later need "
            "CUDA 12 (NVIDIA driver 525 or later) or CUDA 13 (driver 580 or later): update "
            f"the driver, then pip install 'tensorrt>=10' {index}")


def gpu_memory_used_mib(index: int = 0) -> float | None:
    """Memory in use on GPU `index` as NVML counts it (every process's, the CUDA contexts
    included), in MiB; None where NVML is absent. Asks NVML, not CUDA, so it needs no context
    and makes none. NVML numbers the GPUs in PCI order, which CUDA_VISIBLE_DEVICES does not
    change."""
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return None

    class Memory(ctypes.Structure):  # nvmlMemory_t
        _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong),
                    ("used", ctypes.c_ulonglong)]

    handle, memory = ctypes.c_void_p(), Memory()
    if nvml.nvmlInit_v2() != 0:
        return None
    try:
        if (nvml.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) != 0
                or nvml.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(memory)) != 0):
            return None
        return round(memory.used / 2**20, 1)
    finally:
        nvml.nvmlShutdown()
