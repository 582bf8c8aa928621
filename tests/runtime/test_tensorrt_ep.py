"""The GPU backend's CPU-side logic: ORT TensorRT-EP options, profiles, fallback and errors (no GPU needed).

The one test that needs a GPU (``-m gpu``) compares ORT-TensorRT with the CPU on a shipped graph; it is skipped
cleanly where onnxruntime has no GPU provider. Nothing here has run on an NVIDIA GPU yet (docs/GPU.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamfuse.errors import BackendUnavailable
from streamfuse.runtime import factory
from streamfuse.runtime.shapes import ShapeProfile, ort_profile_shapes
from streamfuse.runtime.tensorrt import CUDA_EP, TRT_EP, graph_inputs, provider_chain

ROOT = Path(__file__).resolve().parents[2]
CCDC = ROOT / "engines" / "ccdc" / "model.onnx"
PROFILE = ShapeProfile((320, 240), (1280, 720), (1920, 1088))


def test_tensorrt_ep_first_with_fp16_cache_and_profiles_then_cuda(tmp_path: Path) -> None:
    inputs = {"mono": (1, 1, -1, -1), "ref": (1, 3, -1, -1), "k": (1, 4)}
    chain = provider_chain([TRT_EP, CUDA_EP, "CPUExecutionProvider"], inputs, "fp16", tmp_path, PROFILE,
                           {"ref": 0.25}, device=1, ort_version="1.32.0")  # fmt: skip
    assert [name for name, _ in chain] == [TRT_EP, CUDA_EP]
    trt = chain[0][1]
    assert trt["trt_fp16_enable"] is True and trt["device_id"] == 1
    assert trt["trt_engine_cache_enable"] and trt["trt_engine_cache_path"] == str(tmp_path / "ort-1.32.0" / "fp16")
    assert trt["trt_profile_min_shapes"] == "mono:1x1x240x320,ref:1x3x60x80"  # static inputs need no profile
    assert trt["trt_profile_opt_shapes"] == "mono:1x1x720x1280,ref:1x3x180x320"
    assert trt["trt_profile_max_shapes"] == "mono:1x1x1088x1920,ref:1x3x272x480"
    fp32 = provider_chain([TRT_EP], inputs, "fp32", tmp_path, PROFILE)[0][1]
    assert fp32["trt_fp16_enable"] is False and fp32["trt_engine_cache_path"] == str(tmp_path / "fp32")


def test_cuda_ep_alone_is_the_fallback_and_no_gpu_is_one_clear_error() -> None:
    assert provider_chain([CUDA_EP, "CPUExecutionProvider"], {"x": (1, 3, -1, -1)}) == [(CUDA_EP, {"device_id": 0})]
    with pytest.raises(BackendUnavailable, match=r"onnxruntime-gpu.*use backend onnxruntime"):
        provider_chain(["CPUExecutionProvider"], {})
    with pytest.raises(BackendUnavailable, match="precision must be one of fp16, fp32"):
        provider_chain([TRT_EP], {}, precision="int4")


@pytest.mark.skipif(not CCDC.is_file(), reason="the shipped ccdc graph is not installed")
def test_profiles_of_a_shipped_graph_follow_its_dynamic_dims() -> None:
    inputs = graph_inputs(CCDC)
    assert all(len(dims) == 4 and dims[-2:] == (-1, -1) for dims in inputs.values())
    shapes = ort_profile_shapes(inputs, PROFILE, {name: 0.25 for name in inputs})
    assert shapes["trt_profile_opt_shapes"].endswith("x180x320")


def test_create_executor_gives_the_rig_precision_to_the_gpu_backend(monkeypatch) -> None:
    seen = {}

    class Fake:
        def __init__(self, model, **options) -> None:
            seen.update(options, model=model)

    import streamfuse.runtime.tensorrt as trt

    monkeypatch.setattr(trt, "TensorRTExecutor", Fake)
    with factory.gpu_options(precision="fp32", cache_dir=None):
        factory.create_executor("m.onnx", "tensorrt", threads=2)
    assert seen == {"model": "m.onnx", "precision": "fp32", "threads": 2}
    seen.clear()
    factory.create_executor("m.onnx", "tensorrt")  # outside the block: the backend's own default
    assert seen == {"model": "m.onnx"}


def test_tensorrt_backend_without_a_gpu_says_so_in_one_line() -> None:
    import onnxruntime as ort

    if {TRT_EP, CUDA_EP} & set(ort.get_available_providers()):
        pytest.skip("this onnxruntime has a GPU provider")
    with pytest.raises(BackendUnavailable, match="use backend onnxruntime"):
        factory.create_executor(CCDC if CCDC.is_file() else "missing.onnx", "tensorrt")


@pytest.mark.gpu
@pytest.mark.skipif(not CCDC.is_file(), reason="the shipped ccdc graph is not installed")
def test_ort_tensorrt_matches_the_cpu_on_a_shipped_graph(tmp_path: Path) -> None:
    import onnxruntime as ort

    if TRT_EP not in ort.get_available_providers():
        pytest.skip("needs onnxruntime-gpu with the TensorRT EP and an NVIDIA GPU")
    gpu = factory.create_executor(CCDC, "tensorrt", precision="fp16", cache_dir=tmp_path)
    cpu = factory.create_executor(CCDC, "onnxruntime")
    rng = np.random.default_rng(0)
    feeds = {name: rng.random((1, 20, 64, 80), np.float32) for name in cpu.input_names}
    a, b = cpu.run(feeds), gpu.run(feeds)
    for name in cpu.output_names:
        assert np.max(np.abs(a[name] - b[name])) < 0.05  # fp16 tolerance on unit-range outputs
