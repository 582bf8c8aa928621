"""Build TensorRT plans from ONNX with the tensorrt ONNX parser, through the plan cache.

``ensure_plan`` is the one entry point used by both ``streamfuse build-engine`` and the TensorRT executor:
it computes the cache key, reuses a matching plan, and otherwise builds (logging why) and stores a new one.
Everything that touches ``tensorrt`` takes the imported module as an argument, so nothing imports it early.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from streamfuse.runtime.base import BackendUnavailable
from streamfuse.runtime.trt_cache import PRECISIONS, PlanCache, PlanKey, sha256_file
from streamfuse.runtime.trt_cuda import GpuInfo
from streamfuse.runtime.trt_shapes import ShapeProfile, input_shapes

log = logging.getLogger(__name__)

Scales = Mapping[str, float | tuple[float, float]]


class EngineBuildError(BackendUnavailable):
    """TensorRT could not parse or build a graph; the message carries TensorRT's first error."""


def profile_text(profiles: Sequence[ShapeProfile], input_scales: Scales | None = None) -> str:
    """The profile part of the cache key: frame profiles plus the per-input scale hints that shape them."""
    scales = {k: list(v) if isinstance(v, tuple) else v for k, v in sorted((input_scales or {}).items())}
    return "|".join(str(p) for p in profiles) + ("" if not scales else " " + json.dumps(scales, sort_keys=True))


@functools.cache
def trt_logger(trt: ModuleType) -> Any:
    """The process-wide TensorRT logger, forwarding to Python logging (TensorRT wants one logger that outlives
    every builder, runtime and engine, so it is created once and kept)."""

    class _Forward(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            level = int(severity)  # INTERNAL_ERROR=0, ERROR=1, WARNING=2, INFO=3, VERBOSE=4
            if level <= int(trt.ILogger.Severity.ERROR):
                log.error("TensorRT: %s", msg)
            elif level <= int(trt.ILogger.Severity.WARNING):
                log.warning("TensorRT: %s", msg)
            else:
                log.debug("TensorRT: %s", msg)

    return _Forward()


def build_plan(
    trt: ModuleType,
    onnx: Path,
    precision: str,
    profiles: Sequence[ShapeProfile],
    input_scales: Scales | None = None,
    workspace_bytes: int | None = None,
) -> bytes:
    """Parse ``onnx`` and build a serialized plan with one optimization profile per frame profile."""
    if precision == "fp16" and not hasattr(trt.BuilderFlag, "FP16"):
        raise EngineBuildError(
            f"TensorRT {trt.__version__} has no FP16 builder flag (TensorRT 11 builds fp16 only from an fp16 ONNX "
            "graph); install TensorRT 10 with `pip install 'tensorrt>=10,<11'`, or use --precision fp32"
        )
    logger = trt_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineBuildError(f"TensorRT cannot parse {onnx.name}: {errors[0] if errors else 'unknown error'}")
    config = builder.create_builder_config()
    if workspace_bytes:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if precision == "fp16":
        if not getattr(builder, "platform_has_fast_fp16", True):
            log.warning("this GPU has no fast FP16; the fp16 plan may not be faster than fp32")
        config.set_flag(trt.BuilderFlag.FP16)
    scales = input_scales or {}
    for frame_profile in profiles:
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            try:
                lo, opt, hi = input_shapes(tuple(tensor.shape), frame_profile, scales.get(tensor.name, 1.0))
            except ValueError as exc:
                raise EngineBuildError(f"{onnx.name} input {tensor.name!r}: {exc}") from exc
            profile.set_shape(tensor.name, lo, opt, hi)
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build {onnx.name} (see the TensorRT errors logged above)")
    return bytes(serialized)


def ensure_plan(
    trt: ModuleType,
    gpu: GpuInfo,
    onnx: str | Path,
    precision: str = "fp16",
    profiles: Sequence[ShapeProfile] | None = None,
    input_scales: Scales | None = None,
    cache_dir: str | Path | None = None,
    force: bool = False,
) -> Path:
    """Path of a valid plan for this graph on this GPU: the cached one when its key matches, else a new build.

    With ``profiles=None`` the newest cached plan for this graph, GPU, TensorRT version and precision is used
    (whatever profile ``build-engine`` gave it); if there is none, the default profile is built.
    """
    from streamfuse.runtime.trt_shapes import DEFAULT_PROFILE

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    onnx = Path(onnx)
    if not onnx.is_file():
        raise FileNotFoundError(f"ONNX graph {onnx} not found")
    cache = PlanCache(cache_dir)
    stem = onnx.stem
    ident = {
        "onnx_sha256": sha256_file(onnx),
        "gpu_name": gpu.name,
        "compute_capability": gpu.compute_capability,
        "tensorrt_version": trt.__version__,
        "precision": precision,
    }
    if profiles is None and not force:
        found = cache.candidates(stem, **ident)
        if found:
            log.info("reusing TensorRT plan %s (profile %s)", found[0][1], found[0][0].profile)
            return found[0][1]
    profiles = list(profiles or [DEFAULT_PROFILE])
    key = PlanKey(**ident, profile=profile_text(profiles, input_scales))
    found_plan = cache.lookup(stem, key)
    if found_plan.path is not None and not force:
        log.info("reusing TensorRT plan %s", found_plan.path)
        return found_plan.path
    log.info("%s", "rebuild forced; building" if force else found_plan.reason)
    start = time.perf_counter()
    plan = build_plan(trt, onnx, precision, profiles, input_scales)
    path = cache.store(stem, key, plan)
    log.info("built TensorRT %s plan %s in %.1f s (%d bytes)", precision, path, time.perf_counter() - start, len(plan))
    return path


def build_engine_plans(
    engine: str | None,
    onnx: str | Path | None = None,
    precision: str = "fp16",
    profile: ShapeProfile | None = None,
    cache_dir: str | Path | None = None,
    force: bool = False,
    device: int = 0,
) -> list[Path]:
    """What ``streamfuse build-engine`` does: plans for an engine's shipped graphs (or one ``onnx`` file).

    The GPU stack is probed first, so a machine without one gets the one-line reason before anything else.
    """
    from streamfuse.runtime.trt_cuda import probe
    from streamfuse.runtime.trt_manifest import resolve_engine_graphs
    from streamfuse.runtime.trt_shapes import DEFAULT_PROFILE

    trt, cuda = probe(device)
    gpu = cuda.gpu_info()
    if onnx is not None:
        graphs, scales = [Path(onnx)], {}
    else:
        found = resolve_engine_graphs(engine or "")
        graphs, scales = found.onnx, found.input_scales
    profiles = [profile or DEFAULT_PROFILE]
    log.info("building for %s (sm %s), TensorRT %s", gpu.name, gpu.compute_capability, trt.__version__)
    return [ensure_plan(trt, gpu, g, precision, profiles, scales, cache_dir, force) for g in graphs]
