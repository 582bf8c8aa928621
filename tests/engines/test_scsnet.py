"""SCSNet engines: output size at any scale, both modes, reference reuse in a stream, the residual design, ONNX
parity at export, and no torch at run time."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import textured_scene

from streamfuse.color import luma
from streamfuse.engines import load_engine
from streamfuse.engines.base import EngineError
from streamfuse.engines.scsnet import output_size, relative_coords
from streamfuse.metrics import psnr_cbcr

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from streamfuse.models.scsnet_arch import CONFIGS, build_model  # noqa: E402
from streamfuse.train.scsnet import SCSNetConfig, SCSNetTrainer  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained ``scsnet`` (random init, zero residual head) exported through the trainer's export."""
    torch.manual_seed(0)
    trainer = SCSNetTrainer()
    trainer.cfg = SCSNetConfig(model="scsnet")
    folder = tmp_path_factory.mktemp("scsnet") / "model"
    trainer.export(build_model(CONFIGS["scsnet"]), folder, None)
    return folder


def _pair(h: int = 48, w: int = 64, scale: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
    """(small mono, HR colour truth) of a smooth textured scene."""
    out_h, out_w = output_size(h, w, scale)
    truth = textured_scene(out_h, out_w, seed=3)
    return cv2.resize(luma(truth), (w, h), interpolation=cv2.INTER_AREA), truth


@pytest.mark.parametrize("scale", [1.0, 2.5, 3.3, 8.0])
def test_output_is_round_h_times_scale(model: Path, scale: float) -> None:
    eng = load_engine("scsnet", scale=scale, model=str(model))
    mono = np.random.default_rng(0).integers(0, 256, (21, 30), dtype=np.uint8)
    ref = textured_scene(40, 50)
    want = (round(21 * scale), round(30 * scale), 3)
    for state in (eng.prepare_reference(ref), None):
        out = eng.colorize(mono, state)
        assert out.shape == want and out.dtype == np.uint8


def test_scale_outside_range_is_refused(model: Path) -> None:
    with pytest.raises(EngineError, match="scale must be in"):
        load_engine("scsnet", scale=9.0, model=str(model))


def test_untrained_automatic_output_is_bicubic_grey(model: Path) -> None:
    """The residual head starts at zero: an untrained net returns the bicubic luma with neutral chroma."""
    mono, _ = _pair()
    out = load_engine("scsnet", scale=2.5, model=str(model)).colorize(mono, None)
    bicubic = cv2.resize(mono, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_CUBIC)
    assert np.abs(luma(out).astype(int) - bicubic).max() <= 1
    assert np.abs(out.astype(int) - out[..., :1]).max() <= 1  # grey


def test_referential_mode_takes_colour_from_the_reference(model: Path) -> None:
    """With the HR truth as reference, the aligned chroma (the base) is close to the truth; grey is far."""
    mono, truth = _pair()
    eng = load_engine("scsnet", scale=2.5, model=str(model))
    ref_out = eng.colorize(mono, eng.prepare_reference(truth))
    auto_out = eng.colorize(mono, None)
    assert psnr_cbcr(ref_out, truth) > 30.0
    assert psnr_cbcr(ref_out, truth) > psnr_cbcr(auto_out, truth) + 5.0


def test_reference_of_another_resolution(model: Path) -> None:
    mono, truth = _pair()
    eng = load_engine("scsnet", scale=2.5, model=str(model))
    small = cv2.resize(truth, (40, 30), interpolation=cv2.INTER_AREA)
    assert eng.colorize(mono, eng.prepare_reference(small)).shape == truth.shape


def test_stream_reuses_the_reference_features(model: Path) -> None:
    eng = load_engine("scsnet", scale=2.0, model=str(model))
    calls = {"n": 0}
    run = eng.ref_executor.run

    def counted(inputs):
        calls["n"] += 1
        return run(inputs)

    eng.ref_executor.run = counted
    mono, truth = _pair(scale=2.0)
    stream = eng.open_stream()
    stream.push_reference(truth)
    outs = [stream.colorize(np.roll(mono, k, axis=1)) for k in range(3)]
    assert eng.reference_calls == 1 and calls["n"] == 1  # prepared once, PVCAttn keys/values computed once
    assert all(o.shape == truth.shape for o in outs)


def test_export_parity_is_recorded(model: Path) -> None:
    import json

    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["engine"] == "scsnet" and set(manifest["graphs"]) == {"reference", "model", "automatic"}
    assert all(v <= 1.0 for v in manifest["parity"].values())


def test_relative_coordinates_span_minus_one_to_one() -> None:
    z = relative_coords(10, 4)  # scale 2.5
    assert z.min() >= -1.0 and z.max() < 1.0 and len(np.unique(np.round(z, 6))) > 2


@pytest.mark.parametrize("name", ["scsnet", "scsnet-paper"])
def test_shipped_weights_load_and_name_their_data(name: str) -> None:
    from streamfuse.engines.assets import engines_dir, load_engine_manifest

    if not (engines_dir() / name / "manifest.json").is_file():
        pytest.skip(f"no shipped {name} weights")
    manifest, _ = load_engine_manifest(name, "scsnet")  # verifies every file's sha256
    assert manifest.data["stills"] and manifest.data["videos"] and manifest.command
    assert not set(manifest.data["held_aside_for_scsr"]) & {s.split(":")[-1] for s in manifest.data["stills"]}
    mono, truth = _pair(scale=3.3)
    eng = load_engine(name, scale=3.3)
    assert eng.colorize(mono, eng.prepare_reference(truth)).shape == truth.shape
