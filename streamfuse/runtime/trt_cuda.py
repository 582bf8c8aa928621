"""The CUDA runtime calls the TensorRT backend needs, through cuda-python, plus the "can TensorRT run here" probe.

Nothing here is imported by the CPU path: ``streamfuse.runtime.tensorrt`` imports this module lazily, and this
module imports ``tensorrt`` and ``cuda`` only inside functions. Every failure becomes one BackendUnavailable line.
"""

from __future__ import annotations

import ctypes
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from streamfuse.runtime.base import BackendUnavailable

INSTALL_HINT = "install with `pip install streamfuse[tensorrt]` on a machine with an NVIDIA GPU"
FALLBACK_HINT = "use backend=onnxruntime instead"


@dataclass(frozen=True)
class GpuInfo:
    """What a TensorRT plan is specific to on the device side."""

    name: str
    compute_capability: str  # "major.minor"


def import_cudart() -> ModuleType:
    """The cuda-python runtime module (``cuda.bindings.runtime`` in cuda-python >= 12.6, ``cuda.cudart`` before)."""
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
        except Exception as exc:  # noqa: BLE001 - installed, but its CUDA libraries do not load
            raise BackendUnavailable(f"cuda-python cannot load ({exc}); {FALLBACK_HINT}") from exc
    raise BackendUnavailable(f"cuda-python is not installed; {INSTALL_HINT}, or {FALLBACK_HINT}")


def import_tensorrt() -> ModuleType:
    """The ``tensorrt`` module, or one BackendUnavailable line saying how to get it."""
    try:
        return importlib.import_module("tensorrt")
    except ImportError as exc:
        raise BackendUnavailable(f"TensorRT is not installed ({exc}); {INSTALL_HINT}, or {FALLBACK_HINT}") from exc
    except Exception as exc:  # noqa: BLE001 - the wheel is there but libnvinfer or the driver library is not
        raise BackendUnavailable(f"TensorRT cannot load its libraries ({exc}); {FALLBACK_HINT}") from exc


class CudaRuntime:
    """Thin, checked wrappers over the cuda-python runtime API for one device.

    Every method raises BackendUnavailable on a CUDA error. Handles are returned as cuda-python objects;
    ``handle_int`` turns a stream into the integer TensorRT's ``execute_async_v3`` takes.
    """

    def __init__(self, device: int = 0, cudart: ModuleType | None = None):
        self.rt = cudart or import_cudart()
        count = self._call("cudaGetDeviceCount", no_device=True)
        if count < 1:
            raise BackendUnavailable(f"no CUDA device found; {FALLBACK_HINT}")
        if not 0 <= device < count:
            raise BackendUnavailable(f"CUDA device {device} does not exist (found {count}); pick 0..{count - 1}")
        self._call("cudaSetDevice", device)
        self.device = device

    def _call(self, fn: str, *args: Any, no_device: bool = False) -> Any:
        try:
            result = getattr(self.rt, fn)(*args)
        except RuntimeError as exc:  # cuda-python raises when the driver library itself cannot be loaded
            raise BackendUnavailable(f"the CUDA driver is unusable ({exc}); {FALLBACK_HINT}") from exc
        err, values = result[0], result[1:]
        if int(err) != 0:
            _, text = self.rt.cudaGetErrorString(err)
            text = text.decode() if isinstance(text, bytes) else str(text)
            if no_device:
                raise BackendUnavailable(f"no usable CUDA device or driver ({text}); {FALLBACK_HINT}")
            raise BackendUnavailable(f"CUDA call {fn} failed: {text}")
        return values[0] if len(values) == 1 else (values or None)

    def gpu_info(self) -> GpuInfo:
        props = self._call("cudaGetDeviceProperties", self.device)
        name = props.name.split(b"\0", 1)[0].decode() if isinstance(props.name, bytes) else str(props.name)
        return GpuInfo(name=name.strip(), compute_capability=f"{props.major}.{props.minor}")

    # memory
    def device_alloc(self, nbytes: int) -> int:
        return int(self._call("cudaMalloc", max(nbytes, 1)))

    def device_free(self, ptr: int) -> None:
        self._call("cudaFree", ptr)

    def host_alloc(self, nbytes: int) -> np.ndarray:
        """Page-locked (pinned) host memory as a uint8 numpy array, so async copies really are async."""
        ptr = int(self._call("cudaMallocHost", max(nbytes, 1)))
        return np.ctypeslib.as_array((ctypes.c_uint8 * max(nbytes, 1)).from_address(ptr))

    def host_free(self, array: np.ndarray) -> None:
        self._call("cudaFreeHost", array.ctypes.data)

    # streams and events
    def stream_create(self) -> Any:
        flags = getattr(self.rt, "cudaStreamNonBlocking", 1)
        return self._call("cudaStreamCreateWithFlags", flags)

    def stream_destroy(self, stream: Any) -> None:
        self._call("cudaStreamDestroy", stream)

    def event_create(self) -> Any:
        flags = getattr(self.rt, "cudaEventDisableTiming", 2)
        return self._call("cudaEventCreateWithFlags", flags)

    def event_destroy(self, event: Any) -> None:
        self._call("cudaEventDestroy", event)

    def record(self, event: Any, stream: Any) -> None:
        self._call("cudaEventRecord", event, stream)

    def wait(self, stream: Any, event: Any) -> None:
        self._call("cudaStreamWaitEvent", stream, event, 0)

    def event_sync(self, event: Any) -> None:
        self._call("cudaEventSynchronize", event)

    def stream_sync(self, stream: Any) -> None:
        self._call("cudaStreamSynchronize", stream)

    # copies
    def copy_h2d(self, dst: int, src: np.ndarray, nbytes: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call("cudaMemcpyAsync", dst, src.ctypes.data, nbytes, kind, stream)

    def copy_d2h(self, dst: np.ndarray, src: int, nbytes: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call("cudaMemcpyAsync", dst.ctypes.data, src, nbytes, kind, stream)

    @staticmethod
    def handle_int(stream: Any) -> int:
        """The raw ``cudaStream_t`` value. ``int()`` gives it; cuda-python's ``getPtr()`` would give the address
        where the handle is stored, which is not a stream."""
        return int(stream)


def probe(device: int = 0) -> tuple[ModuleType, CudaRuntime]:
    """Import TensorRT and cuda-python and open the GPU, or raise one line naming what is missing.

    Both libraries are checked before the device, so a machine missing both hears about both.
    """
    missing = []
    for mod, label in (("tensorrt", "TensorRT"), ("cuda", "cuda-python")):
        try:
            importlib.import_module(mod)
        except ImportError:
            missing.append(label)
        except Exception:  # noqa: BLE001 - installed but a library failed to load: reported precisely below
            pass
    if missing:
        raise BackendUnavailable(
            f"the tensorrt backend needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            f"not installed; {INSTALL_HINT}, or {FALLBACK_HINT}"
        )
    trt = import_tensorrt()
    return trt, CudaRuntime(device)
