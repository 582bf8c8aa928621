"""The temporal ccdc trainer: candidate stacks of real-clip streams cached once, a few steps, export, stream engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import moving_frames, write_video

from streamfuse.data.video import extract_clips

torch = pytest.importorskip("torch")

from streamfuse.engines.assets import load_engine_manifest  # noqa: E402
from streamfuse.models.ccdc_arch import TEMPORAL_IN_CHANNELS  # noqa: E402
from streamfuse.train import ccdc  # noqa: E402
from streamfuse.train.ccdc import CCDCConfig  # noqa: E402
from streamfuse.train.loop import fit  # noqa: E402


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    folder = root / "pkg" / "gem" / "examples" / "data"  # laid out like gem-doc's (allow-listed) videos
    folder.mkdir(parents=True)
    videos = [write_video(folder / f"{n}.avi", moving_frames(13, 128, 160, speed=s)) for n, s in (("a", 2), ("b", 3))]
    extract_clips(root / "clips", videos, validation=("b.avi",))
    return root / "clips"


def _cfg(clips: Path, out: Path, **kw) -> CCDCConfig:
    base = dict(model="ccdc-temporal-tiny", data=str(clips), out=str(out), scales=[4], periods=[3], crop=32)
    return CCDCConfig(**{**base, "batch": 2, "epochs": 1, "steps_per_epoch": 2, "frames_per_stream": 3, **kw})


def test_stream_cache_cuts_training_crops_and_whole_far_frames(clips: Path, tmp_path: Path) -> None:
    cache = ccdc.build_stream_cache(_cfg(clips, tmp_path / "run"), progress=False)
    assert len(cache["train"]) == 3 and all(it[0].shape == (TEMPORAL_IN_CHANNELS, 32, 32) for it in cache["train"])
    far = cache["val"]  # the held-aside video's frames K-1 after their reference (5, 11), whole
    assert len(far) == 2 and far[0][0].shape == (TEMPORAL_IN_CHANNELS, 64, 80) and far[0][2:] == [4, 6]


def test_a_few_steps_export_a_stream_engine(clips: Path, tmp_path: Path) -> None:
    from streamfuse.engines import load_engine

    summary = fit("ccdc", _cfg(clips, tmp_path / "run"), device="cpu", progress=False, export=tmp_path / "engine")
    assert summary.exported and np.isfinite(summary.best["mean"]) and "x4_gap6_gt" in summary.best
    manifest, _ = load_engine_manifest(tmp_path / "engine", engine="ccdc")
    assert manifest.arch["arch"] == "temporal" and manifest.classical_stage["engine"] == "guided-temporal"
    eng = load_engine("ccdc", model=str(tmp_path / "engine"), threads=1)
    assert type(eng.open_stream()).__name__ == "CCDCStream"
