"""RigMetrics: node reports become Prometheus counters, gauges and histograms (scraped over real HTTP)."""

from __future__ import annotations

import urllib.request

import pytest

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from streamfuse.observe import parse_listen  # noqa: E402
from streamfuse.observe.metrics import MetricsServer, RigMetrics  # noqa: E402


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: RigMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def rig() -> RigMetrics:
    return RigMetrics({"m0": "mono", "m1": "mono", "c": "color"}, outputs=["m0", "m1"])


def test_every_camera_is_there_before_any_frame() -> None:
    m = rig()
    for cam in ("m0", "m1", "c"):
        assert value(m, "streamfuse_frames_in_total", camera=cam) == 0
    assert value(m, "streamfuse_frames_out_total", camera="m0") == 0
    assert value(m, "streamfuse_frames_out_total", camera="c") is None  # colour cameras record nothing


def test_cumulative_reports_become_counters_and_a_restart_continues_them() -> None:
    m = rig()
    m.observe("capture:m0", {"frames": 10, "dropped": 1, "cpu_s": 0.5})
    m.observe("capture:m0", {"frames": 25, "dropped": 3, "cpu_s": 1.0})
    assert value(m, "streamfuse_frames_in_total", camera="m0") == 25
    assert value(m, "streamfuse_dropped_frames_total", node="capture:m0", reason="link_full") == 3
    m.restarted("capture:m0")
    m.observe("capture:m0", {"sent": 4, "dropped": 0, "cpu_s": 0.2})  # the new process counts from zero
    assert value(m, "streamfuse_frames_in_total", camera="m0") == 29
    assert value(m, "streamfuse_restarts_total", node="capture:m0") == 1
    assert value(m, "streamfuse_node_cpu_seconds_total", node="capture:m0") == pytest.approx(1.2)


def test_fuse_and_encode_reports() -> None:
    m = rig()
    m.observe(
        "fuse",
        {
            "rejected": {"bad_magic": 2, "stale_seq": 1},
            "stale_mono_dropped": 4,
            "pairs": {"m0": {"engine_ms_new": [10.0, 30.0], "reference_age_ms": 40.0, "drift_ppm": {"c": 12.5}}},
        },
    )
    m.observe("fuse", {"rejected": {"bad_magic": 3}, "pairs": {"m0": {"engine_ms_new": [20.0]}}})
    m.observe("encode", {"outputs_frames": [7, 5], "latency_ms_new": {"m0": [50.0, 70.0], "m1": [60.0]}})
    assert value(m, "streamfuse_rejected_messages_total", node="fuse", reason="bad_magic") == 3
    assert value(m, "streamfuse_rejected_messages_total", node="fuse", reason="stale_seq") == 1
    assert value(m, "streamfuse_dropped_frames_total", node="fuse", reason="stale_mono") == 4
    assert value(m, "streamfuse_engine_seconds_count", camera="m0") == 3
    assert value(m, "streamfuse_engine_seconds_sum", camera="m0") == pytest.approx(0.06)
    assert value(m, "streamfuse_reference_age_seconds", camera="m0") == pytest.approx(0.04)
    assert value(m, "streamfuse_clock_drift_ppm", camera="c") == 12.5
    assert value(m, "streamfuse_frames_out_total", camera="m1") == 5
    assert value(m, "streamfuse_capture_to_encode_seconds_count", camera="m0") == 2
    assert value(m, "streamfuse_capture_to_encode_seconds_bucket", camera="m0", le="0.05") == 1


def test_served_over_http() -> None:
    m = rig()
    m.observe("capture:c", {"frames": 3})
    server = MetricsServer(m, "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(server.url, timeout=5) as resp:
            text = resp.read().decode()
    finally:
        server.close()
    assert samples(text)[("streamfuse_frames_in_total", (("camera", "c"),))] == 3


def test_listen_address_parsing() -> None:
    assert parse_listen("9100") == ("127.0.0.1", 9100)
    assert parse_listen("0.0.0.0:9100") == ("0.0.0.0", 9100)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen("http")
    with pytest.raises(ValueError, match="0..65535"):
        parse_listen("70000")
