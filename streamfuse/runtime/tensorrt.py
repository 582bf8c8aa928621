"""TensorRT executor: an ONNX graph compiled to a cached TensorRT plan, run on CUDA streams with pinned buffers.

Importing this module imports neither ``tensorrt`` nor ``cuda``; the constructor does, and anything missing
(library, driver or GPU) becomes one BackendUnavailable line naming it and pointing at ``backend=onnxruntime``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from streamfuse.runtime.base import BackendUnavailable, Executor
from streamfuse.runtime.trt_pipeline import StreamPipeline
from streamfuse.runtime.trt_shapes import ProfileError, ShapeProfile, check_shape, frame_profile, select_profile

log = logging.getLogger(__name__)

ProfileOption = ShapeProfile | str | Sequence[ShapeProfile | str] | None


def _profiles(profile: ProfileOption) -> list[ShapeProfile] | None:
    """Normalize the ``profile`` option: None, one profile (object or ``'min:opt:max'`` text) or a list of them."""
    if profile is None:
        return None
    items = [profile] if isinstance(profile, (ShapeProfile, str)) else list(profile)
    return [p if isinstance(p, ShapeProfile) else ShapeProfile.parse(p) for p in items]


class TensorRTExecutor(Executor):
    """Runs an ONNX graph as a TensorRT plan on an NVIDIA GPU, behind the same interface as ``OrtExecutor``.

    ``run`` is synchronous. ``submit``/``collect`` pipeline frames: submit frame N+1 before collecting frame N
    and its upload overlaps frame N's inference and frame N-1's download (``depth`` frames in flight at most).
    Read-only input arrays (reference state) stay resident on the device until a different array replaces them.
    """

    backend = "tensorrt"

    def __init__(
        self,
        model: str | Path,
        precision: str = "fp16",
        cache_dir: str | Path | None = None,
        profile: ProfileOption = None,
        input_scales: Mapping[str, float | tuple[float, float]] | None = None,
        depth: int = 3,
        device: int = 0,
        rebuild: bool = False,
        threads: int | None = None,
    ):
        """Load (or build and cache) the plan for ``model``.

        Args:
            model: path to the ``.onnx`` graph.
            precision: ``fp16`` (default) or ``fp32``.
            cache_dir: plan cache folder (default ``~/.cache/streamfuse/tensorrt``, or ``$STREAMFUSE_CACHE``).
            profile: frame-size profile(s), e.g. ``"320x240:1280x720:1920x1088"``; None reuses the newest cached
                plan for this graph (as made by ``streamfuse build-engine``) or builds the default profile.
            input_scales: size ratio to the frame of inputs not at frame resolution, e.g. ``{"ref": (0.125, 0.25)}``;
                None reads ``tensorrt.input_scales`` from a manifest.json beside the model.
            depth: frames in flight (>= 2).
            device: CUDA device index.
            rebuild: ignore the cache and build a fresh plan.
            threads: accepted for option compatibility with the ONNX Runtime backend; unused.

        Raises:
            BackendUnavailable: TensorRT, cuda-python, the driver or the GPU is missing, or the build failed.
        """
        from streamfuse.runtime.trt_build import EngineBuildError, ensure_plan
        from streamfuse.runtime.trt_cuda import probe
        from streamfuse.runtime.trt_manifest import input_scales_beside

        trt, cuda = probe(device)
        gpu = cuda.gpu_info()
        profiles = _profiles(profile)
        if input_scales is None:
            input_scales = input_scales_beside(model)
        options = {"precision": precision, "profiles": profiles, "input_scales": input_scales, "cache_dir": cache_dir}
        path = ensure_plan(trt, gpu, model, force=rebuild, **options)
        self._runtime, engine = _deserialize(trt, path)
        if engine is None:
            log.warning("TensorRT cannot deserialize %s (corrupt, or from another TensorRT build); rebuilding", path)
            path = ensure_plan(trt, gpu, model, force=True, **options)
            self._runtime, engine = _deserialize(trt, path)
            if engine is None:
                raise EngineBuildError(f"TensorRT cannot load the plan it just built ({path})")
        log.info("TensorRT %s on %s (sm %s): %s", trt.__version__, gpu.name, gpu.compute_capability, path)
        self.plan_path: Path | None = path
        self._bind(trt, engine, cuda, depth, input_scales)

    @classmethod
    def from_engine(
        cls,
        trt: ModuleType,
        engine: Any,
        cuda: Any,
        depth: int = 3,
        input_scales: Mapping[str, float | tuple[float, float]] | None = None,
    ) -> TensorRTExecutor:
        """Wrap an already deserialized ``ICudaEngine`` and a ``CudaRuntime`` (skips probing and the cache)."""
        obj = cls.__new__(cls)
        obj.plan_path = None
        obj._bind(trt, engine, cuda, depth, input_scales)
        return obj

    def _bind(self, trt: ModuleType, engine: Any, cuda: Any, depth: int, input_scales: Mapping | None) -> None:
        self._pipe: StreamPipeline | None = None
        self._engine = engine
        self._cuda = cuda
        self._context = engine.create_execution_context()
        if self._context is None:
            raise BackendUnavailable("TensorRT could not create an execution context (GPU out of memory?)")
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self._inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if n not in self._inputs]
        self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        self._bounds = [
            {n: tuple(tuple(int(d) for d in s) for s in engine.get_tensor_profile_shape(n, k)) for n in self._inputs}
            for k in range(engine.num_optimization_profiles)
        ]
        # the frame input: the first full-resolution image-like input; profiles are chosen by its size
        scales = input_scales or {}
        full_res = [
            n
            for n in self._inputs
            if scales.get(n, 1.0) in (1.0, (1.0, 1.0)) and self._bounds and len(self._bounds[0][n][0]) >= 2
        ]
        self._frame_input: str | None = full_res[0] if full_res else None
        self._frame_profiles = [frame_profile(b[self._frame_input]) for b in self._bounds] if full_res else []
        self._active_profile = 0
        self._pipe = StreamPipeline(cuda, depth)

    @property
    def profiles(self) -> list[ShapeProfile]:
        """The frame-size profiles the plan accepts (empty when no input is at frame resolution)."""
        return list(self._frame_profiles)

    @property
    def uploads(self) -> int:
        """Host-to-device input copies issued so far (resident reference inputs are copied once)."""
        return self._pipe.uploads if self._pipe else 0

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.collect(self.submit(inputs))

    def submit(self, inputs: Mapping[str, np.ndarray]) -> int:
        """Queue one inference; returns a ticket for ``collect``."""
        if self._pipe is None:
            raise RuntimeError("this TensorRT executor is closed")
        missing = [n for n in self._inputs if n not in inputs]
        if missing:
            raise ValueError(f"missing graph input(s): {', '.join(missing)}")
        arrays = {n: np.asarray(inputs[n]) for n in self._inputs}
        index = self._select(arrays)
        ctx = self._context
        if index != self._active_profile:
            ctx.set_optimization_profile_async(index, self._cuda.handle_int(self._pipe.compute))
            self._active_profile = index
        for name, array in arrays.items():
            if not ctx.set_input_shape(name, tuple(array.shape)):
                raise BackendUnavailable(f"TensorRT rejected shape {array.shape} for input {name!r}")
        out_specs = {}
        for name in self._outputs:
            shape = tuple(int(d) for d in ctx.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise BackendUnavailable(f"output {name!r} has a data-dependent shape, which this backend lacks")
            out_specs[name] = (shape, self._dtypes[name])

        def enqueue(addresses: dict[str, int], stream: Any) -> None:
            for name, address in addresses.items():
                ctx.set_tensor_address(name, address)
            if not ctx.execute_async_v3(self._cuda.handle_int(stream)):
                raise BackendUnavailable("TensorRT failed to enqueue inference (see the TensorRT log)")

        return self._pipe.submit(arrays, self._dtypes, out_specs, enqueue)

    def collect(self, ticket: int) -> dict[str, np.ndarray]:
        """Outputs of a submitted inference, waiting for it if needed."""
        if self._pipe is None:
            raise RuntimeError("this TensorRT executor is closed")
        return self._pipe.collect(ticket)

    def _select(self, arrays: Mapping[str, np.ndarray]) -> int:
        """The optimization profile for these inputs; ProfileError names the frame or the input out of range.

        With a full-resolution frame input the profile is picked by frame size; otherwise the first profile
        that fits every input is used.
        """
        candidates: Sequence[int] = range(len(self._bounds))
        if self._frame_input is not None:
            shape = arrays[self._frame_input].shape
            if len(shape) < 2:
                raise ValueError(f"input {self._frame_input!r} must have height and width as its last dims")
            candidates = [select_profile(self._frame_profiles, width=shape[-1], height=shape[-2])]
        error: ProfileError | None = None
        for index in candidates:
            try:
                for name, array in arrays.items():
                    check_shape(name, array.shape, self._bounds[index][name])
            except ProfileError as exc:
                error = error or exc
                continue
            return index
        raise error or ProfileError("this TensorRT plan has no optimization profile")

    def close(self) -> None:
        """Finish queued work and free GPU buffers, streams and events."""
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit CUDA may already be gone
            self.close()

    def __enter__(self) -> TensorRTExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _deserialize(trt: ModuleType, path: Path) -> tuple[Any, Any]:
    """(runtime, ICudaEngine) for a plan file; the engine is None when TensorRT rejects the plan."""
    from streamfuse.runtime.trt_build import trt_logger

    runtime = trt.Runtime(trt_logger(trt))
    return runtime, runtime.deserialize_cuda_engine(path.read_bytes())
