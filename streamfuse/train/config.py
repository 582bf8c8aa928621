"""Training configs: the keys every trainer shares, and the one YAML loader (unknown keys are an error)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

C = TypeVar("C", bound="TrainConfig")


@dataclass
class TrainConfig:
    """Keys the training loop reads. A trainer's config subclasses this and adds its own (data, crops, losses).

    Saved whole into every checkpoint and into the exported engine manifest.
    """

    out: str = "runs/train"
    """Run folder: ``last.pt``, ``best.pt`` and ``summary.json`` go here (not in git: keep it across sessions)."""
    epochs: int = 10
    steps_per_epoch: int = 200
    """Optimizer steps per epoch; validation on the held-aside split runs after each epoch."""
    batch: int = 8
    lr: float = 1e-3
    lr_schedule: str = "cosine"
    """``cosine`` (decay to 0 over epochs × steps_per_epoch) or ``constant``."""
    clip_grad: float = 0.0
    """Clip the gradient norm to this (0 = off)."""
    init: str = ""
    """Checkpoint or engine folder (its ``weights.pt``) whose weights start the run (fine-tuning); empty = random."""
    seed: int = 0
    threads: int = 1
    """torch CPU threads (one per long job on a shared machine)."""


def load_train_config(config_class: type[C], path: str | Path) -> C:
    """Read a training YAML into ``config_class``; unknown keys are an error that lists the accepted ones.

    Example:
        >>> cfg = load_train_config(CCDCConfig, "configs/train/ccdc.yaml")  # doctest: +SKIP
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"training config {p} not found; the shipped ones are in configs/train/")
    raw = yaml.safe_load(p.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{p}: a training config is a mapping of keys to values")
    names = [f.name for f in dataclasses.fields(config_class)]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise ValueError(f"{p}: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(sorted(names))}")
    return config_class(**raw)
