"""The GPU backend: ONNX Runtime's TensorRT execution provider (FP16, engine cache, shape profiles), CUDA EP fallback.

It comes from the ``onnxruntime-gpu`` package (``pip install streamfuse[tensorrt]``), which replaces the CPU
``onnxruntime`` wheel. Importing this module imports no GPU library. When the TensorRT EP is missing but the CUDA
EP is there, the graph runs on the CUDA EP (logged); when neither is, one BackendUnavailable line says so.

TensorRT engines are cached by ONNX Runtime under ``cache_dir/ort-<version>/<precision>``: ORT names each engine by
the graph's hash, the precision and the GPU's compute capability, and the folder adds the onnxruntime version (which
fixes the TensorRT it was built for) so an upgrade never loads a stale engine. The first session builds for minutes,
later ones load in seconds; ``streamfuse build-engine`` builds them ahead of time (:func:`warm_cache`).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamfuse.runtime.base import BackendUnavailable
from streamfuse.runtime.onnxruntime import OrtExecutor
from streamfuse.runtime.shapes import DEFAULT_PROFILE, Dims, ShapeProfile, ort_profile_shapes

log = logging.getLogger(__name__)

PRECISIONS = ("fp16", "fp32")
TRT_EP, CUDA_EP = "TensorrtExecutionProvider", "CUDAExecutionProvider"


def default_cache_dir() -> Path:
    """``$STREAMFUSE_CACHE/tensorrt``, else ``$XDG_CACHE_HOME/streamfuse/tensorrt``, else ``~/.cache/...``."""
    root = os.environ.get("STREAMFUSE_CACHE")
    if root:
        return Path(root) / "tensorrt"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "streamfuse" / "tensorrt"


def engine_cache(cache_dir: str | Path | None, ort_version: str) -> Path:
    """The engine cache folder for one onnxruntime version (its precisions are subfolders)."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / f"ort-{ort_version}" if ort_version else root


def provider_chain(
    available: Sequence[str],
    inputs: Mapping[str, Dims],
    precision: str = "fp16",
    cache_dir: str | Path | None = None,
    profile: ShapeProfile | None = None,
    input_scales: Mapping[str, float | tuple[float, float]] | None = None,
    device: int = 0,
    ort_version: str = "",
) -> list[tuple[str, dict[str, Any]]]:
    """The (provider, options) list for an ORT session: TensorRT EP first, CUDA EP as the fallback.

    Raises:
        BackendUnavailable: an unknown precision, or neither GPU provider in ``available``.
    """
    if precision not in PRECISIONS:
        raise BackendUnavailable(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    chain: list[tuple[str, dict[str, Any]]] = []
    if TRT_EP in available:
        cache = engine_cache(cache_dir, ort_version)
        options: dict[str, Any] = {
            "device_id": device,
            "trt_fp16_enable": precision == "fp16",
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache / precision),
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(cache),
        }
        options.update(ort_profile_shapes(inputs, profile or DEFAULT_PROFILE, input_scales))
        chain.append((TRT_EP, options))
    if CUDA_EP in available:
        chain.append((CUDA_EP, {"device_id": device}))
    if not chain:
        raise BackendUnavailable(
            "backend tensorrt needs onnxruntime-gpu with the TensorRT or CUDA execution provider and an NVIDIA GPU "
            f"(this onnxruntime offers {', '.join(available) or 'none'}); `pip install streamfuse[tensorrt]`, "
            "or use backend onnxruntime"
        )
    return chain


def graph_inputs(model: str | Path) -> dict[str, Dims]:
    """Input names and shapes of an ONNX graph (-1 for a dynamic dim), read with a CPU session."""
    cpu = OrtExecutor(model, threads=1)
    return {i.name: tuple(d if isinstance(d, int) else -1 for d in i.shape) for i in cpu._session.get_inputs()}


class TensorRTExecutor(OrtExecutor):
    """Runs an ONNX graph on an NVIDIA GPU through ORT's TensorRT EP (CUDA EP fallback); ``provider`` says which.

    Args:
        model: the ``.onnx`` graph.
        precision: ``fp16`` (default) or ``fp32``.
        cache_dir: engine cache root (default :func:`default_cache_dir`).
        profile: frame sizes the engine must take, e.g. ``"320x240:1280x720:1920x1088"`` (default
            ``320x240:1280x720:1920x1088``).
        input_scales: size ratio to the frame of inputs not at frame resolution, e.g. ``{"ref": (0.125, 0.25)}``.
        device: CUDA device index.
        threads: accepted for option compatibility with the CPU backend; unused.

    Raises:
        BackendUnavailable: no GPU provider in this onnxruntime, or the session could not be created.
    """

    backend = "tensorrt"

    def __init__(
        self,
        model: str | Path,
        precision: str = "fp16",
        cache_dir: str | Path | None = None,
        profile: ShapeProfile | str | None = None,
        input_scales: Mapping[str, float | tuple[float, float]] | None = None,
        device: int = 0,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        if isinstance(profile, str):
            profile = ShapeProfile.parse(profile)
        available, inputs = ort.get_available_providers(), graph_inputs(model)
        chain = provider_chain(available, inputs, precision, cache_dir, profile, input_scales, device, ort.__version__)
        if chain[0][0] != TRT_EP:
            log.warning("onnxruntime has no TensorRT execution provider; %s runs on the CUDA EP", Path(model).name)
        try:
            super().__init__(model, providers=[name for name, _ in chain], provider_options=[o for _, o in chain])
        except Exception as exc:  # ORT raises its own exception types for driver, library and build failures
            raise BackendUnavailable(f"cannot run {model} on the GPU: {exc}; use backend onnxruntime") from exc
        self.precision = precision
        self.provider = self._session.get_providers()[0]


def warm_cache(
    graphs: Sequence[str | Path],
    precision: str = "fp16",
    profile: ShapeProfile = DEFAULT_PROFILE,
    cache_dir: str | Path | None = None,
    device: int = 0,
    input_scales: Mapping[str, float | tuple[float, float]] | None = None,
    force: bool = False,
) -> list[Path]:
    """Build and cache the TensorRT engines of ``graphs`` (``streamfuse build-engine``); returns the cache folder
    of each graph. One run at the profile's ``opt`` size makes ORT build the engine for the whole profile;
    ``force`` empties the precision's cache folder first."""
    import onnxruntime as ort

    folder = engine_cache(cache_dir, ort.__version__) / precision
    if force:
        shutil.rmtree(folder, ignore_errors=True)
    folders = []
    for graph in graphs:
        executor = TensorRTExecutor(graph, precision, cache_dir, profile, input_scales, device)
        shapes = ort_profile_shapes(graph_inputs(graph), profile, input_scales).get("trt_profile_opt_shapes", "")
        opt = {
            n: tuple(int(v) for v in d.split("x")) for n, d in (item.split(":") for item in shapes.split(",") if item)
        }
        feeds = {}
        for inp in executor._session.get_inputs():
            dims = opt.get(inp.name) or tuple(d if isinstance(d, int) else 1 for d in inp.shape)
            feeds[inp.name] = np.zeros(dims, np.uint8 if "uint8" in inp.type else np.float32)
        executor.run(feeds)
        folders.append(folder)
        log.info("%s: engine cached on %s (%s, profile %s)", Path(graph).name, executor.provider, precision, profile)
    return folders
