"""The no-GPU path: CPU installs never import the GPU stack, and asking for it gives one clear line, no traceback."""

import subprocess
import sys
import types
from pathlib import Path

import pytest

from streamfuse import cli
from streamfuse.runtime.base import BackendUnavailable
from streamfuse.runtime.factory import create_executor
from streamfuse.runtime.trt_cuda import CudaRuntime, probe

ROOT = Path(__file__).resolve().parents[2]


def _has(module: str) -> bool:
    try:
        __import__(module)
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False
    return True


needs_no_tensorrt = pytest.mark.skipif(_has("tensorrt"), reason="TensorRT is installed here")


def test_cpu_imports_never_load_tensorrt_or_cuda():
    show = "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorrt', 'cuda', 'pycuda')))"
    imports = "import streamfuse, streamfuse.cli, streamfuse.runtime.tensorrt, streamfuse.runtime.nvenc"
    # cuda-python's .pth file imports the bare `cuda` namespace at start-up, so compare with a bare interpreter
    runs = [
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        for code in (f"import sys\n{show}", f"import sys, streamfuse.runtime.trt_build\n{imports}\n{show}")
    ]
    assert runs[1] == runs[0] and "cuda.bindings" not in runs[1] and "tensorrt" not in runs[1]


@needs_no_tensorrt
def test_tensorrt_backend_without_tensorrt_is_one_clear_line(tmp_path):
    with pytest.raises(BackendUnavailable) as info:
        create_executor(tmp_path / "model.onnx", backend="tensorrt")
    message = str(info.value)
    assert "\n" not in message and "TensorRT" in message
    assert "pip install streamfuse[tensorrt]" in message and "use backend=onnxruntime instead" in message


@needs_no_tensorrt
def test_build_engine_cli_without_tensorrt(capsys):
    argv = ["build-engine", "--engine", "ccdc", "--precision", "fp16", "--min", "320x240", "--opt", "1280x720"]
    assert cli.main([*argv, "--max", "1920x1088"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("streamfuse build-engine: error: ")
    assert "TensorRT" in err[0] and "use backend=onnxruntime instead" in err[0]


@needs_no_tensorrt
def test_build_engine_subprocess_prints_no_traceback():
    cmd = [sys.executable, "-m", "streamfuse.cli", "build-engine", "--engine", "ccdc", "--precision", "fp16"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "TensorRT" in out.stderr


def test_build_engine_checks_its_arguments(capsys):
    assert cli.main(["build-engine"]) == 2
    assert "give --engine NAME" in capsys.readouterr().err
    assert cli.main(["build-engine", "--engine", "ccdc", "--min", "2000x240"]) == 2
    assert "widths out of order" in capsys.readouterr().err


def _fake_gpu_stack(monkeypatch, cudart):
    """Make `tensorrt` and `cuda.bindings.runtime` importable as stand-ins."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.3.0"
    cuda, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    cuda.bindings, bindings.runtime = bindings, cudart
    for name, mod in (
        ("tensorrt", trt),
        ("cuda", cuda),
        ("cuda.bindings", bindings),
        ("cuda.bindings.runtime", cudart),
    ):
        monkeypatch.setitem(sys.modules, name, mod)


def _cudart(count=None, error=0, raises=None):
    rt = types.ModuleType("cuda.bindings.runtime")

    def device_count():
        if raises:
            raise raises
        return (error, count)

    rt.cudaGetDeviceCount = device_count
    rt.cudaGetErrorString = lambda err: (0, b"no CUDA-capable device is detected")
    rt.cudaSetDevice = lambda dev: (0,)
    return rt


def test_no_device_is_one_clear_line(monkeypatch):
    _fake_gpu_stack(monkeypatch, _cudart(error=100))
    with pytest.raises(BackendUnavailable, match="no usable CUDA device or driver .*no CUDA-capable device"):
        probe()


def test_zero_devices_and_bad_index(monkeypatch):
    _fake_gpu_stack(monkeypatch, _cudart(count=0))
    with pytest.raises(BackendUnavailable, match="no CUDA device found; use backend=onnxruntime instead"):
        probe()
    with pytest.raises(BackendUnavailable, match="CUDA device 3 does not exist \\(found 1\\)"):
        CudaRuntime(3, cudart=_cudart(count=1))


def test_missing_driver_library_is_one_clear_line(monkeypatch):
    _fake_gpu_stack(monkeypatch, _cudart(raises=RuntimeError("Failed to dlopen libcuda.so.1")))
    with pytest.raises(BackendUnavailable, match="CUDA driver is unusable .*libcuda.so.1"):
        probe()


def test_only_cuda_python_missing_is_named(monkeypatch):
    _fake_gpu_stack(monkeypatch, _cudart(count=1))
    monkeypatch.setitem(sys.modules, "cuda", None)  # makes `import cuda` raise ImportError
    with pytest.raises(BackendUnavailable) as info:
        probe()
    assert "needs cuda-python, which is not installed" in str(info.value)


@needs_no_tensorrt
def test_learned_engine_with_tensorrt_backend_is_one_line(tmp_path, capsys):
    import cv2
    import numpy as np

    from streamfuse.engines.assets import engines_dir

    shipped = [n for n in ("ccdc", "duallens", "ccdc-paper") if (engines_dir() / n / "manifest.json").is_file()]
    if not shipped:
        pytest.skip("no learned engine with ONNX graphs is shipped yet")
    mono, ref = tmp_path / "mono.png", tmp_path / "ref.png"
    cv2.imwrite(str(mono), np.full((96, 128), 128, np.uint8))
    cv2.imwrite(str(ref), np.full((24, 32, 3), 128, np.uint8))
    argv = ["colorize", "--engine", shipped[0], "--opt", "backend=tensorrt", "--mono", str(mono), "--ref", str(ref)]
    assert cli.main([*argv, "-o", str(tmp_path / "out.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "TensorRT" in err[0] and "backend=onnxruntime" in err[0]


def test_stream_handle_is_the_handle_value_not_its_address():
    class Stream:  # like cuda-python's cudaStream_t: int() is the handle, getPtr() where it is stored
        def __int__(self):
            return 1234

        def getPtr(self):  # noqa: N802 - cuda-python's name
            return 0x7F0000001000

    assert CudaRuntime.handle_int(Stream()) == 1234


def test_real_cuda_python_has_every_call_we_make():
    rt = pytest.importorskip("cuda.bindings.runtime")
    used = [
        "cudaGetDeviceCount", "cudaSetDevice", "cudaGetDeviceProperties", "cudaGetErrorString", "cudaMalloc",
        "cudaFree", "cudaMallocHost", "cudaFreeHost", "cudaStreamCreateWithFlags", "cudaStreamDestroy",
        "cudaEventCreateWithFlags", "cudaEventDestroy", "cudaEventRecord", "cudaStreamWaitEvent",
        "cudaEventSynchronize", "cudaStreamSynchronize", "cudaMemcpyAsync", "cudaStreamNonBlocking",
        "cudaEventDisableTiming",
    ]  # fmt: skip
    assert [name for name in used if not hasattr(rt, name)] == []
    assert int(rt.cudaMemcpyKind.cudaMemcpyHostToDevice) == 1 and int(rt.cudaMemcpyKind.cudaMemcpyDeviceToHost) == 2
    assert CudaRuntime.handle_int(rt.cudaStream_t(1234)) == 1234
    try:
        CudaRuntime()
    except BackendUnavailable as exc:  # no GPU or driver here: one line, naming the fallback
        assert "\n" not in str(exc) and "backend=onnxruntime" in str(exc)
