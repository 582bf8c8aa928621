"""The one training loop: progress bar, validation every epoch, checkpoints, resume, device, time budget.

Every learned engine trains through :func:`fit`; its :class:`~streamfuse.train.registry.Trainer` supplies
the model, data, loss, validation and export. ``streamfuse train ENGINE --config FILE`` calls it.

Example:
    >>> summary = fit("ccdc", "configs/train/ccdc.yaml", max_minutes=30)  # doctest: +SKIP
    >>> summary = fit("ccdc", "configs/train/ccdc.yaml", resume=True, export="engines/ccdc")  # doctest: +SKIP

A run stopped by ``max_minutes`` writes ``last.pt`` at the step it reached and ``summary.json`` with
``"status": "stopped"``; the same command with ``resume=True`` continues from that step, in this or a later
session. Resuming a finished run trains nothing and only exports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamfuse.train.checkpoint import Checkpoint, load_checkpoint
from streamfuse.train.config import TrainConfig, load_train_config
from streamfuse.train.export import RunRecord
from streamfuse.train.registry import Trainer, get_trainer

DEVICES = ("auto", "cpu", "cuda")


@dataclass
class RunSummary:
    """The outcome of one :func:`fit` call (also written to ``<out>/summary.json``)."""

    engine: str
    status: str
    """``done`` (all epochs trained) or ``stopped`` (``max_minutes`` reached; resume to continue)."""
    epochs: int
    step: int
    seconds: float
    """Training seconds over every session of the run."""
    device: str
    best: dict[str, Any] = field(default_factory=dict)
    """The history entry of the best validation (what ``best.pt`` holds)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    exported: str = ""


def resolve_device(device: str) -> torch.device:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; asking for ``cuda`` without one is an error."""
    if device not in DEVICES:
        raise ValueError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but torch sees no GPU here; use --device cpu or auto")
    return torch.device(device)


def _schedule(opt: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    total = max(1, cfg.epochs * cfg.steps_per_epoch)
    if cfg.lr_schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    if cfg.lr_schedule != "cosine":
        raise ValueError(f"lr_schedule must be cosine or constant, got {cfg.lr_schedule!r}")
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))


def initial_weights(path: str | Path) -> dict[str, Any]:
    """The model weights that start a fine-tune: a checkpoint's, or an engine folder's ``weights.pt``.

    Raises:
        FileNotFoundError / ValueError: no such file, or neither format; the message names the file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "weights.pt"
    if not path.is_file():
        raise FileNotFoundError(f"init: {path} not found; give a checkpoint (runs/NAME/best.pt) or an engine folder")
    raw = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(raw, dict) and isinstance(raw.get("model"), dict):
        return raw["model"]
    raise ValueError(f"init: {path} holds no model weights; give a checkpoint or an engine's weights.pt")


def _validate(trainer: Trainer, model: torch.nn.Module, data: Any) -> dict[str, float]:
    model.eval()
    with torch.inference_mode():
        metrics = trainer.validate(model, data)
    model.train()
    if trainer.score not in metrics:
        raise KeyError(f"trainer {trainer.name!r}: validate() must return its score {trainer.score!r}")
    return metrics


@contextlib.contextmanager
def _stop_requests():
    """While training, SIGTERM and SIGINT ask the loop to stop at the next step (and save), instead of killing it."""
    asked: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield asked
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: asked.append(signum))
    try:
        yield asked
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(
        total=total, initial=initial, unit="step", disable=not enabled, mininterval=0.5 if tty else 30.0, ascii=not tty
    )


def fit(
    engine: str | type[Trainer],
    config: str | Path | TrainConfig,
    *,
    resume: bool = False,
    device: str = "auto",
    max_minutes: float | None = None,
    export: str | Path | None = None,
    progress: bool = True,
    command: str = "",
) -> RunSummary:
    """Train ``engine`` with ``config`` (a YAML path or a config object), then optionally export ``best.pt``.

    Args:
        engine: a registered trainer name (``streamfuse train --help`` lists them) or a Trainer class.
        config: training YAML (keys of the trainer's ``config_class``) or a config instance.
        resume: continue from ``<out>/last.pt`` if it exists (same engine).
        device: ``cpu``, ``cuda`` or ``auto``.
        max_minutes: wall-clock budget of this call (data preparation included); stops cleanly at a step
            boundary, resumable. SIGTERM or Ctrl-C stop the same way (``last.pt`` saved at that step).
        export: engine folder to export the best checkpoint to, once every epoch is trained.
        progress: show the tqdm bar (on stderr).
        command: the command line, recorded in the manifest.

    Raises:
        ValueError / FileNotFoundError: bad config, device or checkpoint; the message names the fix.
    """
    t_start = time.monotonic()  # the time budget counts data preparation too
    cls = get_trainer(engine) if isinstance(engine, str) else engine
    cfg = config if isinstance(config, TrainConfig) else load_train_config(cls.config_class, config)
    config_file = "" if isinstance(config, TrainConfig) else str(config)
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    dev = resolve_device(device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    trainer = cls()
    trainer.device = dev

    model = trainer.build_model(cfg)
    if cfg.init:
        model.load_state_dict(initial_weights(cfg.init))
    model.to(dev)
    opt = trainer.optimizer(model, cfg)
    sched = _schedule(opt, cfg)
    ck = Checkpoint(engine=cls.name, config=dataclasses.asdict(cfg), model={}, device=str(dev))
    rng = np.random.default_rng(cfg.seed)
    last = out / "last.pt"
    if resume and last.is_file():
        ck = load_checkpoint(last, cls.name)
        model.load_state_dict(ck.model)
        if ck.optim:
            opt.load_state_dict(ck.optim)
        if ck.sched:
            sched.load_state_dict(ck.sched)
        if ck.rng:
            rng.bit_generator.state = ck.rng
        if ck.torch_rng is not None:
            torch.set_rng_state(ck.torch_rng)

    train_data = trainer.make_data(cfg, "train")
    val_data = trainer.make_data(cfg, "val")
    total = cfg.epochs * cfg.steps_per_epoch
    budget = math.inf if max_minutes is None else max_minutes * 60.0
    t0 = time.monotonic()
    seconds0 = ck.seconds

    def save(path: Path) -> None:
        ck.model = model.state_dict()
        ck.optim, ck.sched = opt.state_dict(), sched.state_dict()
        ck.rng, ck.torch_rng = rng.bit_generator.state, torch.get_rng_state()
        ck.seconds, ck.device = seconds0 + time.monotonic() - t0, str(dev)
        ck.save(path)

    def record(metrics: dict[str, float], loss: float | None) -> None:
        entry = {"epoch": ck.step // cfg.steps_per_epoch, **({"loss": loss} if loss is not None else {}), **metrics}
        ck.history.append(entry)
        print(json.dumps(entry), file=sys.stderr if progress else sys.stdout, flush=True)
        if ck.best is None or metrics[trainer.score] > ck.best:
            ck.best = float(metrics[trainer.score])
            save(out / "best.pt")

    model.train()
    if ck.step == 0 and not ck.history:
        record(_validate(trainer, model, val_data), None)  # the untrained baseline, epoch 0
    status = "done"
    bar = _progress_bar(total, ck.step, progress)
    with _stop_requests() as asked, contextlib.closing(bar):
        while ck.step < total:
            if time.monotonic() - t_start >= budget or asked:
                status = "stopped"
                break
            loss = trainer.loss(model, trainer.batch(train_data, cfg, rng))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            opt.step()
            sched.step()
            ck.step += 1
            value = float(loss.detach())
            ck.epoch_loss = (ck.epoch_loss[0] + value, ck.epoch_loss[1] + 1)
            bar.set_description(f"{cls.name} epoch {(ck.step - 1) // cfg.steps_per_epoch + 1}/{cfg.epochs}", False)
            if ck.step % 10 == 0:
                bar.set_postfix(loss=f"{value:.5f}", refresh=False)
            bar.update(1)  # redraws at most every mininterval (30 s in a log file)
            if ck.step % cfg.steps_per_epoch == 0:
                mean_loss = ck.epoch_loss[0] / max(1, ck.epoch_loss[1])
                ck.epoch_loss = (0.0, 0)
                record(_validate(trainer, model, val_data), round(mean_loss, 6))
                save(last)
    if status == "stopped" or not last.is_file() or ck.step % cfg.steps_per_epoch:
        save(last)

    best = max(ck.history, key=lambda h: h[trainer.score]) if ck.history else {}
    summary = RunSummary(
        engine=cls.name,
        status=status,
        epochs=ck.step // cfg.steps_per_epoch,
        step=ck.step,
        seconds=round(ck.seconds, 1),
        device=str(dev),
        best=best,
        history=ck.history,
    )
    if export and status == "done":
        best_ck = load_checkpoint(out / "best.pt", cls.name)
        model.load_state_dict(best_ck.model)
        train_config = {**dataclasses.asdict(cfg), "config_file": config_file}
        run = RunRecord(
            command=command,
            train_config=train_config,
            epochs=summary.epochs,
            minutes=ck.seconds / 60.0,
            device=str(dev),
            validation=dict(best),  # with the epoch whose weights are exported
            data=trainer.data_manifest(cfg),
        )
        trainer.export(model.cpu(), Path(export), run)
        summary.exported = str(export)
    (out / "summary.json").write_text(json.dumps(dataclasses.asdict(summary), indent=1) + "\n")
    return summary
