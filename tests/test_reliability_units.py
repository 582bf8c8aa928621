"""Fast checks of the pieces behind the reliability guarantees: restart backoff, link health, fair inbox, hooks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zmq
from proc_helpers import pids_with_arg, vm_rss_mb

from streamfuse.config import config_from_dict
from streamfuse.config.schema import EndpointConfig
from streamfuse.errors import ConfigError
from streamfuse.faults import ENCODE_DELAY_ENV, encode_delay_s
from streamfuse.nodes.launcher import supervisor as launcher
from streamfuse.sync import LinkHealth
from streamfuse.transport import ZmqContext, ZmqInbox
from streamfuse.wire import encode_frame


class _DeadProc:
    returncode = -9

    def poll(self) -> int:
        return -9


class _NoObserver:
    """The launcher's observer (metrics, preview, trace), switched off."""

    def restarted(self, name: str) -> None:
        pass

    def report(self, node: str, msg: dict) -> None:
        pass


class _DeadChild:
    """A capture node that dies at once, every time it is started (at the launcher clock ``now``)."""

    now = 0.0

    def __init__(self, name: str, argv: list[str], env: dict, *hooks, **options) -> None:  # hooks: report, log
        self.name, self.argv = name, argv
        self.proc = _DeadProc()
        self.started, self.started_ns = _DeadChild.now, 0


def test_a_dead_capture_node_is_restarted_with_exponential_backoff(monkeypatch, small_video: Path) -> None:
    mono, colour = {"role": "mono", "source": "synthetic"}, {"role": "color", "source": "synthetic"}
    cfg = config_from_dict(
        {
            "mode": "live",
            "synthetic": {"video": str(small_video)},
            "cameras": {"mono": mono, "color": colour},
            "outputs": [{"path": "unused.mp4"}],
        }
    )
    monkeypatch.setattr(launcher, "_Child", _DeadChild)
    run = launcher.Launcher(cfg, Path("rig.yaml"), status=None, observer=_NoObserver())
    _DeadChild.now = 100.0  # the launcher's monotonic clock, advanced by hand
    run.children["capture:color"] = _DeadChild("color", [], {})
    delays = []
    for i in range(8):
        if i == 7:  # the last incarnation ran fine for a minute before it died: the backoff starts over
            _DeadChild.now += 60
        run._restart_dead_captures(_DeadChild.now)  # notices the death, schedules the restart
        due = run._restart_due["capture:color"]
        delays.append(due - _DeadChild.now)
        _DeadChild.now = due
        run._restart_dead_captures(due)  # restarts it (and the new one dies at once)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 0.5]
    assert run.restarts == {"capture:color": 8}
    assert "--epoch-ns" not in run.children["capture:color"].argv  # a restarted camera stamps from its own start


def test_link_health_reports_restarts_and_the_longest_silence() -> None:
    health = LinkHealth()
    assert health.arrived(10.0, False) == 0.0
    health.arrived(10.033, False)
    assert health.arrived(11.5, True) == pytest.approx(1467, abs=1)
    assert health.as_dict() == {"frames": 3, "restarts": 1, "max_gap_ms": pytest.approx(1467, abs=1)}


def test_inbox_takes_busy_links_in_turn(tmp_path: Path) -> None:
    zctx = ZmqContext()
    links = {name: EndpointConfig(url=f"ipc://{tmp_path}/{name}.sock") for name in ("mono", "color")}
    inbox = ZmqInbox(zctx, links, live=False, max_message_bytes=1 << 20)
    senders = []
    try:
        for name in links:
            sock = zctx.ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.SNDTIMEO, 5000)  # a send that cannot complete fails instead of hanging
            sock.connect(links[name].url)
            senders.append(sock)
            for seq in range(6):
                sock.send_multipart(list(encode_frame(np.zeros((4, 4), np.uint8), 1, seq, seq)))
        assert all(sock.poll(5000) for sock in inbox.socks.values())  # both links have messages waiting
        got = [inbox.recv(2000) for _ in range(12)]
        order = [msg[0] for msg in got if msg is not None]
    finally:
        for sock in senders:
            sock.close(linger=0)
        inbox.close()
        zctx.close()
    assert sorted(order) == ["color"] * 6 + ["mono"] * 6
    assert order[:4].count("mono") == 2  # both links are served from the start, neither waits for the other


def test_fault_hook_is_off_by_default_and_names_itself_when_wrong(monkeypatch) -> None:
    monkeypatch.delenv(ENCODE_DELAY_ENV, raising=False)
    assert encode_delay_s() == 0.0
    monkeypatch.setenv(ENCODE_DELAY_ENV, "250")
    assert encode_delay_s() == 0.25
    monkeypatch.setenv(ENCODE_DELAY_ENV, "slow")
    with pytest.raises(ConfigError, match=ENCODE_DELAY_ENV):
        encode_delay_s()


def test_process_probes_read_proc() -> None:
    import os
    import sys

    assert vm_rss_mb(os.getpid()) > 10
    assert vm_rss_mb(2**22 + 12345) is None
    assert pids_with_arg(sys.executable + "-no-such-process") == []
