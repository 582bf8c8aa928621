"""Overlapping upload, inference and download of consecutive frames on three CUDA streams.

Frames go round a ring of ``depth`` slots. Each slot owns pinned host arenas and device arenas sized by a
buffer plan for the current shapes (grown, never shrunk, so alternating sizes do not thrash). Per frame:

    upload stream:   [wait for reference update]  H2D inputs  -> record slot.uploaded
    compute stream:  wait slot.uploaded -> inference -> record slot.computed
    download stream: wait slot.computed -> D2H outputs -> record slot.downloaded

so frame N+1's upload overlaps frame N's inference and frame N-1's download. Before a slot is reused the host
waits on its ``downloaded`` event, which transitively covers its upload and inference, so its buffers are idle.

Read-only input arrays (``arr.flags.writeable == False``) are treated as reference state: they are uploaded once
into a device buffer that stays resident and is shared by every frame until a different array arrives under
that name. Engines mark their prepared-reference arrays read-only to get this; mutable arrays upload per frame.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamfuse.runtime.trt_shapes import BufferPlan, Dims, grown_capacity, plan_buffers

Enqueue = Callable[[dict[str, int], Any], None]  # (device address per tensor name, compute stream)


@dataclass
class _Arena:
    """A pinned host arena and a device arena of the same capacity."""

    host: np.ndarray | None = None
    device: int = 0
    capacity: int = 0


@dataclass
class _Slot:
    uploaded: Any
    computed: Any
    downloaded: Any
    inputs: _Arena = field(default_factory=_Arena)
    outputs: _Arena = field(default_factory=_Arena)
    ticket: int | None = None
    out_plan: BufferPlan | None = None


@dataclass
class _Resident:
    """One input kept on the device across frames; ``source`` is the array it was uploaded from."""

    source: np.ndarray
    arena: _Arena
    uploaded: Any


class StreamPipeline:
    """A ring of in-flight frames over upload/compute/download streams (see the module docstring)."""

    def __init__(self, cuda: Any, depth: int = 3):
        if depth < 2:
            raise ValueError(f"pipeline depth must be >= 2 so transfers can overlap inference, got {depth}")
        self.cuda = cuda
        self.upload, self.compute, self.download = (cuda.stream_create() for _ in range(3))
        self._slots = [_Slot(cuda.event_create(), cuda.event_create(), cuda.event_create()) for _ in range(depth)]
        self._resident: dict[str, _Resident] = {}
        self._ready: dict[int, dict[str, np.ndarray]] = {}
        self._last_computed: Any = None
        self._next = 0
        self.uploads = 0  # H2D copies issued (tests and stats use it to prove resident inputs stay put)

    @property
    def depth(self) -> int:
        return len(self._slots)

    def submit(
        self,
        inputs: Mapping[str, np.ndarray],
        dtypes: Mapping[str, np.dtype],
        out_specs: Mapping[str, tuple[Dims, np.dtype]],
        enqueue: Enqueue,
    ) -> int:
        """Queue one frame; returns a ticket for ``collect``. Blocks only when the ring is full."""
        ticket = self._next
        self._next += 1
        slot = self._slots[ticket % self.depth]
        if slot.ticket is not None:
            self._retire(slot)
        streamed = {n: a for n, a in inputs.items() if a.flags.writeable}
        in_plan = plan_buffers({n: (a.shape, dtypes[n]) for n, a in streamed.items()})
        out_plan = plan_buffers(out_specs)
        self._grow(slot.inputs, in_plan.total)
        self._grow(slot.outputs, out_plan.total)

        addresses: dict[str, int] = {}
        for name, array in inputs.items():
            if name not in streamed:
                addresses[name] = self._resident_address(name, array, dtypes[name])
        for name, array in streamed.items():
            t = in_plan.tensors[name]
            _fill(in_plan.view(slot.inputs.host, name), array, name)
            self.cuda.copy_h2d(slot.inputs.device + t.offset, slot.inputs.host[t.offset :], t.nbytes, self.upload)
            self.uploads += 1
            addresses[name] = slot.inputs.device + t.offset
        self.cuda.record(slot.uploaded, self.upload)

        for name, t in out_plan.tensors.items():
            addresses[name] = slot.outputs.device + t.offset
        self.cuda.wait(self.compute, slot.uploaded)
        enqueue(addresses, self.compute)
        self.cuda.record(slot.computed, self.compute)
        self._last_computed = slot.computed

        self.cuda.wait(self.download, slot.computed)
        for t in out_plan.tensors.values():
            self.cuda.copy_d2h(slot.outputs.host[t.offset :], slot.outputs.device + t.offset, t.nbytes, self.download)
        self.cuda.record(slot.downloaded, self.download)
        slot.ticket, slot.out_plan = ticket, out_plan
        return ticket

    def collect(self, ticket: int) -> dict[str, np.ndarray]:
        """Wait for a submitted frame and return its outputs (host copies the caller owns)."""
        if ticket not in self._ready:
            slot = self._slots[ticket % self.depth]
            if slot.ticket != ticket:
                raise KeyError(f"frame ticket {ticket} was already collected or never submitted")
            self._retire(slot)
        return self._ready.pop(ticket)

    def close(self) -> None:
        """Wait for all work and free every buffer, event and stream."""
        cuda = self.cuda
        for stream in (self.upload, self.compute, self.download):
            cuda.stream_sync(stream)
        arenas = [s.inputs for s in self._slots] + [s.outputs for s in self._slots]
        arenas += [r.arena for r in self._resident.values()]
        for arena in arenas:
            self._free(arena)
        events = [e for s in self._slots for e in (s.uploaded, s.computed, s.downloaded)]
        events += [r.uploaded for r in self._resident.values()]
        for event in events:
            cuda.event_destroy(event)
        for stream in (self.upload, self.compute, self.download):
            cuda.stream_destroy(stream)
        self._slots, self._resident = [], {}

    # internals

    def _retire(self, slot: _Slot) -> None:
        """Wait for the slot's frame to land in host memory and move its outputs out of the slot."""
        self.cuda.event_sync(slot.downloaded)
        plan = slot.out_plan
        self._ready[slot.ticket] = {n: plan.view(slot.outputs.host, n).copy() for n in plan.tensors}
        slot.ticket = None

    def _resident_address(self, name: str, array: np.ndarray, dtype: np.dtype) -> int:
        """Device address of a resident input, uploading it first if it is new or was replaced."""
        res = self._resident.get(name)
        if res is not None and res.source is array:
            return res.arena.device
        plan = plan_buffers({name: (array.shape, dtype)})
        if res is None:
            res = self._resident[name] = _Resident(array, _Arena(), self.cuda.event_create())
        else:
            self.cuda.event_sync(res.uploaded)  # the staging buffer is free again
            if self._last_computed is not None:
                # inference already queued may still read the old reference: the new copy waits for it,
                # and a buffer about to be freed must be idle now
                self.cuda.wait(self.upload, self._last_computed)
                if plan.total > res.arena.capacity:
                    self.cuda.event_sync(self._last_computed)
        self._grow(res.arena, plan.total)
        _fill(plan.view(res.arena.host, name), array, name)
        self.cuda.copy_h2d(res.arena.device, res.arena.host, plan.total, self.upload)
        self.cuda.record(res.uploaded, self.upload)
        self.uploads += 1
        res.source = array
        return res.arena.device

    def _grow(self, arena: _Arena, needed: int) -> None:
        """Make ``arena`` hold ``needed`` bytes; callers guarantee no queued work uses the old buffers."""
        capacity = grown_capacity(arena.capacity, needed)
        if capacity == arena.capacity and arena.host is not None:
            return
        self._free(arena)
        arena.host = self.cuda.host_alloc(capacity)
        arena.device = self.cuda.device_alloc(capacity)
        arena.capacity = capacity

    def _free(self, arena: _Arena) -> None:
        if arena.host is not None:
            self.cuda.host_free(arena.host)
            self.cuda.device_free(arena.device)
        arena.host, arena.device, arena.capacity = None, 0, 0


def _fill(dst: np.ndarray, src: np.ndarray, name: str) -> None:
    """Copy an input into its pinned view, converting dtype when that loses no kind (uint8 -> float32 is fine)."""
    try:
        np.copyto(dst, src, casting="same_kind")
    except TypeError as exc:
        raise ValueError(f"input {name!r} has dtype {src.dtype}; the TensorRT plan expects {dst.dtype}") from exc
