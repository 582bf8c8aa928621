"""The one training loop on a tiny model: validation per epoch, checkpoints, --max-minutes stop and exact resume."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from streamfuse.train import loop  # noqa: E402
from streamfuse.train.checkpoint import FORMAT, load_checkpoint  # noqa: E402
from streamfuse.train.config import TrainConfig, load_train_config  # noqa: E402
from streamfuse.train.registry import (  # noqa: E402
    Trainer,
    TrainerError,
    available_trainers,
    get_trainer,
    register_trainer,
)


@dataclass
class TinyConfig(TrainConfig):
    size: int = 12
    items: int = 24


class TinyTrainer(Trainer):
    """Learns a fixed 1x1 colour mapping from noise images: fast, and the loss must fall."""

    config_class = TinyConfig
    score = "psnr"

    def build_model(self, cfg: TinyConfig) -> torch.nn.Module:
        return torch.nn.Conv2d(1, 2, 3, padding=1)

    def make_data(self, cfg: TinyConfig, split: str) -> list:
        rng = np.random.default_rng(0 if split == "train" else 1)  # the val split is other images
        out = []
        for _ in range(cfg.items if split == "train" else 4):
            x = rng.random((1, cfg.size, cfg.size), dtype=np.float32)
            out.append((x, np.concatenate([0.5 * x, 1 - x]).astype(np.float32)))
        return out

    def loss(self, model: torch.nn.Module, batch: tuple) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(model(x), y)

    def validate(self, model: torch.nn.Module, data: list) -> dict[str, float]:
        x = torch.from_numpy(np.stack([d[0] for d in data])).to(self.device)
        y = torch.from_numpy(np.stack([d[1] for d in data])).to(self.device)
        mse = float(torch.nn.functional.mse_loss(model(x), y))
        return {"psnr": 10 * np.log10(1.0 / max(mse, 1e-10))}

    def export(self, model, out_dir, run):  # exercised in test_train_export.py
        raise NotImplementedError


def _cfg(tmp_path: Path, **kw) -> TinyConfig:
    base = {"out": str(tmp_path / "run"), "epochs": 3, "steps_per_epoch": 8, "batch": 4, "lr": 0.05}
    return TinyConfig(**{**base, **kw})


def test_fit_validates_every_epoch_and_writes_one_checkpoint_format(tmp_path: Path) -> None:
    summary = loop.fit(TinyTrainer, _cfg(tmp_path), device="cpu", progress=False)
    assert summary.status == "done" and summary.epochs == 3 and summary.step == 24
    assert [h["epoch"] for h in summary.history] == [0, 1, 2, 3]  # baseline, then one per epoch
    assert summary.history[-1]["psnr"] > summary.history[0]["psnr"] + 3  # it learned
    for name in ("last.pt", "best.pt"):
        ck = load_checkpoint(tmp_path / "run" / name)
        assert ck.format == FORMAT and ck.config["epochs"] == 3
    assert load_checkpoint(tmp_path / "run" / "best.pt").best == max(h["psnr"] for h in summary.history)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "done"


def test_max_minutes_stops_mid_epoch_and_resume_matches_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight = loop.fit(TinyTrainer, _cfg(tmp_path / "a"), device="cpu", progress=False)
    clock = iter(range(0, 10**6, 5))  # each clock read advances 5 s: a 0.5-minute budget stops after a few steps
    monkeypatch.setattr(loop.time, "monotonic", lambda: float(next(clock)))
    stopped = loop.fit(TinyTrainer, _cfg(tmp_path / "b"), device="cpu", max_minutes=0.5, progress=False)
    assert stopped.status == "stopped" and 0 < stopped.step < 24 and stopped.step % 8 != 0
    monkeypatch.undo()
    resumed = loop.fit(TinyTrainer, _cfg(tmp_path / "b"), device="cpu", resume=True, progress=False)
    assert resumed.status == "done" and resumed.step == 24
    a = load_checkpoint(tmp_path / "a" / "run" / "last.pt").model
    b = load_checkpoint(tmp_path / "b" / "run" / "last.pt").model
    assert all(torch.equal(a[k], b[k]) for k in a)  # exact: optimizer, schedule and RNG state were restored
    assert [h["psnr"] for h in resumed.history] == pytest.approx([h["psnr"] for h in straight.history])


def test_sigterm_stops_at_the_step_and_saves_it(tmp_path: Path) -> None:
    class Killed(TinyTrainer):
        steps = 0

        def loss(self, model, batch):
            Killed.steps += 1
            if Killed.steps == 5:  # `kill PID` of a background run, mid-epoch
                os.kill(os.getpid(), signal.SIGTERM)
            return super().loss(model, batch)

    before = signal.getsignal(signal.SIGTERM)  # not always SIG_DFL: a library (e.g. Ray) may have set one
    summary = loop.fit(Killed, _cfg(tmp_path), device="cpu", progress=False)
    assert summary.status == "stopped" and summary.step == 5
    assert load_checkpoint(tmp_path / "run" / "last.pt").step == 5
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back


def test_init_fine_tunes_from_a_checkpoint_or_an_engine_folder(tmp_path: Path) -> None:
    loop.fit(TinyTrainer, _cfg(tmp_path / "a", epochs=1), device="cpu", progress=False)
    best = tmp_path / "a" / "run" / "best.pt"
    start = loop.fit(TinyTrainer, _cfg(tmp_path / "b", epochs=1, init=str(best)), device="cpu", progress=False)
    assert start.history[0]["psnr"] == pytest.approx(load_checkpoint(best).best)  # epoch 0 = the init's score
    (tmp_path / "eng").mkdir()
    torch.save({"model": load_checkpoint(best).model, "arch": {}}, tmp_path / "eng" / "weights.pt")
    assert loop.initial_weights(tmp_path / "eng").keys() == load_checkpoint(best).model.keys()
    torch.save({"weights": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="bad.pt holds no model weights"):
        loop.initial_weights(tmp_path / "bad.pt")


def test_resume_refuses_another_engines_checkpoint(tmp_path: Path) -> None:
    loop.fit(TinyTrainer, _cfg(tmp_path, epochs=1), device="cpu", progress=False)
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    ck.engine = "other"
    ck.save(tmp_path / "run" / "last.pt")
    with pytest.raises(ValueError, match="'other' checkpoint"):
        loop.fit(TinyTrainer, _cfg(tmp_path, epochs=1), device="cpu", resume=True, progress=False)


def test_device_choices() -> None:
    assert loop.resolve_device("cpu").type == "cpu"
    assert loop.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="one of auto, cpu, cuda"):
        loop.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no GPU"):
            loop.resolve_device("cuda")


def test_config_yaml_rejects_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 2\nsize: 16\n")
    assert load_train_config(TinyConfig, path) == TinyConfig(epochs=2, size=16)
    path.write_text("epochs: 2\nsise: 16\n")
    with pytest.raises(ValueError, match="unknown key\\(s\\) sise; accepted: .*size"):
        load_train_config(TinyConfig, path)


def test_registry_duplicate_names_raise_and_unknown_names_list_the_known() -> None:
    register_trainer("tiny-test")(TinyTrainer)
    assert get_trainer("tiny-test") is TinyTrainer and "tiny-test" in available_trainers()

    class Other(TinyTrainer):
        pass

    with pytest.raises(TrainerError, match="already registered"):
        register_trainer("tiny-test")(Other)
    with pytest.raises(TrainerError, match="no trainer 'nope'; available: .*tiny-test"):
        get_trainer("nope")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on a lent device machine)")
def test_a_cuda_run_resumes_on_the_cpu(tmp_path: Path) -> None:
    first = loop.fit(TinyTrainer, _cfg(tmp_path, epochs=1), device="cuda", progress=False)
    assert first.device.startswith("cuda") and load_checkpoint(tmp_path / "run" / "last.pt").device.startswith("cuda")
    second = loop.fit(TinyTrainer, _cfg(tmp_path, epochs=2), device="cpu", resume=True, progress=False)
    assert second.device == "cpu" and second.step == 16 and second.history[-1]["psnr"] > first.history[0]["psnr"]
