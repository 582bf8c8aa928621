"""The one export path: ONNX graph(s), the ORT-vs-torch parity gate, and the engine folder's EngineManifest.

Example (inside a trainer's ``export``)::

    graph = Graph("model", "model.onnx", model, {"features": torch.rand(1, 20, 64, 96)}, ["chroma"],
                  quantize=levels(255.0, 128.0))   # output unit -> 8-bit levels, for the gate
    return export_engine(out_dir, engine="mine", model=model, arch=arch, graphs=[graph],
                         pad_multiple=32, run=run)

The gate runs every graph under ONNX Runtime and torch on the trace input and on ``parity_inputs`` (use a
second size, so dynamic axes are exercised) and fails the export when the outputs, as 8-bit levels, differ
by more than one level (1/255).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from streamfuse.checksum import sha256_file
from streamfuse.engines.assets import EngineManifest, TrainingRun

OPSET = 17  # GridSample (ccdc-paper) needs >= 16
PARITY_LEVELS = 1.0  # the gate: ORT and torch agree within one 8-bit level (1/255)

Quantize = Callable[[np.ndarray], np.ndarray]


class ExportError(RuntimeError):
    """An export that must not ship (parity gate failed); the message names the graph and the difference."""


def levels(scale: float = 255.0, offset: float = 0.0, clip: bool = True) -> Quantize:
    """Output units -> 8-bit levels: ``round(x * scale + offset)``, clipped to 0..255 unless ``clip=False``
    (for feature outputs, which are not images)."""

    def quantize(x: np.ndarray) -> np.ndarray:
        q = np.rint(x.astype(np.float64) * scale + offset)
        return np.clip(q, 0, 255) if clip else q

    return quantize


@dataclass
class Graph:
    """One ONNX graph of an engine: the module to trace, named example inputs, output names."""

    role: str
    """Key in the manifest's ``graphs`` (``model``; ``reference`` for a per-reference graph)."""
    file: str
    module: nn.Module
    inputs: dict[str, torch.Tensor]
    """Example inputs in ``forward`` order (traced at this size)."""
    outputs: list[str]
    quantize: Quantize = field(default_factory=levels)
    """Maps each output to 8-bit levels for the parity gate."""
    parity_inputs: list[dict[str, torch.Tensor]] = field(default_factory=list)
    """More inputs for the gate (another size checks the dynamic axes)."""
    dynamic_axes: dict[str, dict[int, str]] | None = None
    """Default: axes 2 and 3 (H, W) of every 4-D tensor are dynamic, each tensor with its own names."""


RunRecord = TrainingRun  # what the loop hands a trainer's export: command, config, epochs, minutes, device, ...


def _axes(graph: Graph, names: list[str]) -> dict[str, dict[int, str]]:
    if graph.dynamic_axes is not None:
        return graph.dynamic_axes
    return {n: {2: f"h{i}", 3: f"w{i}"} for i, n in enumerate(names)}


def export_graph(graph: Graph, folder: Path) -> Path:
    """Trace ``graph.module`` to ``folder/graph.file`` (opset :data:`OPSET`, dynamic H and W)."""
    path = folder / graph.file
    module = graph.module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            tuple(graph.inputs.values()),
            str(path),
            input_names=list(graph.inputs),
            output_names=graph.outputs,
            dynamic_axes=_axes(graph, [*graph.inputs, *graph.outputs]),
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def parity_levels(graph: Graph, path: Path) -> float:
    """Largest |ORT − torch| over the graph's outputs and parity inputs, in 8-bit levels."""
    from streamfuse.runtime.onnxruntime import OrtExecutor

    ort = OrtExecutor(path, threads=1)
    worst = 0.0
    for inputs in [graph.inputs, *graph.parity_inputs]:
        with torch.no_grad():
            want = graph.module(*inputs.values())
        want = want if isinstance(want, (tuple, list)) else (want,)
        got = ort.run({k: v.detach().cpu().numpy() for k, v in inputs.items()})
        for name, w in zip(graph.outputs, want, strict=True):
            diff = np.abs(graph.quantize(w.detach().cpu().numpy()) - graph.quantize(got[name]))
            worst = max(worst, float(diff.max()))
    return worst


def export_engine(
    out_dir: str | Path,
    *,
    engine: str,
    model: nn.Module,
    arch: dict[str, Any],
    graphs: list[Graph],
    pad_multiple: int,
    run: RunRecord | None = None,
    classical_stage: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    notes: dict[str, Any] | None = None,
) -> EngineManifest:
    """Write an engine folder: ``weights.pt``, the ONNX graphs (parity-gated) and ``manifest.json``.

    Args:
        out_dir: the engine folder (created).
        engine: the family name (``streamfuse train ENGINE``; the engine checks it at load).
        model: the trained module (its ``state_dict`` goes into ``weights.pt`` with ``arch``).
        arch: the architecture config that rebuilds ``model``.
        graphs: the graphs to export, each parity-gated.
        pad_multiple: H and W multiple the graphs need.
        run: the training run (command, config, epochs, minutes, device, validation, data).
        classical_stage: settings of the classical stage the network was trained on.
        options: engine defaults chosen after training.
        notes: free-form history for the manifest.

    Raises:
        ExportError: a graph's ONNX Runtime output differs from torch by more than one 8-bit level.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    run = run or RunRecord()
    parity: dict[str, float] = {}
    for graph in graphs:
        path = export_graph(graph, out)
        parity[graph.role] = parity_levels(graph, path)
        if parity[graph.role] > PARITY_LEVELS:
            raise ExportError(
                f"{path}: ONNX Runtime differs from torch by {parity[graph.role]:.0f} 8-bit levels "
                f"(gate: {PARITY_LEVELS:.0f}); the graph has an op that ORT runs differently, fix it before shipping"
            )
    torch.save({"model": model.state_dict(), "arch": arch}, out / "weights.pt")
    manifest = EngineManifest(
        engine=engine,
        arch=arch,
        graphs={g.role: g.file for g in graphs},
        pad_multiple=int(pad_multiple),
        sha256={},
        classical_stage=classical_stage,
        options=dict(options or {}),
        **{**dataclasses.asdict(run), "minutes": round(run.minutes, 2)},
        params=sum(p.numel() for p in model.parameters()),
        opset=OPSET,
        parity=parity,
        notes=dict(notes or {}),
    )
    manifest.sha256 = {name: sha256_file(out / name) for name in manifest.files()}
    manifest.write(out)
    return manifest
