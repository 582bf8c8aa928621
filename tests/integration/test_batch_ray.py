"""Batch transcoding on a local Ray instance: 3 real jobs, one failing its first attempt; a re-run skips them all."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import pytest
from conftest import moving_frames, write_video

pytest.importorskip("ray")
from streamfuse.batch import FAIL_ONCE_ENV, run_batch  # noqa: E402


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.timeout(60)
def test_three_jobs_on_ray_one_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = moving_frames(8, 96, 128)
    mono = write_video(tmp_path / "mono.mp4", frames)
    colour = write_video(
        tmp_path / "colour.mp4", [cv2.resize(f, (64, 48), interpolation=cv2.INTER_AREA) for f in frames]
    )
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        "retries: 1\njobs:\n"
        + "".join(f"  - {{name: {n}, mono: {mono.name}, color: {colour.name}, output: out/{n}.mp4}}\n" for n in "abc")
    )
    monkeypatch.setenv(FAIL_ONCE_ENV, "b")
    result = run_batch(jobs, cluster="local", ray_init={"num_cpus": 2})

    assert sorted(result.done) == ["a", "b", "c"] and not result.failed
    assert result.attempts == {"a": 1, "b": 2, "c": 1}
    for name in "abc":
        assert frame_count(tmp_path / "out" / f"{name}.mp4") == 8
    manifest = json.loads((tmp_path / "batch-manifest.json").read_text())["jobs"]
    assert {n: r["status"] for n, r in manifest.items()} == {"a": "done", "b": "done", "c": "done"}
    assert manifest["b"]["attempt"] == 2 and manifest["a"]["frames_out"] == 8
    assert all(len(r["output_sha256"]) == 64 and r["cpus"] == 1.0 and r["gpus"] == 0.0 for r in manifest.values())

    again = run_batch(jobs)  # no Ray needed to see that everything is done
    assert sorted(again.skipped) == ["a", "b", "c"] and not again.done
