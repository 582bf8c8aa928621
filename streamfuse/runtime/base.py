"""The executor interface every inference backend implements (ONNX Runtime, TensorRT, torch)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np

from streamfuse.errors import BackendUnavailable  # noqa: F401 - defined at the bottom layer; re-exported here


class Executor(ABC):
    """Runs one exported graph: named float32/uint8 numpy inputs in, named numpy outputs out."""

    backend: str = "base"
    _inputs: list[str]  # set by each backend when it loads the graph
    _outputs: list[str]

    @property
    def input_names(self) -> list[str]:
        """Graph input names, in declaration order."""
        return list(self._inputs)

    @property
    def output_names(self) -> list[str]:
        """Graph output names, in declaration order."""
        return list(self._outputs)

    @abstractmethod
    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the graph once; every name in ``input_names`` must be present."""
