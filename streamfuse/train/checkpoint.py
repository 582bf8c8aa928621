"""The one checkpoint format every trainer writes: model, optimizer, schedule, progress and RNG state.

``last.pt`` is written after every epoch and when ``--max-minutes`` stops a run (mid-epoch); ``best.pt``
when the validation score improves. Both hold everything :func:`streamfuse.train.loop.fit` needs to resume
exactly, and the weights ``export_engine`` ships.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

FORMAT = "streamfuse-checkpoint/1"


@dataclass
class Checkpoint:
    """A training run's state at one step."""

    engine: str
    config: dict[str, Any]
    model: dict[str, Any]
    optim: dict[str, Any] | None = None
    sched: dict[str, Any] | None = None
    step: int = 0
    """Optimizer steps done; the epoch is step // steps_per_epoch."""
    seconds: float = 0.0
    """Training seconds, summed over every session of the run."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """One entry per validation: epoch, mean training loss, the trainer's metrics."""
    best: float | None = None
    """Best validation score so far (the trainer's ``score`` metric, higher is better)."""
    epoch_loss: tuple[float, int] = (0.0, 0)
    """Running (sum, count) of the current epoch's losses, so a mid-epoch stop resumes its mean."""
    rng: dict[str, Any] | None = None
    """numpy bit-generator state of the loop's sampling RNG."""
    torch_rng: Any = None
    device: str = "cpu"
    format: str = FORMAT

    def save(self, path: str | Path) -> None:
        """Write atomically (a killed run never leaves half a checkpoint)."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self.__dict__, tmp)
        tmp.replace(path)


def load_checkpoint(path: str | Path, engine: str | None = None) -> Checkpoint:
    """Read a checkpoint; another format, or another engine's run, is an error naming the file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a streamfuse checkpoint, or written by another engine's trainer.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found; train first, or drop --resume")
    raw = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} checkpoint; retrain, or convert it to that format")
    ck = Checkpoint(**raw)
    if engine is not None and ck.engine != engine:
        raise ValueError(f"{path} is a {ck.engine!r} checkpoint, not {engine!r}; pick another out folder")
    return ck
