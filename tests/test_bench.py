"""``streamfuse bench``: the result keys users and CI rely on, the sweep table, and argument errors."""

from __future__ import annotations

import json

import pytest

from streamfuse.bench import bench_engine, rig_frames, sweep_table
from streamfuse.cli import main

KEYS = {"fps", "p50_ms", "p99_ms", "peak_rss_mb", "cpu_ms", "ms_per_mp", "frames", "engine", "size", "scale"}


def test_rig_frames_have_the_asked_sizes():
    pairs = list(rig_frames((160, 120), 4.0, 3))
    assert len(pairs) == 3
    mono, ref = pairs[0]
    assert mono.shape == (120, 160) and ref.shape == (30, 40, 3)


def test_bench_engine_reports_the_documented_keys():
    result = bench_engine("naive", (160, 120), 4.0, frames=4, warmup=1)
    assert set(result) >= KEYS
    assert result["frames"] == 4 and result["size"] == "160x120"
    assert result["p99_ms"] >= result["p50_ms"] > 0 and result["fps"] > 0 and result["peak_rss_mb"] > 0


def test_sweep_table_reports_ms_per_megapixel_spread():
    rows = [
        {"size": "320x240", "fps": 100.0, "p50_ms": 3.84, "p99_ms": 4.0, "cpu_ms": 3.0, "ms_per_mp": 50.0},
        {"size": "640x480", "fps": 30.0, "p50_ms": 30.72, "p99_ms": 31.0, "cpu_ms": 30.0, "ms_per_mp": 100.0},
    ]
    table = sweep_table(rows)
    assert "| 320x240 | 0.077 |" in table and "spread (max/min): 2.00x" in table


def test_bench_cli_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "--engine", "naive", "--size", "96x64", "--frames", "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert {"fps", "p50_ms", "p99_ms", "peak_rss_mb"} <= set(data)
    assert "engine-only" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--frames", "0"], ["--scale", "0.5"], ["--engine", "nope"]])
def test_bench_cli_errors_are_one_line(argv, capsys):
    assert main(["bench", "--size", "96x64", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("streamfuse bench: error:")
