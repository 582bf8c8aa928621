"""Links between nodes: the Sender/Inbox contract, ZeroMQ sockets, and the in-memory twin for tests."""

from streamfuse.transport.base import Inbox, Sender, StopCheck, deadline
from streamfuse.transport.memory import MemoryInbox, MemorySender
from streamfuse.transport.zmq import (
    DEFAULTS,
    SocketDefaults,
    ZmqContext,
    ZmqInbox,
    ZmqSender,
    default_endpoint,
    endpoint_for,
)

__all__ = [
    "DEFAULTS",
    "Inbox",
    "MemoryInbox",
    "MemorySender",
    "Sender",
    "SocketDefaults",
    "StopCheck",
    "ZmqContext",
    "ZmqInbox",
    "ZmqSender",
    "deadline",
    "default_endpoint",
    "endpoint_for",
]
