"""TensorRT on a real NVIDIA GPU: build, cache reuse, parity with ONNX Runtime, pipelining. Skipped without one."""

import json
import logging

import numpy as np
import pytest

from streamfuse.runtime.base import BackendUnavailable
from streamfuse.runtime.onnxruntime import OrtExecutor
from streamfuse.runtime.trt_shapes import ShapeProfile

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gpu():
    """Skip the module unless TensorRT, cuda-python and a GPU all work here."""
    pytest.importorskip("tensorrt")
    from streamfuse.runtime.trt_cuda import probe

    try:
        probe()
    except BackendUnavailable as exc:
        pytest.skip(f"no usable GPU: {exc}")


PROFILE = ShapeProfile((64, 48), (320, 240), (640, 480))
SCALES = {"ref": (0.125, 0.25)}


@pytest.fixture
def model(tmp_path):
    from test_tensorrt_runtime import tiny_graph

    path = tmp_path / "tiny.onnx"
    path.write_bytes(tiny_graph())
    return path


def _trt(model, cache, precision="fp32", **kw):
    from streamfuse.runtime.tensorrt import TensorRTExecutor

    return TensorRTExecutor(model, precision=precision, cache_dir=cache, profile=PROFILE, input_scales=SCALES, **kw)


def _inputs(seed=0, shape=(1, 1, 240, 320)):
    rng = np.random.default_rng(seed)
    ref = rng.random((1, 1, shape[2] // 4, shape[3] // 4), dtype=np.float32)
    return {"x": rng.random(shape, dtype=np.float32), "ref": ref}


@pytest.mark.parametrize("precision, tol", [("fp32", 1e-5), ("fp16", 2e-2)])
def test_parity_with_onnxruntime(gpu, model, tmp_path, precision, tol):
    ort = OrtExecutor(model)
    with _trt(model, tmp_path / "cache", precision) as trt:
        for seed, shape in enumerate([(1, 1, 240, 320), (1, 1, 480, 640), (1, 1, 48, 64)]):
            inputs = _inputs(seed, shape)
            got, want = trt.run(inputs), ort.run(inputs)
            np.testing.assert_allclose(got["y"], want["y"], rtol=tol, atol=tol)
            if precision == "fp32":  # a sum over a whole frame can overflow fp16; only the fp32 plan is held to it
                np.testing.assert_allclose(got["s"], want["s"], rtol=tol)


def test_second_start_reuses_the_cached_plan(gpu, model, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="streamfuse.runtime.trt_build")
    with _trt(model, tmp_path) as first:
        plan = first.plan_path
    mtime = plan.stat().st_mtime_ns
    with _trt(model, tmp_path) as second:
        assert second.plan_path == plan and plan.stat().st_mtime_ns == mtime
    assert f"reusing TensorRT plan {plan}" in caplog.text


def test_undeserializable_plan_is_rebuilt(gpu, model, tmp_path, caplog):
    from streamfuse.runtime.trt_cache import PlanCache, PlanKey

    with _trt(model, tmp_path) as trt:
        plan = trt.plan_path
    # garbage whose sidecar claims it is fine: only TensorRT itself can tell
    meta = plan.with_suffix(".json")
    record = json.loads(meta.read_text())
    PlanCache(tmp_path).store(plan.name.split(".")[0], PlanKey(**record["key"]), b"\0" * 1024)
    caplog.set_level(logging.WARNING, logger="streamfuse.runtime.tensorrt")
    with _trt(model, tmp_path) as trt:
        assert trt.run(_inputs())["y"].shape == (1, 1, 240, 320)
    assert "cannot deserialize" in caplog.text


def test_pipelined_submit_collect_and_resident_reference(gpu, model, tmp_path):
    ort = OrtExecutor(model)
    frames = [_inputs(seed) for seed in range(6)]
    ref = frames[0]["ref"].copy()
    ref.setflags(write=False)
    with _trt(model, tmp_path, depth=3) as trt:
        tickets = [trt.submit({"x": f["x"], "ref": ref}) for f in frames]
        for f, ticket in zip(frames, tickets, strict=True):
            np.testing.assert_allclose(trt.collect(ticket)["y"], ort.run({"x": f["x"], "ref": ref})["y"], rtol=1e-5)
        assert trt.uploads == len(frames) + 1


def test_build_engine_command_builds_then_reuses(gpu, model, tmp_path, capsys):
    from streamfuse import cli

    argv = ["build-engine", "--onnx", str(model), "--precision", "fp16", "--min", "64x48", "--opt", "320x240"]
    argv += ["--max", "640x480", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == first and len(list(tmp_path.glob("*.plan"))) == 1
