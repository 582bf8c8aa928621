"""Batch jobs without Ray: defaults, resources, retries then a report, the manifest and skipping finished jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamfuse.batch import Job, format_result, load_batch, run_batch
from streamfuse.errors import ConfigError


def make_batch(tmp_path: Path, body: str) -> Path:
    for name in ("m.mp4", "c.mp4", "ref.png"):
        (tmp_path / name).write_bytes(b"x")
    path = tmp_path / "jobs.yaml"
    path.write_text(body)
    return path


class FakeRunner:
    """Writes the output file; fails the jobs named in ``fail`` (every attempt) or ``flaky`` (the first one)."""

    def __init__(self, fail: set[str] = frozenset(), flaky: set[str] = frozenset()) -> None:
        self.fail, self.flaky, self.calls = fail, set(flaky), []

    def __call__(self, job: Job) -> dict:
        self.calls.append(job.name)
        if job.name in self.fail:
            raise RuntimeError(f"{job.mono}: corrupt packet at frame 3")
        if job.name in self.flaky:
            self.flaky.discard(job.name)
            raise OSError("worker lost")
        Path(job.output).write_bytes(job.name.encode())
        return {"frames_out": 5}


JOBS = """
defaults: {engine: guided, cpus: 2}
jobs:
  - {name: a, mono: m.mp4, color: c.mp4, output: out/a.mp4}
  - {name: b, mono: m.mp4, ref: ref.png, output: out/b.mp4, options: {backend: tensorrt}}
  - {name: c, mono: m.mp4, color: c.mp4, output: out/c.mp4, cpus: 1, engine: naive}
"""


def test_defaults_resources_and_paths(tmp_path: Path) -> None:
    jobs, batch, manifest = load_batch(make_batch(tmp_path, JOBS))
    a, b, c = jobs
    assert (a.engine, a.cpus, a.gpus) == ("guided", 2.0, 0.0)
    assert b.gpus == 1.0  # a TensorRT job reserves a GPU
    assert (c.engine, c.cpus) == ("naive", 1.0)
    assert a.output == str(tmp_path / "out" / "a.mp4") and Path(a.mono).is_absolute()
    assert manifest == tmp_path / "batch-manifest.json" and batch.retries == 1


def test_a_failing_job_is_retried_then_reported_and_the_others_finish(tmp_path: Path) -> None:
    path = make_batch(tmp_path, JOBS)
    runner = FakeRunner(fail={"a"}, flaky={"c"})
    result = run_batch(path, runner=runner)
    assert result.done == ["b", "c"] and list(result.failed) == ["a"]
    assert "corrupt packet at frame 3" in result.failed["a"]
    assert runner.calls == ["a", "a", "b", "c", "c"]
    assert result.attempts == {"a": 2, "b": 1, "c": 2}
    records = json.loads((tmp_path / "batch-manifest.json").read_text())["jobs"]
    assert records["a"]["status"] == "failed" and "corrupt packet" in records["a"]["error"]
    assert records["c"]["status"] == "done" and records["c"]["attempt"] == 2
    assert "1 failed" in format_result(result) and "FAILED a" in format_result(result)


def test_a_rerun_skips_finished_jobs_and_redoes_changed_ones(tmp_path: Path) -> None:
    path = make_batch(tmp_path, JOBS)
    run_batch(path, runner=FakeRunner(fail={"a"}))
    (tmp_path / "out" / "c.mp4").write_bytes(b"damaged")  # an output changed since: redone
    runner = FakeRunner()
    result = run_batch(path, runner=runner)
    assert result.skipped == ["b"] and sorted(result.done) == ["a", "c"]
    assert runner.calls == ["a", "c"]
    (tmp_path / "ref.png").write_bytes(b"another reference")  # an input changed: redone
    result = run_batch(path, runner=FakeRunner())
    assert result.done == ["b"] and sorted(result.skipped) == ["a", "c"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("jobs:\n  - {name: a, mono: m.mp4, output: o.mp4}\n", "give exactly one of color"),
        ("jobs:\n  - {name: a, mono: m.mp4, color: c.mp4, ref: ref.png, output: o.mp4}\n", "give exactly one of color"),
        (
            "jobs:\n  - {name: a, mono: m.mp4, color: c.mp4, output: o.mp4}\n"
            "  - {name: a, mono: m.mp4, color: c.mp4, output: p.mp4}\n",
            "used twice",
        ),
        (
            "jobs:\n  - {name: a, mono: missing.mp4, color: c.mp4, output: o.mp4}\n",
            r":2: key 'jobs\[0\]\.mono' file not found",
        ),
        ("jobs:\n  - {name: a, mono: m.mp4, color: c.mp4, output: o.mp4, gpu: 1}\n", "unknown key"),
        ("retries: -1\njobs: []\n", "'retries' must be >= 0"),
    ],
)
def test_bad_jobs_files_name_the_problem(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_batch(make_batch(tmp_path, body))


def test_cluster_without_ray_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the [cluster] extra were not installed
    with pytest.raises(ConfigError, match=r"streamfuse\[cluster\]"):
        run_batch(make_batch(tmp_path, JOBS), cluster="auto", runner=FakeRunner())


def test_command_reports_a_failed_job_and_exits_1(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = make_batch(tmp_path, "retries: 0\njobs:\n  - {name: junk, mono: m.mp4, color: c.mp4, output: out/j.mp4}\n")
    cmd = [sys.executable, "-m", "streamfuse", "transcode", "--batch", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "0 done, 0 skipped (finished before), 1 failed" in proc.stdout and "FAILED junk" in proc.stdout
    assert "m.mp4" in proc.stdout  # the transcode's own error names the bad file
    assert json.loads((tmp_path / "batch-manifest.json").read_text())["jobs"]["junk"]["status"] == "failed"
