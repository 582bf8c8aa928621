"""The temporal ccdc: stream path with history, frame-wise path without, reference work once per colour frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import moving_frames

from streamfuse.color import luma
from streamfuse.data.degrade import downsample
from streamfuse.engines import load_engine
from streamfuse.engines.ccdc import TEMPORAL_IN_CHANNELS, new_memory, temporal_classical_engine, temporal_features

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from streamfuse.models.ccdc_arch import CONFIGS, TEMPORAL_CHROMA, build_model  # noqa: E402
from streamfuse.train.ccdc import export_ccdc, framewise_view  # noqa: E402


@pytest.fixture(scope="module")
def temporal_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    arch = CONFIGS["ccdc-temporal-tiny"]
    folder = tmp_path_factory.mktemp("temporal") / "model"
    export_ccdc(folder, build_model(arch).eval(), arch, notes={"note": "random init, test only"})
    return folder


def test_reference_work_runs_once_per_colour_frame_on_the_stream(temporal_model: Path) -> None:
    eng = load_engine("ccdc", model=str(temporal_model), threads=1)
    frames = moving_frames(13, speed=2)
    stream = eng.open_stream()
    outs = []
    for t, frame in enumerate(frames):
        if t % 6 == 0:
            stream.push_reference(downsample(frame, 4))
        outs.append(stream.colorize(luma(frame)))
    assert eng.reference_calls == 3 and eng.reference_work == 3  # three colour frames, 13 mono frames
    assert stream.memory.get("old") is not None  # the earlier reference is registered to the current frame
    assert outs[-1].shape == frames[-1].shape


def test_frame_wise_equals_a_fresh_stream_and_ignores_history(temporal_model: Path) -> None:
    eng = load_engine("ccdc", model=str(temporal_model), threads=1)
    frames = moving_frames(4, speed=3)
    ref = downsample(frames[0], 4)
    a = eng.colorize(luma(frames[3]), eng.prepare_reference(ref))
    stream = eng.open_stream()
    stream.push_reference(ref)
    b = stream.colorize(luma(frames[3]))
    np.testing.assert_array_equal(a, b)


def test_features_without_history_copy_direct_and_framewise_view_matches() -> None:
    classic = temporal_classical_engine()
    frames = moving_frames(3, speed=3)
    state = classic.prepare_reference(downsample(frames[0], 4))
    fresh, _ = temporal_features(classic, luma(frames[2]), state, new_memory())
    assert fresh.shape[0] == TEMPORAL_IN_CHANNELS
    np.testing.assert_array_equal(framewise_view(fresh), fresh)
    memory = new_memory()
    for frame in frames:
        feats, _ = temporal_features(classic, luma(frame), state, memory)
    direct, chained = TEMPORAL_CHROMA[0][0], TEMPORAL_CHROMA[2][0]
    assert not np.array_equal(feats[chained : chained + 2], feats[direct : direct + 2])  # history is used


def test_torch_and_onnxruntime_agree_within_one_level(temporal_model: Path) -> None:
    frames = moving_frames(2, height=72, width=104)
    outs = []
    for backend in ("onnxruntime", "torch"):
        eng = load_engine("ccdc", model=str(temporal_model), backend=backend, threads=1)
        outs.append(eng.colorize(luma(frames[1]), eng.prepare_reference(downsample(frames[0], 4))).astype(int))
    assert np.abs(outs[0] - outs[1]).max() <= 1


def test_bench_runs_the_stream_path(temporal_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamfuse import bench
    from streamfuse.engines.ccdc import CCDCStream

    calls = {"frames": 0, "refs": 0}
    colorize, on_reference = CCDCStream._colorize, CCDCStream._on_reference

    def counted_colorize(self, mono, state):
        calls["frames"] += 1
        return colorize(self, mono, state)

    def counted_reference(self, state):
        calls["refs"] += 1
        return on_reference(self, state)

    monkeypatch.setattr(CCDCStream, "_colorize", counted_colorize)
    monkeypatch.setattr(CCDCStream, "_on_reference", counted_reference)
    res = bench.bench_engine(
        "ccdc", (160, 96), 4.0, 5, {"model": str(temporal_model), "threads": 1}, warmup=1, period=3
    )
    assert res["period"] == 3 and res["frames"] == 5
    assert calls == {"frames": 6, "refs": 2}  # 6 mono frames, a colour frame at 0 and 3
