"""The torch backend: runs an engine's network from its ``weights.pt`` instead of the ONNX graph.

For parity checks and debugging, and the one place outside models/ and train/ that imports torch (lazily).
The engine passes its family's ``build_model`` and a ``forward`` that maps named numpy inputs to named outputs,
so this module knows no particular network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from streamfuse.runtime.base import BackendUnavailable, Executor

Forward = Callable[[Any, dict[str, Any]], dict[str, Any]]


class TorchExecutor(Executor):
    """Runs ``build_model(arch)`` with the weights of ``weights.pt`` (``{"model": state_dict, ...}``) on the CPU.

    Args:
        weights: the engine folder's ``weights.pt``.
        build_model: the family's factory, ``build_model(arch) -> nn.Module``.
        arch: the manifest's architecture config.
        forward: ``forward(net, tensors) -> {name: tensor}``: the graph's computation on named input tensors.
        outputs: output names, in graph order.
        threads: torch intra-op threads.

    Raises:
        BackendUnavailable: torch is not installed.
    """

    backend = "torch"

    def __init__(
        self,
        weights: str | Path,
        build_model: Callable[[dict], Any],
        arch: dict,
        forward: Forward,
        outputs: list[str],
        threads: int | None = None,
    ) -> None:
        try:
            import torch
        except ImportError as exc:
            raise BackendUnavailable("backend torch needs `pip install streamfuse[train]`; use onnxruntime") from exc
        if threads:
            torch.set_num_threads(int(threads))
        self._torch = torch
        self._net = build_model(arch)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        self._net.load_state_dict(state["model"])
        self._net.eval()
        self._forward = forward
        self._inputs: list[str] = []
        self._outputs = list(outputs)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            outs = self._forward(self._net, {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outs.items()}
