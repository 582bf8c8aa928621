"""Export a trained CCDC checkpoint to ONNX (dynamic H and W) and write the engine folder's manifest.json."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from streamfuse.engines.assets import sha256_file
from streamfuse.models.ccdc_arch import FAST_IN_CHANNELS, build_model

OPSET = 17  # GridSample (paper model) needs >= 16


class _PaperReference(nn.Module):
    """Export wrapper: the paper model's reference branch as its own graph."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, ref_up: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.net.reference_branch(ref_up))


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str]) -> None:
    axes = {n: {2: "h" if i == 0 else f"h{i}", 3: "w" if i == 0 else f"w{i}"} for i, n in enumerate(inputs + outputs)}
    # Every tensor of a graph has its own dynamic axes; ORT infers the real sizes at run time.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def export_model(net: nn.Module, arch: dict[str, Any], out_dir: str | Path) -> dict[str, str]:
    """Write ``model.onnx`` (and ``reference.onnx`` for the paper model) into ``out_dir``; returns file names."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net = net.eval()
    files: dict[str, str] = {}
    if arch["arch"] == "fast":
        _export(net, (torch.zeros(1, FAST_IN_CHANNELS, 64, 96),), out / "model.onnx", ["features"], ["chroma"])
        files["onnx"] = "model.onnx"
    else:
        ref_up = torch.rand(1, 3, 128, 192)
        refs = _PaperReference(net)(ref_up)
        names = [f"ref{i}" for i in range(len(refs))]
        _export(_PaperReference(net), (ref_up,), out / "reference.onnx", ["ref_up"], names)
        _export(net, (torch.rand(1, 1, 128, 192), *refs), out / "model.onnx", ["mono", *names], ["chroma"])
        files["onnx"] = "model.onnx"
        files["onnx_reference"] = "reference.onnx"
    return files


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, info: dict[str, Any] | None = None) -> dict:
    """Export a ``best.pt``/``last.pt`` checkpoint into an engine folder: small .pt, ONNX graphs, manifest.

    ``info`` (data, command, epochs, training time, validation metrics, ...) is merged into the manifest.
    """
    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    arch = ck["arch"]
    net = build_model(arch)
    net.load_state_dict(ck["model"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"model": net.state_dict(), "arch": arch}, out / "weights.pt")
    files = export_model(net, arch, out)
    manifest: dict[str, Any] = {
        "arch": arch,
        "params": sum(p.numel() for p in net.parameters()),
        "weights": "weights.pt",
        **files,
        **(info or {}),
    }
    manifest["sha256"] = {name: sha256_file(out / name) for name in ["weights.pt", *files.values()]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
