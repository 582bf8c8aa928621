"""Prometheus metrics of a real run: scraped over HTTP while the nodes run, and equal to the run summary after."""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from streamfuse.config import synthetic_rig_config  # noqa: E402
from streamfuse.config.schema import ObserveConfig  # noqa: E402
from streamfuse.nodes.launcher import run_pipeline  # noqa: E402
from streamfuse.observe.rig import RigObserver  # noqa: E402

pytestmark = pytest.mark.slow


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def get(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.timeout(60)
def test_counters_scraped_during_a_run_match_its_summary(tmp_path: Path) -> None:
    cfg = synthetic_rig_config((160, 120), engine="guided", mode="live", output=str(tmp_path / "live.mp4"))
    cfg.observe = ObserveConfig(metrics_port="127.0.0.1:0")
    observer = RigObserver(cfg, tmp_path)
    url = observer.urls["metrics"]
    during: list[float] = []
    running = threading.Event()
    running.set()

    def scraper() -> None:  # a real HTTP client polling while the launcher (main thread: signals) runs the rig
        while running.is_set():
            during.append(get(scrape(url), "streamfuse_frames_in_total", camera="mono"))
            time.sleep(0.3)

    poller = threading.Thread(target=scraper, daemon=True)
    try:
        poller.start()
        summary = run_pipeline(cfg, 120, observer=observer)
        running.clear()
        poller.join(5)
        final = scrape(url)
    finally:
        running.clear()
        observer.close()
    assert summary["frames_out"] > 60
    assert any(0 < n < summary["frames_in"] for n in during)  # the counters moved while the rig ran
    assert during == sorted(during)  # and never went back
    assert get(final, "streamfuse_frames_in_total", camera="mono") == summary["frames_in"]
    assert get(final, "streamfuse_frames_in_total", camera="color") > 0
    assert get(final, "streamfuse_frames_out_total", camera="mono") == summary["frames_out"]
    drops = get(final, "streamfuse_dropped_frames_total", node="fuse", reason="stale_mono")
    assert drops == summary["fuse_stale_dropped"]
    latency = get(final, "streamfuse_capture_to_encode_seconds_count", camera="mono")
    assert latency == summary["frames_out"]  # one latency sample per recorded frame
    fused = summary["cameras"]["mono"]["frames_out"] + summary["fuse_output_dropped"]
    assert get(final, "streamfuse_engine_seconds_count", camera="mono") == fused  # one engine sample per fused frame
    assert get(final, "streamfuse_node_cpu_seconds_total", node="fuse") > 0
    assert get(final, "streamfuse_reference_age_seconds", camera="mono") >= 0
