"""The trainer registry and the :class:`Trainer` contract every learned engine's trainer fills in.

A trainer says what is particular to its engine (network, data, loss, validation, export); the one loop in
:mod:`streamfuse.train.loop` does everything else (progress bar, validation every epoch, checkpoints,
``--resume``, ``--device``, ``--max-minutes``). A trainer lives in ``streamfuse/train/NAME.py`` and
registers itself; ``streamfuse train --help`` finds it by reading the folder, without importing torch.

Example (a complete trainer; see docs/ENGINES.md, "Adding a learned engine")::

    @register_trainer("mine")
    class MineTrainer(Trainer):
        config_class = MineConfig                  # a TrainConfig subclass: the YAML keys

        def build_model(self, cfg):
            return build_model(CONFIGS[cfg.model])

        def make_data(self, cfg, split):           # "train" or "val" (held aside, never trained on)
            return make_pairs(cfg, split)          # a list of tuples of arrays, or anything batch() reads

        def loss(self, model, batch):
            x, y = batch
            return F.mse_loss(model(x), y)

        def validate(self, model, data):
            return {"mean": chroma_psnr(model, data)}   # ``score`` picks the key best.pt is chosen by

        def export(self, model, out_dir, run):
            return export_engine(out_dir, engine="mine", model=model, arch=..., graphs=[...], run=run)
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from streamfuse.train.config import TrainConfig

if TYPE_CHECKING:  # torch is imported by the trainers, not by listing them
    import torch

    from streamfuse.engines.assets import EngineManifest
    from streamfuse.train.export import RunRecord


class Trainer(ABC):
    """One engine family's training recipe. The loop creates it, sets ``device``, and calls the hooks.

    Attributes:
        config_class: the dataclass of the YAML keys (a :class:`TrainConfig` subclass).
        score: the validation metric that picks ``best.pt`` (higher is better).
        device: the torch device the loop trains on; move what ``make_data`` builds there in ``batch``.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[TrainConfig]] = TrainConfig
    score: ClassVar[str] = "mean"

    def __init__(self) -> None:
        self.device: Any = "cpu"

    @abstractmethod
    def build_model(self, cfg: TrainConfig) -> torch.nn.Module:
        """The network to train (built from ``cfg``; its arch config goes into the manifest at export)."""

    @abstractmethod
    def make_data(self, cfg: TrainConfig, split: str) -> Any:
        """The ``"train"`` or ``"val"`` data. The val split is held aside: never trained on."""

    def batch(self, data: Any, cfg: TrainConfig, rng: np.random.Generator) -> Any:
        """One training batch. Default: ``cfg.batch`` random items of a sequence of equal-shape array tuples,
        stacked into float32 tensors on ``self.device``. Override for data rendered on the fly."""
        import torch

        idx = rng.integers(0, len(data), cfg.batch)
        items = [data[int(i)] for i in idx]
        return tuple(
            torch.from_numpy(np.stack([it[k] for it in items]).astype(np.float32)).to(self.device)
            for k in range(len(items[0]))
        )

    @abstractmethod
    def loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor:
        """The scalar training loss of one batch (the loop does backward, clipping and the step)."""

    @abstractmethod
    def validate(self, model: torch.nn.Module, data: Any) -> dict[str, float]:
        """Metrics on the held-aside split; must hold ``score``. The model is in eval mode, gradients off."""

    @abstractmethod
    def export(self, model: torch.nn.Module, out_dir: Path, run: RunRecord) -> EngineManifest:
        """Write the engine folder with :func:`streamfuse.train.export.export_engine` and return its manifest."""

    def optimizer(self, model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
        """Default: Adam at ``cfg.lr``."""
        import torch

        return torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def data_manifest(self, cfg: TrainConfig) -> dict[str, Any]:
        """What the engine manifest records about the training data (sources, options, split)."""
        return {}


class TrainerError(ValueError):
    """Unknown or duplicate trainer name; the message lists the registered ones."""


_REGISTERED: dict[str, type[Trainer]] = {}
_INFRA = {"__init__", "registry", "loop", "export", "config", "checkpoint"}
_DECLARED = re.compile(r"""register_trainer\(\s*["']([\w.-]+)["']""")


def register_trainer(name: str):
    """Class decorator: register a :class:`Trainer` subclass as ``streamfuse train NAME``.

    Raises:
        TrainerError: ``name`` is already registered (names are never silently replaced).
    """

    def wrap(cls: type[Trainer]) -> type[Trainer]:
        if name in _REGISTERED and _REGISTERED[name] is not cls:
            raise TrainerError(f"trainer name {name!r} is already registered by {_REGISTERED[name].__module__}")
        cls.name = name
        _REGISTERED[name] = cls
        return cls

    return wrap


def _declared() -> dict[str, str]:
    """Trainer name -> module, read from ``streamfuse/train/*.py`` sources (no import, so no torch)."""
    found: dict[str, str] = {}
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.stem in _INFRA:
            continue
        for name in _DECLARED.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name, f"streamfuse.train.{path.stem}")
    return found


def available_trainers() -> list[str]:
    """Every name ``streamfuse train`` accepts (shipped trainer modules plus any registered at run time)."""
    return sorted({*_declared(), *_REGISTERED})


def get_trainer(name: str) -> type[Trainer]:
    """The trainer class registered as ``name`` (imports its module, and with it torch).

    Raises:
        TrainerError: unknown name; the message lists the available trainers.
    """
    if name not in _REGISTERED:
        module = _declared().get(name)
        if module is None:
            raise TrainerError(f"no trainer {name!r}; available: {', '.join(available_trainers()) or 'none'}")
        importlib.import_module(module)
    if name not in _REGISTERED:
        raise TrainerError(f"{_declared()[name]} declares trainer {name!r} but did not register it on import")
    return _REGISTERED[name]
