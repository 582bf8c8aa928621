"""The one benchmark exclusion list, and no dataset manifest (made here or shipped) names benchmark data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import moving_frames, textured_scene, write_video

from streamfuse.data import benchmark, synth
from streamfuse.data.manifest import DatasetManifest, load_manifest, write_manifest
from streamfuse.data.stills import package_stills
from streamfuse.data.video import extract_clips

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK_SOURCES = [
    "/usr/share/doc/opencv-doc/examples/data/vtest.avi",
    "opencv-doc:Megamind.avi#14",
    "Megamind_bugy.avi",
    "tree.avi",
    "opencv-doc:aloeL.jpg",
    "aloeGT.png",
    "rubberwhale2.png",
    "skimage:stereo_motorcycle",
    "opencv-doc:left.jpg",
    "opencv-doc:right07.jpg",
    "basketball1.png",
    "Blender_Suzanne2.jpg",
    "/usr/share/doc/opencv-doc/examples/data/some_new_clip.mp4",  # any opencv-doc video
]


@pytest.mark.parametrize("source", BENCHMARK_SOURCES)
def test_benchmark_sources_are_recognised_and_refused(source: str) -> None:
    assert benchmark.is_benchmark(source)
    with pytest.raises(benchmark.DataError, match="refusing benchmark"):
        write_manifest("/nonexistent/never-written", DatasetManifest(sources=["skimage:astronaut", source]))


@pytest.mark.parametrize("source", ["skimage:astronaut", "opencv-doc:fruits.jpg", "graf1.png", "/x/gem/homer.avi"])
def test_training_sources_pass(source: str) -> None:
    assert not benchmark.is_benchmark(source)


def test_manifest_with_a_benchmark_clip_item_is_not_written(tmp_path: Path) -> None:
    m = DatasetManifest(kind="real-clips", sources=["gem-doc:/a.avi"], sequences=[{"source": "x:/d/vtest.avi"}])
    with pytest.raises(benchmark.DataError, match="vtest.avi"):
        write_manifest(tmp_path, m)
    assert not (tmp_path / "manifest.json").exists()


def test_package_stills_leave_out_stereo_pairs() -> None:
    pytest.importorskip("skimage")
    names = [n for n, _ in package_stills()]
    assert names and "skimage:astronaut" in names
    assert benchmark.benchmark_sources(names) == []
    assert "skimage:stereo_motorcycle" not in names and "opencv-doc:left.jpg" not in names


def _manifest_sources(raw: dict) -> list[str]:
    items = raw.get("sequences", [])
    items = items if isinstance(items, list) else []  # an engine manifest records the count only
    return [*raw.get("sources", []), *(str(i.get("source", "")) for i in items if isinstance(i, dict))]


def test_every_dataset_maker_writes_a_clean_manifest(tmp_path: Path) -> None:
    stills = [(f"scene{i}", textured_scene(96, 128, seed=i)) for i in range(3)]
    opt = synth.SynthOptions(size=(64, 48), frames=2, blur_prob=0.0, crf=(20, 20), objects=(1, 1))
    synth.synthesize(tmp_path / "synth", 2, stills, opt, seed=0, val_fraction=0.5)
    video = tmp_path / "pkg" / "gem" / "examples" / "data" / "pan.avi"  # laid out like gem-doc's videos
    video.parent.mkdir(parents=True)
    write_video(video, moving_frames(30, 64, 96))
    extract_clips(tmp_path / "clips", [video])
    for folder in ("synth", "clips"):
        raw = json.loads((tmp_path / folder / "manifest.json").read_text())
        assert raw["sources"] and benchmark.benchmark_sources(_manifest_sources(raw)) == []
        assert load_manifest(tmp_path / folder).exclusion_list == list(benchmark.BENCHMARK_EXCLUDE)


def _local_dataset_manifests() -> list[Path]:
    return sorted(p for top in ("data", "runs") for p in (ROOT / top).rglob("manifest.json")) if ROOT.is_dir() else []


@pytest.mark.parametrize("path", _local_dataset_manifests(), ids=str)
def test_local_datasets_name_no_benchmark_data(path: Path) -> None:
    raw = json.loads(path.read_text())
    assert benchmark.benchmark_sources(_manifest_sources(raw)) == [], f"{path} was made from benchmark data"


def _engine_params() -> list:
    # (ccdc and ccdc-paper, once trained on stereo stills, were retrained on the real clips only: no expected failures)
    return [pytest.param(path, id=path.parent.name) for path in sorted((ROOT / "engines").glob("*/manifest.json"))]


@pytest.mark.parametrize("path", _engine_params())
def test_shipped_engines_name_no_benchmark_data(path: Path) -> None:
    raw = json.loads(path.read_text())
    data = raw.get("data") or raw.get("training", {}).get("data_manifest") or {}
    sources = _manifest_sources(data) if isinstance(data, dict) else []
    assert benchmark.benchmark_sources(sources) == [], f"{path} names benchmark data among its training sources"
