"""Pik-Fix engines: the contract, restoration that beats the damaged input, a steadier film stream, reference
retrieval per shot, the CLI, and a torch-free runtime. Uses the shipped weights (engines/pikfix*)."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import textured_scene

from streamfuse.cli import main
from streamfuse.color import luma
from streamfuse.data.oldfilm import FilmDamage, damage_clip, damage_frame, damage_photo, reference_view
from streamfuse.engines import EngineError, load_engine
from streamfuse.engines.retrieval import ReferenceRetriever, RetrievingStream, ShotDetector, retrieve
from streamfuse.evaluation.stream import temporal_chroma_error
from streamfuse.imageio import write_rgb
from streamfuse.metrics import psnr

ENGINES = ("pikfix", "pikfix-paper")


@pytest.fixture(scope="module")
def engines():
    return {name: load_engine(name, threads=1) for name in ENGINES}


def _coffee() -> np.ndarray:
    """A held-aside still (never trained on: streamfuse.data.oldfilm.HELD_OUT_STILLS)."""
    import skimage.data as skd

    return cv2.resize(skd.coffee(), (240, 160), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("name", ENGINES)
def test_contract_size_and_type(engines, name):
    img = textured_scene(75, 101)
    eng = engines[name]
    out = eng.colorize(damage_photo(img, np.random.default_rng(0)), eng.prepare_reference(img))
    assert out.shape == (75, 101, 3) and out.dtype == np.uint8
    big = cv2.resize(img, (202, 150))  # a reference larger than the frame is fitted to it
    assert eng.colorize(luma(img), big).shape == (75, 101, 3)


@pytest.mark.parametrize("name", ENGINES)
def test_restores_a_damaged_held_out_still(engines, name):
    img = _coffee()
    rng = np.random.default_rng(5)
    degraded = damage_photo(img, rng)
    ref = reference_view(img, rng, jitter=0.0)
    eng = engines[name]
    out = eng.colorize(degraded, eng.prepare_reference(ref))
    grey = cv2.cvtColor(degraded, cv2.COLOR_GRAY2RGB)
    assert psnr(out, img) > psnr(grey, img) + 3.0
    assert psnr(luma(out), luma(img)) > psnr(degraded, luma(img)) + 2.0


def test_stream_is_steadier_than_frame_by_frame(engines):
    scene = textured_scene(96, 128, seed=2)
    truth = [scene] * 6
    degraded = damage_clip(truth, np.random.default_rng(3))
    eng = engines["pikfix"]
    state = eng.prepare_reference(reference_view(scene, np.random.default_rng(1), jitter=0.0))
    framewise = [eng.colorize(g, state) for g in degraded]
    stream = eng.open_stream()
    stream.push_reference(state.rgb)
    streamed = [stream.colorize(g) for g in degraded]
    assert temporal_chroma_error(streamed, truth) < 0.8 * temporal_chroma_error(framewise, truth)


def test_bad_options_are_refused():
    with pytest.raises(EngineError, match="temporal"):
        load_engine("pikfix", temporal=1.5)
    with pytest.raises(EngineError, match="manifest"):
        load_engine("pikfix", model="/nonexistent/model")


def test_retrieval_picks_the_matching_reference():
    retriever = ReferenceRetriever()
    scenes = [textured_scene(120, 160, seed=s) for s in range(6)]
    refs = [retriever.describe_reference(reference_view(s, np.random.default_rng(9), jitter=0.0)) for s in scenes]
    for k, scene in enumerate(scenes):
        degraded = damage_photo(scene, np.random.default_rng(k))
        assert retriever.best(degraded, refs)[0] == k


def test_shot_detector_flags_cuts_only():
    a, b = textured_scene(64, 80, seed=0), textured_scene(64, 80, seed=1)
    det = ShotDetector()
    dmg = FilmDamage(flicker=0.04, grain=5.0, dust=10)
    rng = np.random.default_rng(0)
    cuts = [det.is_cut(damage_frame(f, dmg, t, rng)) for t, f in enumerate([a, a, a, b, b])]
    assert cuts == [True, False, False, True, False]


def test_retrieving_stream_switches_reference_at_the_cut(engines, tmp_path):
    a, b = textured_scene(96, 128, seed=4), textured_scene(96, 128, seed=5)
    library = [
        ("a.png", reference_view(a, np.random.default_rng(0))),
        ("b.png", reference_view(b, np.random.default_rng(1))),
    ]
    stream = RetrievingStream(engines["pikfix"], library)
    frames = damage_clip([a, a, a, b, b], np.random.default_rng(2))
    outs = [stream.colorize(f) for f in frames]
    assert stream.chosen == [(0, "a.png"), (3, "b.png")]
    assert all(o.shape == (96, 128, 3) for o in outs)
    for name, rgb in library:
        write_rgb(tmp_path / name, rgb)
    assert retrieve(frames[-1], tmp_path)[0] == "b.png"
    # the engine option does the same inside open_stream() (transcode --ref FOLDER)
    eng = load_engine("pikfix", references=str(tmp_path), threads=1)
    s2 = eng.open_stream()
    s2.push_reference(library[0][1])  # a rig's colour camera: ignored, the library decides
    [s2.colorize(f) for f in frames]
    assert [n for _, n in s2.chosen] == ["a.png", "b.png"]


def test_cli_colorize_with_a_reference_folder(tmp_path, capsys):
    img = textured_scene(96, 128, seed=7)
    cv2.imwrite(str(tmp_path / "old.png"), damage_photo(img, np.random.default_rng(0)))
    refs = tmp_path / "refs"
    write_rgb(refs / "match.png", reference_view(img, np.random.default_rng(1)))
    write_rgb(refs / "other.png", textured_scene(96, 128, seed=8))
    out = tmp_path / "out.png"
    argv = ["colorize", "--engine", "pikfix", "--mono", str(tmp_path / "old.png"), "--ref", str(refs), "-o", str(out)]
    assert main(argv) == 0
    assert "match.png" in capsys.readouterr().out
    assert cv2.imread(str(out)).shape == (96, 128, 3)


def test_runtime_does_not_import_torch():
    code = (
        "import sys, numpy as np\n"
        "from streamfuse.engines import load_engine\n"
        "for n in ('pikfix', 'pikfix-paper'):\n"
        "    e = load_engine(n, threads=1)\n"
        "    e.colorize(np.full((48, 64), 90, np.uint8), np.full((48, 64, 3), 120, np.uint8))\n"
        "assert 'torch' not in sys.modules, 'torch imported at run time'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
