"""CPU tests of the TensorRT executor's data path: buffer planning, pinned arenas, stream ordering, resident state.

A fake CUDA runtime defers every stream operation until the host synchronizes, and can rush the upload stream
ahead of the others; a missing event wait or an early host write then shows up as a wrong result. A fake
TensorRT engine runs the same tiny ONNX graph through ONNX Runtime, so outputs are checked against ORT.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from streamfuse.runtime.onnxruntime import OrtExecutor
from streamfuse.runtime.tensorrt import TensorRTExecutor
from streamfuse.runtime.trt_pipeline import StreamPipeline
from streamfuse.runtime.trt_shapes import DEFAULT_PROFILE, ProfileError, input_shapes

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


class FakeCuda:
    """Device memory as numpy arrays; stream work runs only when the host waits for it (``mode='lazy'``), or
    with the upload stream rushed ahead of compute and download (``mode='rush'``)."""

    def __init__(self, mode: str = "lazy"):
        self.mode = mode
        self.mem: dict[int, np.ndarray] = {}
        self.host_live: dict[int, np.ndarray] = {}
        self._addr = itertools.count(1 << 20, 1 << 24)
        self._tokens = itertools.count(1)
        self.streams: list[list] = []
        self.done: set[int] = set()
        self.executed: list[tuple[int, str]] = []  # (stream index, op kind), in execution order

    # memory
    def device_alloc(self, n):
        base = next(self._addr)
        self.mem[base] = np.full(max(n, 1), 0xEE, np.uint8)  # garbage, like real cudaMalloc
        return base

    def device_free(self, ptr):
        del self.mem[ptr]

    def host_alloc(self, n):
        arr = np.full(max(n, 1), 0xEE, np.uint8)
        self.host_live[arr.ctypes.data] = arr
        return arr

    def host_free(self, arr):
        del self.host_live[arr.ctypes.data]

    def device_view(self, ptr, n):
        for base, buf in self.mem.items():
            if base <= ptr and ptr + n <= base + buf.size:
                return buf[ptr - base : ptr - base + n]
        raise AssertionError(f"device access to freed or unallocated memory at {ptr:#x}")

    # streams and events
    def stream_create(self):
        self.streams.append([])
        return len(self.streams) - 1

    def event_create(self):
        return SimpleNamespace(token=None)

    def record(self, event, stream):
        event.token = next(self._tokens)
        self._enqueue(stream, ("record", event.token))

    def wait(self, stream, event):
        if event.token is not None:
            self._enqueue(stream, ("wait", event.token))

    def copy_h2d(self, dst, src, n, stream):
        self._enqueue(stream, ("h2d", lambda: self.device_view(dst, n).__setitem__(slice(None), src[:n])))

    def copy_d2h(self, dst, src, n, stream):
        self._enqueue(stream, ("d2h", lambda: dst[:n].__setitem__(slice(None), self.device_view(src, n))))

    def kernel(self, stream, fn):
        self._enqueue(stream, ("kernel", fn))

    def event_sync(self, event):
        if event.token is not None:
            self._complete(event.token)

    def stream_sync(self, stream):
        while self.streams[stream]:
            self._step(stream)

    def stream_destroy(self, stream):
        assert not self.streams[stream], "stream destroyed with queued work"

    def event_destroy(self, event):
        pass

    @staticmethod
    def handle_int(stream):
        return stream

    # the scheduler
    def _enqueue(self, stream, op):
        self.streams[stream].append(op)
        if self.mode == "rush":
            while self.streams[0] and (self.streams[0][0][0] != "wait" or self.streams[0][0][1] in self.done):
                self._step(0)

    def _step(self, stream):
        kind, arg = self.streams[stream][0]
        if kind == "wait":
            self._complete(arg)
        elif kind == "record":
            self.done.add(arg)
        else:
            arg()
        self.streams[stream].pop(0)
        self.executed.append((stream, kind))

    def _complete(self, token):
        while token not in self.done:
            stream = next(i for i, q in enumerate(self.streams) if any(op == ("record", token) for op in q))
            self._step(stream)


def tiny_graph() -> bytes:
    """y = 2·x + mean(ref) (x full-res, ref at reference res), s = sum(x) per image: two inputs, two outputs."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, "H", "W"])
    ref = helper.make_tensor_value_info("ref", TensorProto.FLOAT, [1, 1, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, "H", "W"])
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, 1, 1, 1])
    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    nodes = [
        helper.make_node("Mul", ["x", "two"], ["x2"]),
        helper.make_node("ReduceMean", ["ref"], ["m"], axes=[2, 3], keepdims=1),
        helper.make_node("Add", ["x2", "m"], ["y"]),
        helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=1),
    ]
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])
    graph = helper.make_graph(nodes, "tiny", [x, ref], [y, s], initializer=[two, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


FAKE_TRT = SimpleNamespace(TensorIOMode=SimpleNamespace(INPUT="in", OUTPUT="out"), nptype=lambda dt: dt)


class FakeEngine:
    """The TensorRT 10 engine/context calls the executor uses, computing with ORT on fake device memory."""

    def __init__(self, cuda: FakeCuda, ort: OrtExecutor, profiles=(DEFAULT_PROFILE,)):
        self.cuda, self.ort = cuda, ort
        self.modes = {"x": "in", "ref": "in", "y": "out", "s": "out"}
        self.scales = {"x": 1.0, "ref": (0.125, 0.25)}
        self.profiles = list(profiles)

    num_io_tensors = 4
    num_optimization_profiles = property(lambda self: len(self.profiles))

    def get_tensor_name(self, i):
        return list(self.modes)[i]

    def get_tensor_mode(self, name):
        return self.modes[name]

    def get_tensor_dtype(self, name):
        return np.float32

    def get_tensor_profile_shape(self, name, k):
        return input_shapes((1, 1, -1, -1), self.profiles[k], self.scales[name])

    def create_execution_context(self):
        return FakeContext(self)


class FakeContext:
    def __init__(self, engine: FakeEngine):
        self.engine = engine
        self.shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}
        self.profile = 0
        self.enqueued = 0

    def set_optimization_profile_async(self, index, stream):
        self.profile = index

    def set_input_shape(self, name, shape):
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        return self.shapes["x"] if name == "y" else (1, 1, 1, 1)

    def set_tensor_address(self, name, address):
        self.addresses[name] = address

    def execute_async_v3(self, stream):
        shapes, addresses, cuda = dict(self.shapes), dict(self.addresses), self.engine.cuda
        shapes.update(y=self.get_tensor_shape("y"), s=(1, 1, 1, 1))

        def view(name):
            n = int(np.prod(shapes[name])) * 4
            return cuda.device_view(addresses[name], n).view(np.float32).reshape(shapes[name])

        def run():
            out = self.engine.ort.run({"x": view("x").copy(), "ref": view("ref").copy()})
            view("y")[:] = out["y"]
            view("s")[:] = out["s"]

        cuda.kernel(stream, run)
        self.enqueued += 1
        return True


@pytest.fixture(scope="module")
def ort():
    return OrtExecutor(tiny_graph(), threads=1)


def make_executor(ort, mode="lazy", depth=3, profiles=(DEFAULT_PROFILE,)):
    cuda = FakeCuda(mode)
    engine = FakeEngine(cuda, ort, profiles)
    return TensorRTExecutor.from_engine(FAKE_TRT, engine, cuda, depth=depth, input_scales=engine.scales), cuda


def frames(n, shape=(1, 1, 240, 320), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random(shape, dtype=np.float32) for _ in range(n)]


def reference(value=0.5, shape=(1, 1, 60, 80)):
    ref = np.full(shape, value, np.float32)
    ref.setflags(write=False)  # marks it as reference state: it stays on the device
    return ref


@pytest.mark.parametrize("mode", ["lazy", "rush"])
@pytest.mark.parametrize("depth", [2, 3])
def test_pipelined_frames_match_ort(ort, mode, depth):
    trt, _ = make_executor(ort, mode, depth)
    ref = reference()
    xs = frames(7)
    tickets = [trt.submit({"x": x, "ref": ref}) for x in xs]  # more frames than slots: the ring recycles
    for x, ticket in zip(xs, tickets, strict=True):
        got = trt.collect(ticket)
        want = ort.run({"x": x, "ref": ref})
        np.testing.assert_allclose(got["y"], want["y"], rtol=1e-6)
        np.testing.assert_allclose(got["s"], want["s"], rtol=1e-5)
    trt.close()


def test_frames_stay_in_flight_until_the_ring_is_full(ort):
    trt, cuda = make_executor(ort, "lazy", depth=3)
    ref, xs = reference(), frames(4)
    for x in xs[:3]:
        trt.submit({"x": x, "ref": ref})
    assert cuda.executed == []  # three frames queued on the streams, host never blocked
    trt.submit({"x": xs[3], "ref": ref})
    # reusing slot 0 waited for frame 0 only: its upload, inference and download ran, on three streams
    assert {s for s, kind in cuda.executed if kind != "record"} == {0, 1, 2}
    assert [k for s, k in cuda.executed if s == 1].count("kernel") == 1
    trt.close()


def test_run_is_synchronous_and_matches_ort(ort):
    trt, _ = make_executor(ort, "rush")
    x = frames(1)[0]
    ref = reference(0.25)
    np.testing.assert_allclose(trt.run({"x": x, "ref": ref})["y"], ort.run({"x": x, "ref": ref})["y"], rtol=1e-6)
    assert trt.input_names == ["x", "ref"] and trt.output_names == ["y", "s"]
    trt.close()


@pytest.mark.parametrize("mode", ["lazy", "rush"])
def test_reference_state_is_uploaded_once_and_replaced_safely(ort, mode):
    trt, _ = make_executor(ort, mode, depth=3)
    old, new = reference(1.0), reference(5.0)
    xs = frames(6)
    tickets = [trt.submit({"x": x, "ref": old}) for x in xs[:3]]
    assert trt.uploads == 3 + 1  # three frames, one reference upload
    tickets += [trt.submit({"x": x, "ref": new}) for x in xs[3:]]  # replaced while old frames are in flight
    assert trt.uploads == 6 + 2
    for i, ticket in enumerate(tickets):
        ref = old if i < 3 else new
        np.testing.assert_allclose(trt.collect(ticket)["y"], 2 * xs[i] + ref.mean(), rtol=1e-6)
    trt.close()


def test_writable_inputs_upload_every_frame(ort):
    trt, _ = make_executor(ort)
    ref = np.full((1, 1, 60, 80), 0.5, np.float32)  # writable: could change in place, so never cached
    for x in frames(3):
        trt.run({"x": x, "ref": ref})
    assert trt.uploads == 6
    trt.close()


def test_shape_changes_replan_buffers(ort):
    trt, cuda = make_executor(ort, "lazy", depth=2)
    ref = reference()
    sizes = [(240, 320), (576, 768), (240, 320), (1088, 1920), (480, 640)]
    xs = [frames(1, (1, 1, h, w), seed=i)[0] for i, (h, w) in enumerate(sizes)]
    tickets = [trt.submit({"x": x, "ref": ref}) for x in xs]
    for x, ticket in zip(xs, tickets, strict=True):
        got = trt.collect(ticket)
        assert got["y"].shape == x.shape
        np.testing.assert_allclose(got["y"], 2 * x + 0.5, rtol=1e-6)
    trt.close()
    assert cuda.mem == {} and cuda.host_live == {}  # close() freed every device and pinned buffer


def test_uint8_input_is_converted_into_the_float_buffer(ort):
    trt, _ = make_executor(ort)
    x = np.arange(240 * 320, dtype=np.uint32).reshape(1, 1, 240, 320).astype(np.uint8)
    got = trt.run({"x": x, "ref": reference(0.0)})
    np.testing.assert_allclose(got["y"], 2.0 * x.astype(np.float32))
    with pytest.raises(ValueError, match="'x' has dtype complex64"):
        trt.run({"x": x.astype(np.complex64), "ref": reference(0.0)})
    trt.close()


def test_out_of_profile_frame_is_a_clear_error(ort):
    trt, _ = make_executor(ort)
    with pytest.raises(ProfileError, match="frame 3840x2160 is outside"):
        trt.run({"x": np.zeros((1, 1, 2160, 3840), np.float32), "ref": reference()})
    with pytest.raises(ProfileError, match="input 'ref'"):  # reference larger than 1/4 of the frame
        trt.run({"x": frames(1)[0], "ref": reference(shape=(1, 1, 300, 500))})
    with pytest.raises(ValueError, match="missing graph input"):
        trt.run({"x": frames(1)[0]})
    trt.close()


def test_profile_switches_with_frame_size(ort):
    from streamfuse.runtime.trt_shapes import ShapeProfile

    small = ShapeProfile((160, 120), (320, 240), (640, 480))
    trt, _ = make_executor(ort, profiles=(small, DEFAULT_PROFILE))
    assert trt.profiles == [small, DEFAULT_PROFILE]
    trt.run({"x": frames(1)[0], "ref": reference()})
    assert trt._context.profile == 0
    trt.run({"x": frames(1, (1, 1, 720, 1280))[0], "ref": reference(shape=(1, 1, 120, 200))})
    assert trt._context.profile == 1
    trt.close()


def test_pipeline_rejects_depth_below_two():
    with pytest.raises(ValueError, match=">= 2"):
        StreamPipeline(FakeCuda(), depth=1)


def test_collect_twice_is_an_error(ort):
    trt, _ = make_executor(ort)
    ticket = trt.submit({"x": frames(1)[0], "ref": reference()})
    trt.collect(ticket)
    with pytest.raises(KeyError, match="already collected"):
        trt.collect(ticket)
    trt.close()
    with pytest.raises(RuntimeError, match="closed"):
        trt.run({"x": frames(1)[0], "ref": reference()})


def test_without_a_full_resolution_input_profiles_are_chosen_per_input(ort):
    from streamfuse.runtime.trt_shapes import ShapeProfile

    cuda = FakeCuda()
    small = ShapeProfile((160, 120), (320, 240), (640, 480))
    engine = FakeEngine(cuda, ort, (small, DEFAULT_PROFILE))
    # e.g. a graph fed at working resolution: no input follows the frame size, so no frame profile exists
    trt = TensorRTExecutor.from_engine(FAKE_TRT, engine, cuda, input_scales={"x": (0.25, 0.5), "ref": 0.125})
    assert trt.profiles == []
    x = frames(1, (1, 1, 720, 1280))[0]  # only the second profile fits
    np.testing.assert_allclose(trt.run({"x": x, "ref": reference(shape=(1, 1, 120, 200))})["y"], 2 * x + 0.5)
    assert trt._context.profile == 1
    with pytest.raises(ProfileError, match="input 'x' has shape \\(1, 1, 2160, 3840\\)"):
        trt.run({"x": np.zeros((1, 1, 2160, 3840), np.float32), "ref": reference()})
    trt.close()
