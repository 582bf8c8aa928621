"""Trainers for ``cocolor`` (fast) and ``cocolor-paper``, on the one loop (:mod:`streamfuse.train.loop`).

Data: the real pairs of ``shared/data/nir-train`` of the training categories, plus synthetic NIR made from the
allowed package stills (``streamfuse.data.nir``); validation on the held-aside categories only.

``cocolor``: every training pair is prepared a few times with a random small homography between the NIR and
the colour camera (the protocol's parallax), a random NIR gain/gamma (other NIR sensors), the cross-spectral
alignment and the local fit of ``engines/cocolor.py`` — the exact inference path — at the reference
resolution (x4). A batch is random crops (flips) of these; the loss is MSE on RGB at full resolution after
applying the predicted coefficients, for the reference network and (on larger crops) the prior network.

``cocolor-paper``: the paper's progressive and cooperative recipe on one optimizer. The phase follows the step
(``phase1`` steps of domain translation, ``phase2`` of parallel colorization, then the joint fine-tune):
L_tran = λ1 L_cyc + λ2 L_idt + L_GAN^img + L_GAN^feat (least-squares GAN), L_pair (Eq. 3), L_blt (Eq. 4, with
L_mix = 0.84 (1 − SSIM) + 0.16 L1), L = L_tran + λp L_pair + λc L_blt with the paper's λ. Discriminator and
generator terms share one backward: generators see the discriminators through detached weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.func import functional_call
from torch.nn import functional as F

from streamfuse.color import luma, rgb_to_ycbcr
from streamfuse.data import nir as nirdata
from streamfuse.data.degrade import downsample, warp_homography
from streamfuse.engines import cocolor as eng
from streamfuse.metrics import score
from streamfuse.models.cocolor_arch import CONFIGS, build_model, export_graphs
from streamfuse.train.config import TrainConfig
from streamfuse.train.export import Graph, RunRecord, export_engine, levels
from streamfuse.train.registry import Trainer, register_trainer

SCALE = 4  # the protocol's reference scale gap
_YCC2RGB = torch.tensor(
    np.linalg.inv(np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])),
    dtype=torch.float32,
)


def random_homography(w: int, h: int, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A small random homography: each image corner moved by up to ``amplitude`` × the image size."""
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + rng.uniform(-amplitude, amplitude, (4, 2)).astype(np.float32) * np.float32([w, h])
    return cv2.getPerspectiveTransform(src, dst)


def jitter_nir(nir: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random gain and gamma on an NIR frame (another sensor, exposure or processing)."""
    x = nir.astype(np.float32) / 255.0
    x = np.clip(x * rng.uniform(0.8, 1.2), 0, 1) ** rng.uniform(0.8, 1.25)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def ycc_to_rgb_t(ycc: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) YCbCr 0..255 -> RGB 0..255 (BT.601 full range, as streamfuse.color)."""
    m = _YCC2RGB.to(ycc.device)
    y, c = ycc[:, :1], ycc[:, 1:] - 128.0
    return torch.einsum("ij,njhw->nihw", m[:, :1], y) + torch.einsum("ij,njhw->nihw", m[:, 1:], c)


def pool_psnr(records: list[dict], key: str = "psnr_rgb") -> float:
    return float(np.mean([r[key] for r in records])) if records else 0.0


# --- cocolor (fast) -------------------------------------------------------------------------------------------


@dataclass
class CoColorConfig(TrainConfig):
    """``configs/train/cocolor.yaml`` keys."""

    model: str = "cocolor"
    data: str = ""
    """nir-train folder (empty: the shared checkout's, or $STREAMFUSE_NIR_DATA)."""
    variants: int = 3
    """Prepared copies of each training pair (each a new homography and NIR jitter)."""
    synthetic: bool = True
    """Add synthetic NIR from the package stills (simulation, see sources/synthetic_nir.py)."""
    amplitude: float = 0.012
    """Largest corner shift of the training homographies (fraction of the image size)."""
    crop: int = 48
    """Reference network: crop side at the reference resolution (x4 at full resolution)."""
    prior_crop: int = 96
    """Prior network: crop side (larger: the prior needs scene context)."""
    prior_batch: int = 4
    limit: int = 0
    """Pairs per category (0 = all; tests use a few)."""
    val_limit: int = 0


def prepare_sample(nir: np.ndarray, rgb: np.ndarray, rng: np.random.Generator, amplitude: float) -> dict:
    """One training/validation sample: the reference-resolution inputs of both networks and the full-res truth."""
    h, w = nir.shape
    ref = downsample(warp_homography(rgb, random_homography(w, h, rng, amplitude)), SCALE)
    st = eng.reference_stage(nir, rgb_to_ycbcr(ref), align=True)
    return {
        "a": st["a"],
        "b": st["b"],
        "ref": eng.ref_features(st).astype(np.float16),
        "prior": eng.prior_features(st["g"], st["g_std"]).astype(np.float16),
        "nir": nir,
        "truth": rgb,
        "ref_rgb": ref,
    }


def _lean(sample: dict) -> dict:
    """A training sample without what only validation needs (exact coefficients, the reference image)."""
    return {k: sample[k] for k in ("ref", "prior", "nir", "truth")}


def stills_pairs(rng: np.random.Generator, per_still: int = 1) -> tuple[list[nirdata.NirPair], list[str]]:
    """Synthetic NIR pairs from the allowed package stills (sides cropped to multiples of 4)."""
    from streamfuse.data.stills import package_stills

    stills = package_stills()
    imgs = [s[: s.shape[0] // 4 * 4, : s.shape[1] // 4 * 4] for _, s in stills]
    return list(nirdata.synthetic_pairs(imgs, rng, per_still)), [n for n, _ in stills]


@register_trainer("cocolor")
class CoColorTrainer(Trainer):
    """Fast CoColor: reference-mode coefficient correction and prior-mode coefficients."""

    config_class = CoColorConfig
    score = "mean"

    def __init__(self) -> None:
        super().__init__()
        self._stills: list[str] = []

    def build_model(self, cfg: CoColorConfig) -> torch.nn.Module:
        return build_model(CONFIGS[cfg.model])

    def make_data(self, cfg: CoColorConfig, split: str) -> list[dict]:
        rng = np.random.default_rng([cfg.seed, 1 if split == "train" else 2])
        folder = cfg.data or None
        if split != "train":
            pairs = nirdata.load_pairs("val", folder, cfg.val_limit)
            return [{**prepare_sample(p.nir, p.rgb, rng, cfg.amplitude), "category": p.category} for p in pairs]
        pairs = nirdata.load_pairs("train", folder, cfg.limit)
        samples = []
        for p in pairs:
            for v in range(cfg.variants):
                nir = p.nir if v == 0 else jitter_nir(p.nir, rng)
                samples.append(_lean(prepare_sample(nir, p.rgb, rng, rng.uniform(0, cfg.amplitude))))
        if cfg.synthetic:
            synth, self._stills = stills_pairs(rng)
            for p in synth:
                samples.append(_lean(prepare_sample(p.nir, p.rgb, rng, rng.uniform(0, cfg.amplitude))))
        return samples

    def _crops(self, data: list[dict], key: str, c: int, n: int, rng: np.random.Generator) -> list[np.ndarray]:
        """``n`` random crops (side ``c`` at the reference resolution, flipped half the time) of one network's
        input, with the full-resolution NIR and truth under them."""
        feats, nirs, truths = [], [], []
        while len(feats) < n:
            s = data[int(rng.integers(len(data)))]
            h, w = s[key].shape[1:]
            if h < c or w < c:
                continue
            y, x = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
            f = s[key][:, y : y + c, x : x + c].astype(np.float32)
            hr = (slice(y * SCALE, (y + c) * SCALE), slice(x * SCALE, (x + c) * SCALE))
            nir = s["nir"][hr].astype(np.float32)[None] / 255.0
            t = s["truth"][hr].astype(np.float32).transpose(2, 0, 1)
            if rng.random() < 0.5:
                f, nir, t = f[..., ::-1], nir[..., ::-1], t[..., ::-1]
            feats.append(f)
            nirs.append(nir)
            truths.append(t)
        return [np.ascontiguousarray(np.stack(a)) for a in (feats, nirs, truths)]

    def batch(self, data: list[dict], cfg: CoColorConfig, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        arrays = self._crops(data, "ref", cfg.crop, cfg.batch, rng)
        arrays += self._crops(data, "prior", cfg.prior_crop, cfg.prior_batch, rng)
        return tuple(torch.from_numpy(a).to(self.device) for a in arrays)

    @staticmethod
    def render(coeffs: torch.Tensor, nir: torch.Tensor, base: torch.Tensor | None) -> torch.Tensor:
        """Coefficient planes (N, 6, h, w) -> RGB (N, 3, H, W) 0..255 on the full-resolution NIR (as the engine)."""
        a, b = coeffs[:, :3] * 255.0, coeffs[:, 3:] * 255.0
        if base is not None:  # reference mode: corrections of the local fit (feature channels 5..10, /255)
            a, b = a + base[:, 5:8] * 255.0, b + base[:, 8:11] * 255.0
        else:
            a = a + torch.from_numpy(eng.PRIOR_BASE_A).to(a.device).view(1, 3, 1, 1)
            b = b + torch.from_numpy(eng.PRIOR_BASE_B).to(b.device).view(1, 3, 1, 1)
        size = nir.shape[-2:]
        a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
        b = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
        return ycc_to_rgb_t(a * nir + b)

    def loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """MSE on RGB (the protocol scores PSNR; for the ambiguous prior the mean is also the PSNR-best guess)."""
        ref, nir_r, truth_r, pri, nir_p, truth_p = batch
        out_ref = self.render(model.ref(ref), nir_r, ref)
        out_pri = self.render(model.prior(pri), nir_p, None)
        return F.mse_loss(out_ref / 255.0, truth_r / 255.0) + F.mse_loss(out_pri / 255.0, truth_p / 255.0)

    def validate(self, model: torch.nn.Module, data: list[dict]) -> dict[str, float]:
        ref_rec, pri_rec = [], []
        for s in data:
            for mode, rec in (("ref", ref_rec), ("prior", pri_rec)):
                x = torch.from_numpy(eng.pad_to(s[mode].astype(np.float32), eng.MULTIPLE)[None]).to(self.device)
                net = model.ref if mode == "ref" else model.prior
                h, w = s[mode].shape[1:]
                out = net(x)[0, :, :h, :w].cpu().numpy()
                a, b = eng.coefficients_from_net(out, s if mode == "ref" else None)
                rgb = eng.ycbcr_to_rgb(eng.apply_coefficients(s["nir"], a, b))
                rec.append(score(rgb, s["truth"]))
        ref_db, pri_db = pool_psnr(ref_rec), pool_psnr(pri_rec)
        return {
            "mean": round(ref_db + 0.5 * pri_db, 4),
            "ref_psnr_rgb": round(ref_db, 4),
            "ref_psnr_cbcr": round(pool_psnr(ref_rec, "psnr_cbcr"), 4),
            "prior_psnr_rgb": round(pri_db, 4),
            "prior_psnr_cbcr": round(pool_psnr(pri_rec, "psnr_cbcr"), 4),
        }

    def data_manifest(self, cfg: CoColorConfig) -> dict[str, Any]:
        return data_manifest(cfg.data, self._stills if cfg.synthetic else [])

    def export(self, model: torch.nn.Module, out_dir: Path, run: RunRecord):
        graphs = []
        for stem, (module, example, inp, outp) in export_graphs(model).items():
            other = torch.rand(1, example.shape[1], 40, 56)
            graphs.append(
                Graph(
                    stem,
                    f"{stem}.onnx",
                    module,
                    {inp: torch.rand_like(example)},
                    [outp],
                    quantize=levels(255.0, 128.0, clip=False),
                    parity_inputs=[{inp: other}],
                )
            )
        return export_engine(
            out_dir,
            engine="cocolor",
            model=model,
            arch=CONFIGS["cocolor"],
            graphs=graphs,
            pad_multiple=eng.MULTIPLE,
            run=run,
            classical_stage={"fit_radius": eng.FIT_RADIUS, "fit_eps": eng.FIT_EPS, "align_radius": eng.ALIGN_RADIUS},
        )


def data_manifest(folder: str, stills: list[str]) -> dict[str, Any]:
    """What the engine manifests record about their training data."""
    return {
        "real": nirdata.SOURCE,
        "train_categories": list(nirdata.TRAIN),
        "held_out_categories": list(nirdata.HELD_OUT),
        "folder": str(nirdata.data_dir(folder or None)),
        "synthetic_nir_from_stills": stills,
        "synthetic_model": "streamfuse.sources.synthetic_nir (simulation, not real NIR)",
    }


# --- cocolor-paper --------------------------------------------------------------------------------------------


@dataclass
class CoColorPaperConfig(TrainConfig):
    """``configs/train/cocolor-paper.yaml`` keys (λ as in the paper's implementation details)."""

    model: str = "cocolor-paper"
    data: str = ""
    crop: int = 96
    """Crop side at the working resolution (images are first reduced to the engine's work side)."""
    synthetic: bool = True
    limit: int = 0
    val_limit: int = 0
    phase1: int = 600
    """Steps of the domain-translation phase."""
    phase2: int = 600
    """Steps of the parallel-colorization phase (then the joint fine-tune)."""
    lambda1: float = 0.1
    lambda2: float = 0.01
    lambda3: float = 0.025
    lambda4: float = 0.025
    lambda_p: float = 10.0
    lambda_c: float = 1.0


def work_size(shape: tuple[int, int], side: int) -> tuple[int, int]:
    """The paper engine's working size (w, h) for an H×W frame."""
    h, w = shape
    f = max(1.0, max(h, w) / side)
    return max(16, round(w / f)), max(16, round(h / f))


def ssim_t(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of (N, C, H, W) tensors in 0..1 (Gaussian window sigma 1.5)."""
    k = torch.exp(-((torch.arange(11, device=x.device) - 5.0) ** 2) / (2 * 1.5**2))
    k = (k / k.sum()).view(1, 1, 1, 11)
    c = x.shape[1]

    def blur(t: torch.Tensor) -> torch.Tensor:
        t = F.conv2d(t, k.expand(c, 1, 1, 11), groups=c)
        return F.conv2d(t, k.transpose(2, 3).expand(c, 1, 11, 1), groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return (((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))).mean()


def l_mix(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Zhao et al.'s mix of structural and L1 losses (single-scale SSIM at these crop sizes)."""
    return 0.84 * (1.0 - ssim_t(x, y)) + 0.16 * (x - y).abs().mean()


def _frozen(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` with detached weights: gradients reach ``x`` (the generator) but not the discriminator."""
    return functional_call(module, {k: v.detach() for k, v in module.named_parameters()}, (x,))


def _lsgan_g(d: torch.nn.Module, fake: torch.Tensor) -> torch.Tensor:
    return ((_frozen(d, fake) - 1.0) ** 2).mean()


def _lsgan_d(d: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (((d(real) - 1.0) ** 2).mean() + (d(fake.detach()) ** 2).mean())


@register_trainer("cocolor-paper")
class CoColorPaperTrainer(Trainer):
    """The paper's cooperative colorization: bilateral translators, two colorizers, discriminators."""

    config_class = CoColorPaperConfig
    score = "mean"

    def __init__(self) -> None:
        super().__init__()
        self._stills: list[str] = []
        self.cfg: CoColorPaperConfig | None = None

    def build_model(self, cfg: CoColorPaperConfig) -> torch.nn.Module:
        self.cfg = cfg
        net = build_model(CONFIGS[cfg.model])
        net.register_buffer("step", torch.zeros((), dtype=torch.long))  # the phase survives --resume
        return net

    def make_data(self, cfg: CoColorPaperConfig, split: str) -> dict[str, list]:
        side = CONFIGS[cfg.model]["work_side"]
        folder = cfg.data or None

        def reduce(img: np.ndarray) -> np.ndarray:
            return cv2.resize(img, work_size(img.shape[:2], side), interpolation=cv2.INTER_AREA)

        if split != "train":
            pairs = nirdata.load_pairs("val", folder, cfg.val_limit)
            return {"val": [(p.nir, p.rgb) for p in pairs]}
        pairs = nirdata.load_pairs("train", folder, cfg.limit)
        paired = [(reduce(p.nir), reduce(p.rgb)) for p in pairs]
        grey = [rgb for _, rgb in paired]
        if cfg.synthetic:
            from streamfuse.data.stills import package_stills

            stills = package_stills()
            self._stills = [n for n, _ in stills]
            grey += [reduce(s) for _, s in stills]
        return {"paired": paired, "grey": grey}

    def _crop(self, imgs: list[np.ndarray], c: int, rng: np.random.Generator) -> list[np.ndarray]:
        h, w = imgs[0].shape[:2]
        y, x = int(rng.integers(0, max(1, h - c + 1))), int(rng.integers(0, max(1, w - c + 1)))
        out = [i[y : y + c, x : x + c] for i in imgs]
        if rng.random() < 0.5:
            out = [i[:, ::-1] for i in out]
        return out

    def batch(self, data: dict[str, list], cfg: CoColorPaperConfig, rng: np.random.Generator):
        c = cfg.crop
        xn, yn, xg, yg = [], [], [], []
        for _ in range(cfg.batch):
            nir, rgb = data["paired"][int(rng.integers(len(data["paired"])))]
            nir, rgb = self._crop([nir, rgb], c, rng)
            xn.append(nir.astype(np.float32)[None] / 255.0)
            yn.append(rgb.astype(np.float32).transpose(2, 0, 1) / 255.0)
            (g,) = self._crop([data["grey"][int(rng.integers(len(data["grey"])))]], c, rng)
            xg.append(luma(np.ascontiguousarray(g)).astype(np.float32)[None] / 255.0)
            yg.append(g.astype(np.float32).transpose(2, 0, 1) / 255.0)
        return tuple(torch.from_numpy(np.ascontiguousarray(np.stack(a))).to(self.device) for a in (xn, yn, xg, yg))

    def loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        cfg = self.cfg
        assert cfg is not None
        x_n, y_n, x_g, y_g = batch
        step = int(model.step)
        model.step += 1
        phase = 1 if step < cfg.phase1 else 2 if step < cfg.phase1 + cfg.phase2 else 3
        grey_n = (0.299 * y_n[:, :1] + 0.587 * y_n[:, 1:2] + 0.114 * y_n[:, 2:]).detach()  # X_G of the pair
        train_tran = phase in (1, 3)
        with torch.set_grad_enabled(train_tran):
            x_n2g = model.g_n2g(x_n)
            x_g2n = model.g_g2n(x_g)
        loss = x_n.new_zeros(())
        if train_tran:  # L_tran: cycle, identity, image-level GAN (+ the pair's supervision, as Sec. 3.4 (i))
            cyc = (model.g_g2n(x_n2g) - x_n).abs().mean() + (model.g_n2g(x_g2n) - x_g).abs().mean()
            idt = (model.g_n2g(x_g) - x_g).abs().mean() + (model.g_g2n(x_n) - x_n).abs().mean()
            gan = _lsgan_g(model.d_n_img, x_g2n) + _lsgan_g(model.d_g_img, x_n2g)
            d = _lsgan_d(model.d_n_img, x_n, x_g2n) + _lsgan_d(model.d_g_img, x_g, x_n2g)
            sup = (x_n2g - grey_n).abs().mean()
            loss = loss + cfg.lambda1 * cyc + cfg.lambda2 * idt + gan + d + sup
        if phase == 1:
            return loss
        if phase == 2:
            x_n2g, x_g2n = x_n2g.detach(), x_g2n.detach()
        fn_n, fn_g2n = model.f_n(x_n), model.f_n(x_g2n)
        fg_g, fg_n2g = model.f_g(x_g), model.f_g(x_n2g)
        pair = (
            (y_g - fg_g).abs().mean()
            + cfg.lambda3 * (y_n - fg_n2g).abs().mean()
            + (y_n - fn_n).abs().mean()
            + cfg.lambda4 * (y_g - fn_g2n).abs().mean()
        )
        blt = l_mix(fn_n, fg_n2g) + l_mix(fg_g, fn_g2n)
        feat = _lsgan_g(model.d_n_feat, fn_g2n) + _lsgan_g(model.d_g_feat, fg_n2g)
        d_feat = _lsgan_d(model.d_n_feat, fn_n, fn_g2n) + _lsgan_d(model.d_g_feat, fg_g, fg_n2g)
        return loss + cfg.lambda_p * pair + cfg.lambda_c * blt + feat + d_feat

    def predict(self, model: torch.nn.Module, nir: np.ndarray) -> np.ndarray:
        """F_N at the working size, carried to full resolution exactly as the engine does (RGB uint8)."""
        side = CONFIGS["cocolor-paper"]["work_side"]
        size = work_size(nir.shape, side)
        g, _ = eng.nir_blocks(nir, size)
        x = torch.from_numpy(eng.pad_to(g[None], 16)[None]).to(self.device)
        rgb = model.f_n(x)[0, :, : size[1], : size[0]].cpu().numpy().transpose(1, 2, 0)
        ycc = rgb_to_ycbcr(np.ascontiguousarray(np.clip(rgb, 0, 1) * 255.0, dtype=np.float32))
        a, b = eng.local_fit(g, ycc, 2, 1e-3)
        return eng.ycbcr_to_rgb(eng.apply_coefficients(nir, a, b))

    def validate(self, model: torch.nn.Module, data: dict[str, list]) -> dict[str, float]:
        recs = [score(self.predict(model, nir), rgb) for nir, rgb in data["val"]]
        return {
            "mean": round(pool_psnr(recs), 4),
            "prior_psnr_rgb": round(pool_psnr(recs), 4),
            "prior_psnr_cbcr": round(pool_psnr(recs, "psnr_cbcr"), 4),
            "prior_ssim": round(pool_psnr(recs, "ssim"), 4),
        }

    def data_manifest(self, cfg: CoColorPaperConfig) -> dict[str, Any]:
        return data_manifest(cfg.data, self._stills if cfg.synthetic else [])

    def export(self, model: torch.nn.Module, out_dir: Path, run: RunRecord):
        (module, example, inp, outp) = export_graphs(model)["model"]
        graph = Graph(
            "model",
            "model.onnx",
            module,
            {inp: example},
            [outp],
            quantize=levels(255.0),
            parity_inputs=[{inp: torch.rand(1, 1, 80, 64)}],
        )
        return export_engine(
            out_dir,
            engine="cocolor-paper",
            model=model,
            arch=CONFIGS["cocolor-paper"],
            graphs=[graph],
            pad_multiple=CONFIGS["cocolor-paper"]["multiple"],
            run=run,
        )
