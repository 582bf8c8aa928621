"""One place that turns (model file, backend name) into an Executor; GPU backends import lazily."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streamfuse.runtime.base import BackendUnavailable, Executor

BACKENDS = ("onnxruntime", "tensorrt")
_GPU_DEFAULTS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("gpu_defaults", default=None)


@contextlib.contextmanager
def gpu_options(**options: Any) -> Iterator[None]:
    """Defaults for every GPU executor created inside the block (``precision``, ``cache_dir``, ``device``).

    The rig's ``engine.precision`` reaches the executors this way: engines pass ``backend`` on to
    :func:`create_executor` and need not know the GPU options.
    """
    token = _GPU_DEFAULTS.set({k: v for k, v in options.items() if v is not None})
    try:
        yield
    finally:
        _GPU_DEFAULTS.reset(token)


def create_executor(model: str | Path, backend: str = "onnxruntime", **options: Any) -> Executor:
    """Create an executor for an ONNX graph.

    Args:
        model: path to the ``.onnx`` file.
        backend: ``onnxruntime`` (CPU, default) or ``tensorrt`` (ORT's TensorRT EP on an NVIDIA GPU).
        **options: backend options (``threads`` for ORT; ``precision``, ``cache_dir``, ``profile`` for TensorRT,
            which default to those of an enclosing :func:`gpu_options`).

    Raises:
        BackendUnavailable: the backend's library or device is missing; the message names the alternative.
    """
    if backend == "onnxruntime":
        from streamfuse.runtime.onnxruntime import OrtExecutor

        return OrtExecutor(model, **options)
    if backend == "tensorrt":
        from streamfuse.runtime.tensorrt import TensorRTExecutor

        return TensorRTExecutor(model, **{**(_GPU_DEFAULTS.get() or {}), **options})
    raise BackendUnavailable(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
