"""CCDC engines: ONNX export (dynamic sizes), torch/ORT parity, reference reuse, shipped weights, torch-free runtime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import textured_scene

from streamfuse.checksum import sha256_file
from streamfuse.color import luma, rgb_to_ycbcr
from streamfuse.data.degrade import downsample
from streamfuse.engines import load_engine
from streamfuse.engines.assets import engines_dir, load_engine_manifest
from streamfuse.engines.base import EngineError

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from streamfuse.models.ccdc_arch import CONFIGS, FAST_IN_CHANNELS, build_model  # noqa: E402
from streamfuse.train.ccdc import export_ccdc  # noqa: E402


def _model_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    torch.manual_seed(0)
    arch = CONFIGS[name]
    net = build_model(arch).eval()
    folder = tmp_path_factory.mktemp(name) / "model"
    export_ccdc(folder, net, arch, notes={"note": "random init, test only"})
    return folder


@pytest.fixture(scope="module")
def fast_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _model_folder(tmp_path_factory, "ccdc-tiny")


@pytest.fixture(scope="module")
def paper_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _model_folder(tmp_path_factory, "ccdc-paper-tiny")


def _pair(h: int = 96, w: int = 128, scale: int = 4, shift: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scene = textured_scene(h, w + shift, seed=5)
    truth = np.ascontiguousarray(scene[:, shift:])
    ref = downsample(np.ascontiguousarray(scene[:, :w]), scale)
    return luma(truth), ref, truth


def test_export_writes_manifest_with_hashes(fast_model: Path, paper_model: Path) -> None:
    for folder, graphs in ((fast_model, ["model.onnx"]), (paper_model, ["model.onnx", "reference.onnx"])):
        manifest, _ = load_engine_manifest(folder, engine="ccdc")
        assert manifest.notes["note"] == "random init, test only" and sorted(manifest.graphs.values()) == graphs
        assert all(level <= 1 for level in manifest.parity.values())
        for name in ["weights.pt", *graphs]:
            assert manifest.sha256[name] == sha256_file(folder / name)


def test_onnx_graph_has_dynamic_height_and_width(fast_model: Path) -> None:
    import onnxruntime as ort

    net = build_model(CONFIGS["ccdc-tiny"])
    net.load_state_dict(torch.load(fast_model / "weights.pt", weights_only=True)["model"])
    net.eval()
    session = ort.InferenceSession(str(fast_model / "model.onnx"), providers=["CPUExecutionProvider"])
    for h, w in ((32, 64), (96, 160)):
        x = np.random.default_rng(h).standard_normal((1, FAST_IN_CHANNELS, h, w)).astype(np.float32)
        got = session.run(None, {"features": x})[0]
        assert got.shape == (1, 2, h, w)
        np.testing.assert_allclose(got, net(torch.from_numpy(x)).detach().numpy(), atol=1e-4)


@pytest.mark.parametrize("engine_name, fixture", [("ccdc", "fast_model"), ("ccdc-paper", "paper_model")])
def test_torch_and_onnxruntime_agree_within_one_level(
    engine_name: str, fixture: str, request: pytest.FixtureRequest
) -> None:
    folder = request.getfixturevalue(fixture)
    mono, ref, _ = _pair(h=72, w=104)  # not a multiple of the network stride: exercises padding
    outs = []
    for backend in ("onnxruntime", "torch"):
        eng = load_engine(engine_name, model=str(folder), backend=backend, threads=1)
        outs.append(eng.colorize(mono, eng.prepare_reference(ref)).astype(int))
    assert outs[0].shape == (72, 104, 3)
    assert np.abs(outs[0] - outs[1]).max() <= 1


def test_paper_engine_runs_the_reference_branch_once_per_reference(paper_model: Path) -> None:
    eng = load_engine("ccdc-paper", model=str(paper_model), threads=1)
    calls = {"ref": 0}
    run = eng.ref_executor.run

    def counted(inputs):
        calls["ref"] += 1
        return run(inputs)

    eng.ref_executor.run = counted
    mono, ref, _ = _pair()
    state = eng.prepare_reference(ref)
    outs = [eng.colorize(np.roll(mono, k, axis=1), state) for k in range(3)]
    assert calls["ref"] == 1 and eng.reference_runs == 1 and eng.reference_calls == 1
    assert not np.array_equal(outs[0], outs[2])  # the mono frames did go through the network
    eng.colorize(mono, eng.prepare_reference(ref))  # a new reference: its branch runs again
    assert calls["ref"] == 2


def test_fast_engine_builds_reference_planes_once_per_reference(fast_model: Path) -> None:
    eng = load_engine("ccdc", model=str(fast_model), threads=1)
    mono, ref, _ = _pair()
    state = eng.prepare_reference(ref)
    for k in range(3):
        eng.colorize(np.roll(mono, k, axis=0), state)
    assert eng.reference_work == 1 and eng.reference_calls == 1


def test_engine_keeps_the_mono_luma(fast_model: Path) -> None:
    eng = load_engine("ccdc", model=str(fast_model), threads=1)
    mono, ref, _ = _pair()
    out = eng.colorize(mono, eng.prepare_reference(ref))
    assert np.abs(rgb_to_ycbcr(out)[..., 0].astype(int) - mono.astype(int)).max() <= 2


def test_wrong_model_kind_is_a_clear_error(fast_model: Path, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="ccdc-paper"):
        load_engine("ccdc-paper", model=str(fast_model))
    with pytest.raises(EngineError, match="manifest.json missing"):
        load_engine("ccdc", model=str(tmp_path))


SHIPPED = [n for n in ("ccdc", "ccdc-paper") if (engines_dir() / n / "manifest.json").is_file()]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_match_their_manifest(name: str) -> None:
    manifest, folder = load_engine_manifest(name, engine="ccdc")  # verifies every sha256
    assert manifest.data["sources"] and manifest.command.startswith("streamfuse train ccdc")
    assert manifest.epochs > 0 and manifest.minutes > 0 and manifest.validation["mean"] > 0
    assert set(manifest.sha256) == {"weights.pt", *manifest.graphs.values()}
    assert (manifest.classical_stage is not None) == (name == "ccdc")
    assert (folder / manifest.train_config["config_file"]).name.endswith(".yaml")


@pytest.mark.skipif("ccdc" not in SHIPPED, reason="shipped ccdc weights not present")
def test_shipped_ccdc_colours_a_shifted_scene() -> None:
    code = (
        "import sys, numpy as np\n"
        "sys.path.insert(0, 'tests')\n"
        "from conftest import textured_scene\n"
        "from streamfuse.color import luma, rgb_to_ycbcr\n"
        "from streamfuse.data.degrade import downsample\n"
        "from streamfuse.engines import load_engine\n"
        "scene = textured_scene(192, 260, seed=7)\n"
        "truth, ref = scene[:, 4:260], downsample(np.ascontiguousarray(scene[:, :256]), 4)\n"
        "eng = load_engine('ccdc', threads=1)\n"
        "out = eng.colorize(luma(np.ascontiguousarray(truth)), eng.prepare_reference(ref))\n"
        "err = rgb_to_ycbcr(out)[8:-8, 8:-8, 1:].astype(float) - rgb_to_ycbcr(truth)[8:-8, 8:-8, 1:]\n"
        "print(10 * np.log10(255 ** 2 / np.mean(err ** 2)))\n"
    )
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    assert float(res.stdout.split()[0]) > 30.0  # (never importing torch: tests/test_no_torch_at_runtime.py)
