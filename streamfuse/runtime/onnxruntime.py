"""ONNX Runtime executor: the default CPU backend for learned engines."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from streamfuse.runtime.base import BackendUnavailable, Executor


class OrtExecutor(Executor):
    """Runs an ONNX graph with ONNX Runtime on the CPU (or another ORT execution provider)."""

    backend = "onnxruntime"

    def __init__(
        self,
        model: str | Path | bytes,
        threads: int | None = None,
        providers: list[str] | None = None,
        provider_options: list[dict] | None = None,
    ):
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - onnxruntime is a hard dependency
            raise BackendUnavailable("onnxruntime is not installed; run `pip install onnxruntime`") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = model if isinstance(model, bytes) else str(model)
        self._session = ort.InferenceSession(
            source, opts, providers=providers or ["CPUExecutionProvider"], provider_options=provider_options
        )
        self._inputs = [i.name for i in self._session.get_inputs()]
        self._outputs = [o.name for o in self._session.get_outputs()]

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self._inputs if n not in inputs]
        if missing:
            raise ValueError(f"missing graph input(s): {', '.join(missing)}")
        values = self._session.run(self._outputs, {n: inputs[n] for n in self._inputs})
        return dict(zip(self._outputs, values, strict=True))
