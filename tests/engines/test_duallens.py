"""duallens: the shipped engine through ONNX Runtime, the network's weighted-average semantics, export parity."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamfuse.color import luma, rgb_to_ycbcr
from streamfuse.engines import load_engine
from streamfuse.engines.assets import load_engine_manifest
from streamfuse.engines.base import EngineError
from streamfuse.engines.duallens import estimate_memory_gb
from streamfuse.engines.registry import available_engines

ROOT = Path(__file__).resolve().parents[2]


def stereo_scene(w: int = 160, h: int = 96, disp: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A rectified pair: coloured blocks on a textured background; the right view sees them ``disp`` px left."""
    rng = np.random.default_rng(seed)
    tex = cv2.resize(
        rng.integers(0, 255, (h // 8, (w + 64) // 8, 3), dtype=np.uint8), (w + 64, h), interpolation=cv2.INTER_CUBIC
    )
    for _ in range(6):
        x, y = rng.integers(0, w + 40), rng.integers(0, h - 20)
        tex[y : y + 20, x : x + 24] = rng.integers(0, 255, 3)
    left = tex[:, 32 : 32 + w].copy()
    right = tex[:, 32 + disp : 32 + disp + w].copy()
    return left, right


def chroma_psnr(out: np.ndarray, truth: np.ndarray, border: int = 8) -> float:
    d = rgb_to_ycbcr(out).astype(np.float64)[..., 1:] - rgb_to_ycbcr(truth).astype(np.float64)[..., 1:]
    d = d[border:-border, border:-border]
    return float(10 * np.log10(255.0**2 / max(np.mean(d**2), 1e-9)))


@pytest.fixture(scope="module")
def engine():
    return load_engine("duallens", threads=1)


def test_both_configs_are_registered() -> None:
    assert {"duallens", "duallens-paper"} <= set(available_engines())


@pytest.mark.parametrize("name", ["duallens", "duallens-paper"])
def test_manifest_records_training_and_hashes(name: str) -> None:
    manifest, folder = load_engine_manifest(name, engine="duallens")  # verifies every sha256
    assert set(manifest.sha256) == {"weights.pt", *manifest.graphs.values()} and "model" in manifest.graphs
    assert manifest.pad_multiple in (16, 32) and manifest.minutes > 0 and manifest.validation["chroma_psnr_db"] > 0
    assert manifest.notes["training"]["steps"] > 0 and manifest.command and manifest.parity["model"] <= 1
    assert (manifest.classical_stage is not None) == bool(manifest.arch.get("candidate"))


def test_colorizes_a_shifted_pair_better_than_copying_the_reference(engine) -> None:
    left, right = stereo_scene()
    mono = luma(left)
    out = engine.colorize(mono, engine.prepare_reference(right))
    assert out.shape == left.shape and out.dtype == np.uint8
    # The mono luma is kept (up to rounding and RGB gamut clipping of saturated colours).
    assert np.abs(luma(out).astype(int) - mono.astype(int)).mean() < 1.0
    copy = cv2.cvtColor(
        np.dstack([mono, rgb_to_ycbcr(right)[..., 2], rgb_to_ycbcr(right)[..., 1]]), cv2.COLOR_YCrCb2RGB
    )
    assert chroma_psnr(out, left) > chroma_psnr(copy, left) + 2


def test_left_reference_rig_is_the_mirror_image(engine) -> None:
    left, right = stereo_scene(seed=2)
    right_rig = load_engine("duallens", threads=1, geometry="rectified")
    left_rig = load_engine("duallens", threads=1, reference_side="left", geometry="rectified")
    a = right_rig.colorize(luma(left), right)
    b = left_rig.colorize(np.ascontiguousarray(luma(left)[:, ::-1]), np.ascontiguousarray(right[:, ::-1]))
    assert np.array_equal(a, b[:, ::-1])


def test_large_disparity_request_runs_at_a_reduced_working_size() -> None:
    engine = load_engine("duallens", threads=1, max_disp=640)
    assert engine.downscale_factor(160, 96) == pytest.approx(640 / engine.largest_disp) and engine.largest_disp >= 160
    left, right = stereo_scene(w=192, h=96, disp=40)
    out = engine.colorize(luma(left), right)
    assert out.shape == left.shape


def test_a_small_memory_budget_runs_the_volume_in_strips_with_the_same_output() -> None:
    left, right = stereo_scene(w=160, h=256, disp=12)
    whole = load_engine("duallens", threads=1)
    strips = load_engine("duallens", threads=1, memory_gb=0.01)
    disp = strips.graph_for(36)
    assert strips.strip_rows(160, 256, disp) < 256 == whole.strip_rows(160, 256, disp)
    assert estimate_memory_gb(strips.arch, 160, strips.strip_rows(160, 256, disp) + 2 * strips.overlap, disp) <= 0.01
    a, b = (e.colorize(luma(left), right).astype(int) for e in (whole, strips))
    d = np.abs(a - b)  # whole-frame luma statistics and 32 rows of context: strips see what the frame sees
    assert d.max() <= 2 and d.mean() < 0.05


def test_a_range_whose_thinnest_strip_exceeds_the_budget_runs_at_a_reduced_size() -> None:
    eng = load_engine("duallens-paper", threads=1)  # default budget 5 GB
    assert eng.downscale_factor(1280, 720, 20.0) == 1.0  # a small range fits in strips at full size
    f = eng.downscale_factor(1280, 720, 200.0)
    thinnest = eng.multiple + 2 * eng.overlap
    assert f > 1 and estimate_memory_gb(eng.arch, 1280 / f, thinnest, eng.graph_for(200 / f)) <= eng.memory_gb


def test_per_pair_range_picks_a_cheaper_graph_that_covers_the_disparity(engine) -> None:
    left, right = stereo_scene(w=256, h=96, disp=40)
    engine.colorize(luma(left), right)
    geo = engine.last_geometry
    searched = engine.graph_for(geo.span)
    assert geo.offset + searched >= 40 and searched < engine.largest_disp
    assert sorted(engine.executors) == list(engine.executors) and len(engine.executors) >= 2


def _shifted_pair(dx: int, dy: int, w: int = 192, h: int = 160, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A pair whose colour view sees the scene (dx, dy) px away: the colour camera sits at (−dx, −dy)."""
    big, _ = stereo_scene(w=w + 80, h=h + 80, disp=0, seed=seed)
    left = big[40 : 40 + h, 40 : 40 + w].copy()
    right = big[40 - dy : 40 - dy + h, 40 - dx : 40 - dx + w].copy()
    return left, right


@pytest.mark.parametrize("dx, dy", [(0, 14), (0, -14), (14, 0), (10, 10)])
def test_auto_geometry_follows_any_baseline_direction(dx: int, dy: int) -> None:
    left, right = _shifted_pair(dx, dy)
    auto = load_engine("duallens", threads=1)
    rows = load_engine("duallens", threads=1, geometry="rectified")
    got, fixed = (chroma_psnr(e.colorize(luma(left), right), left) for e in (auto, rows))
    assert got > fixed + 3, (got, fixed)
    if dx and dy:
        assert auto.last_geometry.orientation.angle != 0  # a diagonal baseline is rotated, not snapped


def test_an_incoherent_flow_keeps_the_rig_direction() -> None:
    from streamfuse.engines.duallens import dominant_direction

    assert dominant_direction(np.tile(np.float32([-10, 3]), (20, 30, 1))) == pytest.approx((-10, 3))
    assert dominant_direction(np.zeros((20, 30, 2), np.float32)) is None  # no motion
    noise = np.random.default_rng(0).normal(0, 8, (20, 30, 2)).astype(np.float32)
    assert dominant_direction(noise) is None  # no direction shared by most pixels


def test_orientation_maps_the_search_direction_onto_minus_x() -> None:
    from streamfuse.engines.duallens import Orientation

    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.random((96, 128)).astype(np.float32), (0, 0), 2.0)
    for sx, sy in [(-1, 0), (1, 0), (0, 1), (0, -1), (0.8, -0.6)]:
        o = Orientation.for_direction(sx, sy)
        # the match of mono pixel p lies at p + 6·s in the reference: ref(p + 6 s) = mono(p)
        shift = np.float32([[1, 0, 6 * sx], [0, 1, 6 * sy]])
        ref = cv2.warpAffine(img, shift, img.shape[::-1], borderMode=cv2.BORDER_REFLECT)
        a, b = o.apply(img), o.apply(ref)
        (tx, ty), _ = cv2.phaseCorrelate(a, b, cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F))
        assert tx == pytest.approx(-6, abs=0.6) and ty == pytest.approx(0, abs=0.6), (sx, sy, tx, ty)
        assert o.undo(o.apply(img), (128, 96)).shape == img.shape


def test_baseline_from_a_calibration_fixes_the_direction(tmp_path: Path) -> None:
    from streamfuse.engines.duallens import baseline_from_calibration

    calib = ROOT / "calibration" / "synthetic-stereo.yaml"
    if not calib.is_file():
        pytest.skip("calibration/synthetic-stereo.yaml not present")
    assert baseline_from_calibration(calib) == pytest.approx((1.0, 0.0))
    assert baseline_from_calibration(calib, "left") == pytest.approx((-1.0, 0.0))
    left, right = _shifted_pair(0, 14)  # the colour camera above the mono camera
    eng = load_engine("duallens", threads=1, baseline=[0, -1])
    eng.colorize(luma(left), right)
    assert eng.last_geometry.orientation.k in (1, 3)
    bad = tmp_path / "bad.yaml"
    bad.write_text("left: {}\n")
    with pytest.raises(EngineError, match="P_rect"):
        baseline_from_calibration(bad)


def test_a_calibrated_rig_hands_the_engine_its_baseline() -> None:
    from dataclasses import replace

    from streamfuse.config import load_config
    from streamfuse.engines.duallens import rig_engine_options

    cfg = load_config(ROOT / "configs" / "demo-stereo.yaml")
    assert rig_engine_options(cfg)["baseline"] == pytest.approx([1.0, 0.0])
    fixed = replace(cfg, engine=replace(cfg.engine, options={"baseline": [0, 1]}))
    assert rig_engine_options(fixed) == {"baseline": [0, 1]}
    other = replace(cfg, engine=replace(cfg.engine, name="guided", options={}))
    assert rig_engine_options(other) == {}


def test_stream_reuses_the_previous_geometry_and_lowers_temporal_error() -> None:
    from conftest import textured_scene

    from streamfuse.data.stereo import stereo_rig_video
    from streamfuse.evaluation.stream import temporal_chroma_error

    stills = [textured_scene(200, 300, seed=i) for i in range(4)]
    video = stereo_rig_video(stills, np.random.default_rng(3), 160, 96, 6, 20)
    eng = load_engine("duallens", threads=1)
    framewise = [eng.colorize(s.mono, s.ref) for s in video]
    stream = eng.open_stream()
    streamed = []
    for s in video:
        stream.push_reference(s.ref)
        streamed.append(stream.colorize(s.mono))
        assert stream.prior is not None and stream.prior.flow is not None
    truth = [s.left for s in video]
    assert temporal_chroma_error(streamed, truth) < temporal_chroma_error(framewise, truth)
    stream.reset()
    assert stream.prior is None and not stream.has_reference


@pytest.mark.parametrize(
    "opts",
    [{"reference_side": "up"}, {"memory_gb": 0}, {"model": "no-such-model"}, {"geometry": "x"}, {"baseline": [0, 0]}],
)
def test_bad_options_raise_engine_error(opts: dict) -> None:
    with pytest.raises(EngineError):
        load_engine("duallens", **opts)


# --- network semantics and export parity (need torch) -------------------------------------------------------

TINY = {
    "n": 4,
    "blocks": 1,
    "stride": 2,
    "levels": 1,
    "max_disp": 8,
    "min_disp": -2,
    "residue_n": 4,
    "residue_blocks": 1,
    "diff": True,
}


def test_peaked_weights_copy_the_reference_chroma_at_that_disparity() -> None:
    torch = pytest.importorskip("torch")
    from streamfuse.models.duallens_arch import build_model, hat_filter, shift_stack

    net = build_model(TINY).eval()
    cands = net.candidates()
    k = list(cands).index(2)  # disparity 2 candidates x stride 2 = 4 px
    logits = torch.full((1, len(cands), 8, 16), -50.0)
    logits[:, k] = 50.0
    net.weight_logits = lambda y, ref_y, stats=None: logits  # the weight volume, forced to one disparity
    ref = torch.rand(1, 3, 16, 32)
    out = net(torch.rand(1, 1, 16, 32), ref)  # residue nets start at zero: out is the rough colorization
    # A one-hot volume copies the reference chroma from 4 px to the left (hat-filtered: sub-stride blending).
    want = shift_stack(hat_filter(ref[:, 1:], net.hat), range(4, 5))[:, :, 0]
    assert torch.allclose(out, want, atol=1e-5)
    assert torch.allclose(out[..., 6:], hat_filter(ref[:, 1:], net.hat)[..., 2:-4], atol=1e-5)


def test_unknown_config_key_is_named() -> None:
    pytest.importorskip("torch")
    from streamfuse.models.duallens_arch import build_model

    with pytest.raises(ValueError, match="widths"):
        build_model({"widths": 3})


@pytest.mark.parametrize("candidate", [False, True])
def test_onnx_export_matches_torch(tmp_path: Path, candidate: bool) -> None:
    torch = pytest.importorskip("torch")
    from streamfuse.models.duallens_arch import build_model, pad_multiple
    from streamfuse.train.duallens import duallens_graphs
    from streamfuse.train.export import export_engine

    torch.manual_seed(0)
    arch = {**TINY, "candidate": candidate}
    net = build_model(arch).eval()
    for p in net.parameters():  # leave the zero init so the residue branch and W are exercised
        p.data.add_(0.05 * torch.randn_like(p))
    manifest = export_engine(
        tmp_path / "tiny",
        engine="duallens",
        model=net,
        arch=arch,
        graphs=duallens_graphs(net, arch),
        pad_multiple=pad_multiple(arch),
    )
    assert manifest.parity["model"] <= 1  # the gate, on two sizes besides the trace size
    eng = load_engine("duallens", model=str(tmp_path / "tiny"), threads=1)
    left, right = stereo_scene(w=48, h=32)
    assert eng.colorize(luma(left), eng.prepare_reference(right)).shape == (32, 48, 3)


def test_candidate_blend_starts_halfway() -> None:
    torch = pytest.importorskip("torch")
    from streamfuse.models.duallens_arch import build_model

    net = build_model({**TINY, "candidate": True}).eval()
    y, ref, cand = torch.rand(1, 1, 16, 24), torch.rand(1, 3, 16, 24), torch.rand(1, 2, 16, 24)
    with torch.no_grad():
        out, rough = net.colorize(y, ref, cand)
    # Untrained: the blend weight is 1/2 and the residue is zero.
    assert torch.allclose(out, 0.5 * (rough + cand), atol=1e-6)
    with pytest.raises(ValueError, match="candidate"):
        net(y, ref)


def test_torch_backend_matches_onnxruntime_within_one_level() -> None:
    pytest.importorskip("torch")
    left, right = stereo_scene(w=96, h=64)
    outs = []
    for backend in ("onnxruntime", "torch"):
        eng = load_engine("duallens", backend=backend, threads=1)
        outs.append(eng.colorize(luma(left), eng.prepare_reference(right)).astype(int))
    d = np.abs(outs[0] - outs[1])  # chroma within the export gate's level; RGB rounding may add one more
    assert d.max() <= 2 and (d > 1).mean() < 1e-3
