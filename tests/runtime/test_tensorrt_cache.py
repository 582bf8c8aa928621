"""CPU tests of the TensorRT plan cache: key stability and invalidation, stale/corrupt detection, rebuild logic."""

import json
import logging
import os
from dataclasses import replace
from types import SimpleNamespace

import pytest

from streamfuse.runtime import trt_build
from streamfuse.runtime.trt_cache import PlanCache, PlanKey, default_cache_dir
from streamfuse.runtime.trt_cuda import GpuInfo
from streamfuse.runtime.trt_manifest import resolve_engine_graphs
from streamfuse.runtime.trt_shapes import DEFAULT_PROFILE, ShapeProfile

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

KEY = PlanKey("ab" * 32, "NVIDIA RTX 4090", "8.9", "10.3.0", "fp16", str(DEFAULT_PROFILE))
GPU = GpuInfo("NVIDIA RTX 4090", "8.9")


def tiny_onnx(path, scale: float = 2.0):
    """A one-node graph y = x * scale with dynamic H and W, written to ``path``."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, "H", "W"])
    k = helper.make_tensor("k", TensorProto.FLOAT, [1], [scale])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"])], "tiny", [x], [y], initializer=[k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_key_digest_is_stable_and_covers_every_field():
    assert KEY.digest == PlanKey(*[getattr(KEY, f) for f in KEY.__dataclass_fields__]).digest
    assert len(KEY.digest) == 64
    changes = {
        "onnx_sha256": "cd" * 32,
        "gpu_name": "NVIDIA A100",
        "compute_capability": "8.0",
        "tensorrt_version": "10.4.0",
        "precision": "fp32",
        "profile": "320x240:640x480:1280x720",
    }
    digests = {replace(KEY, **{field: value}).digest for field, value in changes.items()}
    assert len(digests) == len(changes) and KEY.digest not in digests


def test_key_rejects_unknown_precision():
    with pytest.raises(ValueError, match="fp32, fp16"):
        replace(KEY, precision="int8")


def test_store_then_lookup_hits(tmp_path):
    cache = PlanCache(tmp_path)
    assert cache.lookup("ccdc", KEY).path is None
    assert "no cached plan" in cache.lookup("ccdc", KEY).reason
    path = cache.store("ccdc", KEY, b"plan-bytes")
    hit = cache.lookup("ccdc", KEY)
    assert hit.path == path and path.read_bytes() == b"plan-bytes"
    assert not list(tmp_path.glob("*.tmp*"))  # atomic writes leave no temp files


def test_stale_plan_is_explained_field_by_field(tmp_path):
    cache = PlanCache(tmp_path)
    cache.store("ccdc", KEY, b"old")
    upgraded = replace(KEY, tensorrt_version="10.4.0")
    result = cache.lookup("ccdc", upgraded)
    assert result.path is None
    assert "stale" in result.reason and "tensorrt_version 10.3.0 -> 10.4.0" in result.reason
    other_gpu = replace(KEY, gpu_name="NVIDIA A100", compute_capability="8.0")
    reason = cache.lookup("ccdc", other_gpu).reason
    assert "gpu_name NVIDIA RTX 4090 -> NVIDIA A100" in reason and "compute_capability 8.9 -> 8.0" in reason


@pytest.mark.parametrize(
    "damage, why",
    [
        (lambda plan, meta: plan.write_bytes(b"plan-bytXs"), "sha256 mismatch"),
        (lambda plan, meta: plan.write_bytes(b"plan"), "size 4 bytes"),
        (lambda plan, meta: meta.unlink(), "sidecar is missing"),
        (lambda plan, meta: meta.write_text("{not json"), "unreadable sidecar"),
    ],
)
def test_corrupt_plan_is_detected(tmp_path, damage, why):
    cache = PlanCache(tmp_path)
    plan = cache.store("ccdc", KEY, b"plan-bytes")
    damage(plan, plan.with_suffix(".json"))
    result = cache.lookup("ccdc", KEY)
    assert result.path is None and "corrupt" in result.reason and why in result.reason


def test_candidates_filter_and_order_newest_first(tmp_path):
    cache = PlanCache(tmp_path)
    a = cache.store("ccdc", KEY, b"a")
    b = cache.store("ccdc", replace(KEY, profile="320x240:640x480:1280x720"), b"b")
    cache.store("ccdc", replace(KEY, precision="fp32"), b"c")
    os.utime(a, (1, 1))
    found = cache.candidates("ccdc", precision="fp16", gpu_name=KEY.gpu_name)
    assert [p for _, p in found] == [b, a]
    cache.invalidate("ccdc", KEY)
    assert not a.exists() and [p for _, p in cache.candidates("ccdc", precision="fp16")] == [b]


def test_default_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STREAMFUSE_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "tensorrt"
    monkeypatch.delenv("STREAMFUSE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "streamfuse" / "tensorrt"


@pytest.fixture
def fake_build(monkeypatch):
    """Replace the TensorRT build step: records each build and returns deterministic plan bytes."""
    builds = []

    def build_plan(trt, onnx_path, precision, profiles, input_scales=None, workspace_bytes=None):
        builds.append((onnx_path.name, precision, [str(p) for p in profiles]))
        return f"plan:{onnx_path.name}:{precision}:{profiles[0]}".encode()

    monkeypatch.setattr(trt_build, "build_plan", build_plan)
    return builds


def test_ensure_plan_builds_once_then_reuses(tmp_path, fake_build, caplog):
    trt = SimpleNamespace(__version__="10.3.0")
    model = tiny_onnx(tmp_path / "tiny.onnx")
    caplog.set_level(logging.INFO, logger="streamfuse.runtime.trt_build")
    first = trt_build.ensure_plan(trt, GPU, model, "fp16", [DEFAULT_PROFILE], cache_dir=tmp_path / "cache")
    second = trt_build.ensure_plan(trt, GPU, model, "fp16", [DEFAULT_PROFILE], cache_dir=tmp_path / "cache")
    assert first == second and len(fake_build) == 1
    assert "no cached plan" in caplog.text and f"reusing TensorRT plan {first}" in caplog.text
    # profile=None reuses the newest plan build-engine made, whatever its profile
    assert trt_build.ensure_plan(trt, GPU, model, "fp16", None, cache_dir=tmp_path / "cache") == first
    assert len(fake_build) == 1


def test_ensure_plan_rebuilds_when_anything_in_the_key_changes(tmp_path, fake_build, caplog):
    cache = tmp_path / "cache"
    model = tiny_onnx(tmp_path / "tiny.onnx")
    trt = SimpleNamespace(__version__="10.3.0")
    base = trt_build.ensure_plan(trt, GPU, model, "fp16", [DEFAULT_PROFILE], cache_dir=cache)
    caplog.set_level(logging.INFO, logger="streamfuse.runtime.trt_build")
    trt_build.ensure_plan(trt, GPU, model, "fp32", [DEFAULT_PROFILE], cache_dir=cache)
    assert "precision fp16 -> fp32" in caplog.text
    small = ShapeProfile((160, 120), (320, 240), (640, 480))
    trt_build.ensure_plan(trt, GPU, model, "fp16", [small], cache_dir=cache)
    trt_build.ensure_plan(trt, GpuInfo("NVIDIA A100", "8.0"), model, "fp16", [DEFAULT_PROFILE], cache_dir=cache)
    trt_build.ensure_plan(SimpleNamespace(__version__="10.4.0"), GPU, model, "fp16", [DEFAULT_PROFILE], cache_dir=cache)
    tiny_onnx(model, scale=3.0)  # retrained weights: new ONNX sha256
    rebuilt = trt_build.ensure_plan(trt, GPU, model, "fp16", [DEFAULT_PROFILE], cache_dir=cache)
    assert len(fake_build) == 6 and rebuilt != base
    assert "onnx_sha256" in caplog.text and "tensorrt_version 10.3.0 -> 10.4.0" in caplog.text


def test_ensure_plan_rebuilds_a_corrupt_plan_and_says_why(tmp_path, fake_build, caplog):
    trt = SimpleNamespace(__version__="10.3.0")
    model = tiny_onnx(tmp_path / "tiny.onnx")
    plan = trt_build.ensure_plan(trt, GPU, model, "fp16", [DEFAULT_PROFILE], cache_dir=tmp_path)
    plan.write_bytes(plan.read_bytes()[:5])  # truncated by a crash or a full disk
    caplog.set_level(logging.INFO, logger="streamfuse.runtime.trt_build")
    again = trt_build.ensure_plan(trt, GPU, model, "fp16", [DEFAULT_PROFILE], cache_dir=tmp_path)
    assert again == plan and len(fake_build) == 2 and "corrupt" in caplog.text
    assert json.loads(plan.with_suffix(".json").read_text())["plan_bytes"] == len(plan.read_bytes())


def test_ensure_plan_missing_onnx_and_bad_precision(tmp_path):
    trt = SimpleNamespace(__version__="10.3.0")
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        trt_build.ensure_plan(trt, GPU, tmp_path / "nothing.onnx", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="fp32, fp16"):
        trt_build.ensure_plan(trt, GPU, tiny_onnx(tmp_path / "t.onnx"), "int8", cache_dir=tmp_path)


def test_profile_text_includes_input_scales():
    plain = trt_build.profile_text([DEFAULT_PROFILE])
    scaled = trt_build.profile_text([DEFAULT_PROFILE], {"ref": (0.125, 0.25)})
    assert plain == "320x240:1280x720:1920x1088" and scaled != plain and '"ref": [0.125, 0.25]' in scaled


def test_resolve_engine_graphs_from_a_manifest(tmp_path):
    folder = tmp_path / "ccdc"
    folder.mkdir()
    tiny_onnx(folder / "reference.onnx")
    tiny_onnx(folder / "frame.onnx")
    manifest = {"onnx": {"reference": "reference.onnx", "frame": "frame.onnx"}, "tensorrt": {}}
    manifest["tensorrt"]["input_scales"] = {"ref": [0.125, 0.25], "feat": 0.25}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    graphs = resolve_engine_graphs("ccdc", root=tmp_path)
    assert [p.name for p in graphs.onnx] == ["reference.onnx", "frame.onnx"]
    assert graphs.input_scales == {"ref": (0.125, 0.25), "feat": 0.25}


def test_resolve_engine_graphs_reads_every_onnx_key(tmp_path):
    from streamfuse.runtime.trt_manifest import input_scales_beside

    folder = tmp_path / "ccdc-paper"
    folder.mkdir()
    for name in ("paper.onnx", "reference.onnx", "unlisted.onnx"):
        tiny_onnx(folder / name)
    record = {"onnx": "paper.onnx", "onnx_reference": "reference.onnx", "weights": "paper.pt"}
    record["tensorrt"] = {"input_scales": {"ref1": 0.5}}
    (folder / "manifest.json").write_text(json.dumps(record))
    graphs = resolve_engine_graphs("ccdc-paper", root=tmp_path)
    assert [p.name for p in graphs.onnx] == ["paper.onnx", "reference.onnx"]
    assert input_scales_beside(folder / "paper.onnx") == {"ref1": 0.5}  # what the executor uses at run time
    assert input_scales_beside(tmp_path / "elsewhere.onnx") == {}


def test_resolve_engine_graphs_globs_and_explains_errors(tmp_path):
    from streamfuse.engines.base import EngineError

    (tmp_path / "plain").mkdir()
    tiny_onnx(tmp_path / "plain" / "model.onnx")
    (tmp_path / "plain" / "manifest.json").write_text("{}")
    assert [p.name for p in resolve_engine_graphs("plain", root=tmp_path).onnx] == ["model.onnx"]
    with pytest.raises(EngineError, match="ships no manifest.*plain"):
        resolve_engine_graphs("nope", root=tmp_path)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text(json.dumps({"onnx": "gone.onnx"}))
    with pytest.raises(EngineError, match="gone.onnx"):
        resolve_engine_graphs("broken", root=tmp_path)


def test_fp16_on_tensorrt_without_the_fp16_flag_is_a_clear_error(tmp_path):
    trt11 = SimpleNamespace(__version__="11.4.0", BuilderFlag=SimpleNamespace())  # TensorRT 11 removed FP16
    with pytest.raises(trt_build.EngineBuildError, match="TensorRT 11.4.0 has no FP16 builder flag.*--precision fp32"):
        trt_build.build_plan(trt11, tiny_onnx(tmp_path / "t.onnx"), "fp16", [DEFAULT_PROFILE])
