"""export_engine: ONNX graphs behind the ORT-vs-torch parity gate, an EngineManifest, and sha256 checked at load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from streamfuse.engines.assets import SCHEMA, load_engine_manifest  # noqa: E402
from streamfuse.engines.base import EngineError  # noqa: E402
from streamfuse.runtime.onnxruntime import OrtExecutor  # noqa: E402
from streamfuse.train import export as export_mod  # noqa: E402
from streamfuse.train.export import ExportError, Graph, RunRecord, export_engine, levels, parity_levels  # noqa: E402


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x))


def _export(folder: Path) -> tuple[Tiny, dict]:
    torch.manual_seed(0)
    net = Tiny()
    graph = Graph(
        "model",
        "model.onnx",
        net,
        {"x": torch.rand(1, 3, 16, 24)},
        ["y"],
        parity_inputs=[{"x": torch.rand(1, 3, 32, 8)}],  # another size: the axes are dynamic
    )
    run = RunRecord(command="streamfuse train tiny --config t.yaml", epochs=2, minutes=0.5, validation={"mean": 30.0})
    manifest = export_engine(
        folder, engine="tiny", model=net, arch={"width": 2}, graphs=[graph], pad_multiple=8, run=run
    )
    return net, manifest


def test_export_writes_a_verified_manifest_and_graphs_that_match_torch(tmp_path: Path) -> None:
    net, written = _export(tmp_path / "eng")
    manifest, folder = load_engine_manifest(tmp_path / "eng", engine="tiny")
    raw = json.loads((folder / "manifest.json").read_text())
    assert raw["schema"] == SCHEMA and manifest == written
    assert manifest.graphs == {"model": "model.onnx"} and set(manifest.sha256) == {"model.onnx", "weights.pt"}
    assert manifest.pad_multiple == 8 and manifest.epochs == 2 and manifest.validation == {"mean": 30.0}
    assert manifest.parity["model"] <= 1 and manifest.opset == export_mod.OPSET and manifest.params == 56
    x = np.random.default_rng(3).random((1, 3, 40, 48), dtype=np.float32)  # dynamic H and W
    with torch.inference_mode():
        want = net(torch.from_numpy(x)).numpy()
    got = OrtExecutor(folder / "model.onnx", threads=1).run({"x": x})["y"]
    assert np.abs(want - got).max() < 1e-5
    weights = torch.load(folder / "weights.pt", weights_only=True)
    assert weights["arch"] == {"width": 2} and set(weights["model"]) == {"conv.weight", "conv.bias"}


def test_a_flipped_byte_or_missing_file_fails_to_load_naming_the_file(tmp_path: Path) -> None:
    _export(tmp_path / "eng")
    graph = tmp_path / "eng" / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0x01
    graph.write_bytes(bytes(data))
    with pytest.raises(EngineError) as err:
        load_engine_manifest(tmp_path / "eng")
    message = str(err.value)
    assert "\n" not in message and str(graph) in message and "sha256" in message
    assert "streamfuse train tiny" in message and "--export" in message  # how to re-export it
    graph.unlink()
    with pytest.raises(EngineError, match="model.onnx: file missing; re-export it"):
        load_engine_manifest(tmp_path / "eng")


def test_another_family_or_an_old_schema_is_refused(tmp_path: Path) -> None:
    _export(tmp_path / "eng")
    with pytest.raises(EngineError, match="a 'tiny' model, not a 'ccdc' one"):
        load_engine_manifest(tmp_path / "eng", engine="ccdc")
    path = tmp_path / "eng" / "manifest.json"
    path.write_text(json.dumps({"arch": {}, "onnx": "model.onnx"}))
    with pytest.raises(EngineError, match="manifest schema 1 is not"):
        load_engine_manifest(tmp_path / "eng")


def test_parity_gate_measures_8bit_levels_and_blocks_a_bad_export(tmp_path: Path, monkeypatch) -> None:
    net, _ = _export(tmp_path / "eng")
    other = Tiny()  # different weights than the exported graph
    graph = Graph("model", "model.onnx", other, {"x": torch.rand(1, 3, 16, 24)}, ["y"])
    assert parity_levels(graph, tmp_path / "eng" / "model.onnx") > 1
    assert levels(255.0, 128.0)(np.array([-0.6, 0.0, 0.6])).tolist() == [0.0, 128.0, 255.0]
    monkeypatch.setattr(export_mod, "parity_levels", lambda g, p: 3.0)
    with pytest.raises(ExportError, match="differs from torch by 3 8-bit levels"):
        _export(tmp_path / "bad")
