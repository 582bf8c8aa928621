"""The TensorRT plan cache: a plan is reused only when everything it was built for still matches.

A plan is only valid for the exact ONNX graph, GPU model and compute capability, TensorRT version, precision
and shape profile it was built with. Each ``NAME.KEY.plan`` has a ``NAME.KEY.json`` sidecar recording those
fields and the plan's own sha256, so a stale or corrupt plan is detected, explained in the log, and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from streamfuse.checksum import sha256_file

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16")
SCHEMA = 1  # bump when the sidecar or the key's meaning changes


def default_cache_dir() -> Path:
    """``$STREAMFUSE_CACHE/tensorrt``, else ``$XDG_CACHE_HOME/streamfuse/tensorrt``, else ``~/.cache/...``."""
    root = os.environ.get("STREAMFUSE_CACHE")
    if root:
        return Path(root) / "tensorrt"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "streamfuse" / "tensorrt"


@dataclass(frozen=True)
class PlanKey:
    """Everything a TensorRT plan depends on. ``profile`` is the per-input (min, opt, max) shapes, as text."""

    onnx_sha256: str
    gpu_name: str
    compute_capability: str  # "8.9"
    tensorrt_version: str
    precision: str
    profile: str

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    @property
    def digest(self) -> str:
        """Stable hex digest of all fields (order-independent of dict ordering)."""
        text = json.dumps({"schema": SCHEMA, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def differences(self, other: PlanKey) -> list[str]:
        """Human-readable ``field old -> new`` for every field where ``other`` differs from this key."""
        mine, theirs = asdict(self), asdict(other)
        return [f"{k} {theirs[k]} -> {mine[k]}" for k in mine if mine[k] != theirs[k]]


@dataclass(frozen=True)
class Lookup:
    """The result of a cache lookup: a usable plan path, or None and the reason a build is needed."""

    path: Path | None
    reason: str


class PlanCache:
    """A folder of ``{stem}.{digest16}.plan`` files with JSON sidecars."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def paths(self, stem: str, key: PlanKey) -> tuple[Path, Path]:
        base = f"{stem}.{key.digest[:16]}"
        return self.root / f"{base}.plan", self.root / f"{base}.json"

    def lookup(self, stem: str, key: PlanKey) -> Lookup:
        """Find a valid plan for ``key``; otherwise say why none is usable (missing, stale or corrupt)."""
        plan, meta = self.paths(stem, key)
        if plan.exists():
            problem = self._verify(plan, meta, key)
            if problem is None:
                return Lookup(plan, "cached plan matches")
            return Lookup(None, f"cached plan {plan.name} is corrupt ({problem}); rebuilding")
        stale = self._nearest_stale(stem, key)
        if stale:
            return Lookup(None, f"cached plan is stale ({stale}); rebuilding")
        return Lookup(None, f"no cached plan for {stem} in {self.root}; building")

    def store(self, stem: str, key: PlanKey, plan_bytes: bytes) -> Path:
        """Write a plan and its sidecar atomically (temp file + rename), so a crash never leaves a half plan."""
        if not plan_bytes:
            raise ValueError("refusing to cache an empty TensorRT plan")
        self.root.mkdir(parents=True, exist_ok=True)
        plan, meta = self.paths(stem, key)
        record = {
            "schema": SCHEMA,
            "key": asdict(key),
            "plan_sha256": hashlib.sha256(plan_bytes).hexdigest(),
            "plan_bytes": len(plan_bytes),
        }
        for path, data in ((plan, plan_bytes), (meta, json.dumps(record, indent=2).encode())):
            tmp = path.with_name(path.name + f".tmp{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return plan

    def invalidate(self, stem: str, key: PlanKey) -> None:
        """Delete the plan for ``key`` (used when TensorRT cannot deserialize it)."""
        for path in self.paths(stem, key):
            path.unlink(missing_ok=True)

    def candidates(self, stem: str, **fields: str) -> list[tuple[PlanKey, Path]]:
        """Valid cached plans of ``stem`` whose key matches ``fields``, newest first (for a default profile)."""
        found = []
        for key, plan in self._records(stem):
            if all(getattr(key, k) == v for k, v in fields.items()) and self._verify(plan, None, key) is None:
                found.append((key, plan))
        return sorted(found, key=lambda kp: kp[1].stat().st_mtime, reverse=True)

    def _records(self, stem: str) -> list[tuple[PlanKey, Path]]:
        out = []
        for meta in self.root.glob(f"{stem}.*.json"):
            try:
                record = json.loads(meta.read_text())
                key = PlanKey(**record["key"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if record.get("schema") == SCHEMA and meta.with_suffix(".plan").exists():
                out.append((key, meta.with_suffix(".plan")))
        return out

    def _verify(self, plan: Path, meta: Path | None, key: PlanKey) -> str | None:
        """None when the plan is intact and built for ``key``; else what is wrong with it."""
        meta = meta or plan.with_suffix(".json")
        try:
            record = json.loads(meta.read_text())
        except FileNotFoundError:
            return "its .json sidecar is missing"
        except (OSError, ValueError) as exc:
            return f"unreadable sidecar: {exc}"
        if record.get("schema") != SCHEMA or record.get("key") != asdict(key):
            return "sidecar does not match the plan's key"
        size = plan.stat().st_size
        if size != record.get("plan_bytes"):
            return f"size {size} bytes, expected {record.get('plan_bytes')}"
        if sha256_file(plan) != record.get("plan_sha256"):
            return "sha256 mismatch"
        return None

    def _nearest_stale(self, stem: str, key: PlanKey) -> str:
        """Describe how the closest existing plan of ``stem`` differs from ``key`` ('' when there is none)."""
        diffs = [key.differences(other) for other, _ in self._records(stem)]
        diffs = [d for d in diffs if d]
        return ", ".join(min(diffs, key=len)) if diffs else ""
