"""One place that turns (model file, backend name) into an Executor; GPU backends import lazily."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamfuse.runtime.base import BackendUnavailable, Executor

BACKENDS = ("onnxruntime", "tensorrt")


def create_executor(model: str | Path, backend: str = "onnxruntime", **options: Any) -> Executor:
    """Create an executor for an ONNX graph.

    Args:
        model: path to the ``.onnx`` file.
        backend: ``onnxruntime`` (CPU, default) or ``tensorrt`` (NVIDIA GPU).
        **options: backend options (``threads`` for ORT; ``precision``, ``cache_dir`` for TensorRT).

    Raises:
        BackendUnavailable: the backend's library or device is missing; the message names the alternative.
    """
    if backend == "onnxruntime":
        from streamfuse.runtime.onnxruntime import OrtExecutor

        return OrtExecutor(model, **options)
    if backend == "tensorrt":
        try:
            from streamfuse.runtime.tensorrt import TensorRTExecutor
        except ImportError as exc:
            raise BackendUnavailable(
                f"the tensorrt backend is not available ({exc}); use --backend onnxruntime"
            ) from exc
        return TensorRTExecutor(model, **options)
    raise BackendUnavailable(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
