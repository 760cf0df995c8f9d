"""Is there a usable NVIDIA GPU? Asked of the CUDA driver itself, before any GPU library loads.

Constructing a TensorRT runtime with no device crashes the whole process, and pycuda fails to
import without libcuda, so every GPU path asks here first. ctypes talks to the driver
directly: no package is needed to ask, and the answer is the driver's, not a guess.
"""

from __future__ import annotations

import ctypes
import functools


@functools.cache
def cuda_device_count() -> tuple[int, str]:
    """(number of CUDA devices, why zero) from the driver API: cuInit + cuDeviceGetCount."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        try:
            lib = ctypes.CDLL("nvcuda.dll")  # Windows
        except OSError:
            return 0, "no NVIDIA driver (libcuda) on this machine"
    if lib.cuInit(0) != 0:
        return 0, "the NVIDIA driver is present but cuInit failed (no GPU, or a driver mismatch)"
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return 0, "the NVIDIA driver reports no CUDA device"
    return count.value, ""


def has_cuda() -> bool:
    return cuda_device_count()[0] > 0
