"""CCDC networks (Zhao et al., "Cross-Camera Deep Colorization"), torch nn.Modules only.

Two configurations share this file:

- ``CCDCFast`` (registry name ``ccdc``): the real-time design. The engine aligns the reference to the mono
  frame with DIS flow at (twice) reference resolution and hands the network several aligned candidates
  (DIS warp, a smoothed-flow warp, no warp) each with its warp error, the visibility cue of the paper.
  The network runs at reference resolution and predicts per-pixel candidate weights plus a chroma residual,
  which fixes misalignment and fills occlusions; a cheap luma-guided upsampling follows in the engine.
- ``CCDCPaper`` (registry name ``ccdc-paper``): the paper's architecture, rig-only inputs (mono frame and the
  bicubic-upsampled low-res colour reference): luminance and colour encoders, a FlowNetS-style flow estimator
  with a 4-channel input and flows f0..f4, backward warping of reference features, visibility maps V0..V4
  from warping errors, and a U-Net fusion decoder that predicts chroma (the mono luma is kept).

Both are built from a plain config dict (``build_model``), stored in each engine manifest.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# Feature layout handed to CCDCFast by the engine (streamfuse.engines.ccdc.fast_features).
CANDIDATES = ("dis", "fill", "smooth", "zero")
GUIDE_CHANNEL = 1 + 4 * len(CANDIDATES)  # blur-matched mono luma, the warping-loss target
FAST_IN_CHANNELS = GUIDE_CHANNEL + 3


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2)]
    if act:
        layers.append(nn.LeakyReLU(0.1, inplace=True))
    return nn.Sequential(*layers)


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def _unet_trunk(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The blend nets' shared U-Net body: ``stem``, ``enc`` stages with ``down`` between them, ``dec`` with skips."""
    skips = []
    h = net.stem(x)
    for i, enc in enumerate(net.enc):
        h = enc(h)
        if i + 1 < len(net.enc):
            skips.append(h)
            h = net.down[i](h)
    for dec in net.dec:
        h = dec(torch.cat([_up2(h), skips.pop()], 1))
    return h


# --- fast configuration --------------------------------------------------------------------------------------


class CCDCFast(nn.Module):
    """Candidate-blending U-Net at reference resolution (input at the engine's working resolution = 2× ref).

    With ``refine`` the network also predicts a residual to the DIS flow and warps the reference itself
    (a fourth, learned-alignment candidate); its luma warp error drives the training warping loss.

    Input: (B, FAST_IN_CHANNELS, H, W) with H, W multiples of ``2 ** len(widths)``; output (B, 2, H, W): CbCr,
    centred and scaled to (c - 128) / 255.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (24, 32, 48, 64),
        depth: int = 1,
        residual_scale: float = 0.25,
        refine: bool = False,
        max_refine: float = 8.0,
        gate_sigma: float = 0.0,
    ):
        super().__init__()
        self.gate_sigma = gate_sigma
        self.widths = tuple(widths)
        self.residual_scale = residual_scale
        self.refine = refine
        self.max_refine = max_refine
        n_cand = len(CANDIDATES) + int(refine)
        self.stem = _conv(FAST_IN_CHANNELS, widths[0], stride=2)  # work res -> reference res
        self.enc = nn.ModuleList()
        self.down = nn.ModuleList()
        for i, w in enumerate(widths):
            self.enc.append(nn.Sequential(*[_conv(w, w) for _ in range(depth)]))
            if i + 1 < len(widths):
                self.down.append(_conv(w, widths[i + 1], stride=2))
        self.dec = nn.ModuleList()
        for i in range(len(widths) - 2, -1, -1):
            self.dec.append(
                nn.Sequential(
                    _conv(widths[i + 1] + widths[i], widths[i]),
                    *[_conv(widths[i], widths[i]) for _ in range(depth - 1)],
                )
            )
        self.head = nn.Conv2d(widths[0], n_cand + 2 + 2 * int(refine), 3, 1, 1)
        with torch.no_grad():  # start as "use the DIS warp": the classical baseline
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()
            self.head.bias[CANDIDATES.index("fill")] = 4.0 if not refine else 2.0  # start near `guided`
            if refine:
                self.head.bias[len(CANDIDATES)] = 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _unet_trunk(self, x)
        out = _up2(self.head(h))
        n_fixed = len(CANDIDATES)
        cands = [x[:, 2 + 4 * k : 4 + 4 * k] for k in range(n_fixed)]
        if self.refine:
            zero = 1 + 4 * CANDIDATES.index("zero")
            flow = x[:, -2:] * 32.0 + self.max_refine * torch.tanh(out[:, n_fixed + 3 : n_fixed + 5])
            warped = backward_warp(x[:, zero : zero + 3], flow)
            self.last_warped_y = warped[:, :1]  # kept for the training warping loss
            cands.append(warped[:, 1:3])
        n_cand = len(cands)
        weights = torch.softmax(out[:, :n_cand], 1)
        chroma = 0
        for k, cand in enumerate(cands):
            chroma = chroma + weights[:, k : k + 1] * cand
        chroma = chroma + self.residual_scale * torch.tanh(out[:, n_cand : n_cand + 2])
        if self.gate_sigma > 0:  # change `guided`'s filled chroma only where its warp disagrees with the mono
            fill = cands[CANDIDATES.index("fill")]
            err = x[:, 4:5] * (255.0 / self.gate_sigma)  # DIS candidate's luma warp error
            gate = F.avg_pool2d(1.0 - torch.exp(-err * err), 5, 1, 2, count_include_pad=False)
            chroma = fill + gate * (chroma - fill)
        return chroma


# --- temporal configuration (the stream engine) -------------------------------------------------------------

# Feature layout of streamfuse.engines.ccdc.temporal_features: mono, guide, then per candidate its channels.
TEMPORAL_CANDIDATES = ("direct", "fill", "chained", "propagated", "memory")
TEMPORAL_CHROMA = ((3, 4), (6, 7), (9, 10), (12, 13), (16, 17))  # (cb, cr) channels of each candidate
TEMPORAL_ERRORS = (5, 11, 14, 18)  # warp-error channels (direct, chained, propagated, memory)
TEMPORAL_IN_CHANNELS = 21


class CCDCTemporal(nn.Module):
    """Per-pixel learned blend over the stream's candidates plus an occlusion/chroma residual.

    The input is at the engine's working resolution; a stride-2 stem brings it to about reference resolution,
    a small U-Net predicts one logit per candidate and a CbCr residual, upsampled back (cheap on a CPU). The
    blend starts as ``fill`` (guided-temporal's chroma), so an untrained model is the classical engine.
    Output (B, 2, H, W): CbCr as (c - 128) / 255; H, W multiples of ``2 ** len(widths)``.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (16, 24, 32),
        depth: int = 1,
        residual_scale: float = 0.1,
        full_width: int = 8,
        gate_sigma: float = 0.0,
    ):
        super().__init__()
        self.gate_sigma = gate_sigma
        self.widths = tuple(widths)
        self.residual_scale = residual_scale
        n = len(TEMPORAL_CANDIDATES)
        self.stem = _conv(TEMPORAL_IN_CHANNELS, widths[0], stride=2)
        self.enc = nn.ModuleList()
        self.down = nn.ModuleList()
        for i, w in enumerate(widths):
            self.enc.append(nn.Sequential(*[_conv(w, w) for _ in range(depth)]))
            if i + 1 < len(widths):
                self.down.append(_conv(w, widths[i + 1], stride=2))
        self.dec = nn.ModuleList(_conv(widths[i + 1] + widths[i], widths[i]) for i in range(len(widths) - 2, -1, -1))
        self.full = _conv(widths[0] + TEMPORAL_IN_CHANNELS, full_width)  # back at working resolution, narrow
        self.head = nn.Conv2d(full_width, n + 2, 3, 1, 1)
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()
            self.head.bias[TEMPORAL_CANDIDATES.index("fill")] = 4.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _unet_trunk(self, x)
        out = self.head(self.full(torch.cat([_up2(h), x], 1)))
        n = len(TEMPORAL_CANDIDATES)
        weights = torch.softmax(out[:, :n], 1)
        chroma = 0
        for k, (cb, _) in enumerate(TEMPORAL_CHROMA):
            chroma = chroma + weights[:, k : k + 1] * x[:, cb : cb + 2]
        chroma = chroma + self.residual_scale * torch.tanh(out[:, n : n + 2])
        if self.gate_sigma > 0:  # depart from guided-temporal's chroma only where both of its warps disagree
            fill = x[:, TEMPORAL_CHROMA[1][0] : TEMPORAL_CHROMA[1][0] + 2]
            err = torch.minimum(x[:, 5:6].abs(), x[:, 11:12].abs()) * (255.0 / self.gate_sigma)
            gate = F.avg_pool2d(1.0 - torch.exp(-err * err), 5, 1, 2, count_include_pad=False)
            chroma = fill + gate * (chroma - fill)
        return chroma


# --- paper configuration -------------------------------------------------------------------------------------


def backward_warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``x`` at pixel + flow (flow in pixels of x, channels dx, dy), bilinear, border padding."""
    b, _, h, w = x.shape
    ys = torch.arange(h, dtype=x.dtype, device=x.device).view(1, h, 1).expand(b, h, w)
    xs = torch.arange(w, dtype=x.dtype, device=x.device).view(1, 1, w).expand(b, h, w)
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


class Encoder(nn.Module):
    """SELU pyramid encoder: features at 1, 1/2, 1/4, 1/8 resolution (scales i = 1..4 of the paper)."""

    def __init__(self, cin: int, width: int):
        super().__init__()
        act = nn.SELU(inplace=True)
        self.level1 = nn.Sequential(nn.Conv2d(cin, width, 5, 1, 2), act, nn.Conv2d(width, width, 5, 1, 2), act)
        self.levels = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, width, 5, 2, 2), act, nn.Conv2d(width, width, 3, 1, 1), act)
            for _ in range(3)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.level1(x)]
        for level in self.levels:
            feats.append(level(feats[-1]))
        return feats


class FlowNetS(nn.Module):
    """FlowNetS without correlation (4-channel input: mono + upsampled RGB reference); flows f0..f4.

    f0 is at full resolution, f_i at 1/2^i; each is in pixels of its own resolution.
    """

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512, 512, 1024)):
        super().__init__()
        w1, w2, w3, w4, w5, w6 = widths
        self.conv1 = _conv(4, w1, 7, 2)
        self.conv2 = _conv(w1, w2, 5, 2)
        self.conv3 = nn.Sequential(_conv(w2, w3, 5, 2), _conv(w3, w3))
        self.conv4 = nn.Sequential(_conv(w3, w4, 3, 2), _conv(w4, w4))
        self.conv5 = nn.Sequential(_conv(w4, w5, 3, 2), _conv(w5, w5))
        self.conv6 = nn.Sequential(_conv(w5, w6, 3, 2), _conv(w6, w6))
        self.predict6 = nn.Conv2d(w6, 2, 3, 1, 1)
        self.deconv5 = _conv(w6, w5 // 2)
        self.predict5 = nn.Conv2d(w5 + w5 // 2 + 2, 2, 3, 1, 1)
        self.deconv4 = _conv(w5 + w5 // 2 + 2, w4 // 2)
        self.predict4 = nn.Conv2d(w4 + w4 // 2 + 2, 2, 3, 1, 1)
        self.deconv3 = _conv(w4 + w4 // 2 + 2, w3 // 2)
        self.predict3 = nn.Conv2d(w3 + w3 // 2 + 2, 2, 3, 1, 1)
        self.deconv2 = _conv(w3 + w3 // 2 + 2, w2 // 2)
        self.predict2 = nn.Conv2d(w2 + w2 // 2 + 2, 2, 3, 1, 1)
        self.deconv1 = _conv(w2 + w2 // 2 + 2, w1 // 2)
        self.predict1 = nn.Conv2d(w1 + w1 // 2 + 2, 2, 3, 1, 1)
        self.refine0 = nn.Sequential(_conv(4 + 2, 16), nn.Conv2d(16, 2, 3, 1, 1))

    @staticmethod
    def _step(
        deconv: nn.Module, predict: nn.Module, feat: torch.Tensor, skip: torch.Tensor, flow: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        up_feat = deconv(_up2(feat))
        up_flow = _up2(flow) * 2.0
        cat = torch.cat([skip, up_feat, up_flow], 1)
        return cat, up_flow + predict(cat)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.conv1(x)
        c2 = self.conv2(c1)
        c3 = self.conv3(c2)
        c4 = self.conv4(c3)
        c5 = self.conv5(c4)
        c6 = self.conv6(c5)
        flow = self.predict6(c6)
        feat = c6
        flows = []
        for deconv, predict, skip in (
            (self.deconv5, self.predict5, c5),
            (self.deconv4, self.predict4, c4),
            (self.deconv3, self.predict3, c3),
            (self.deconv2, self.predict2, c2),
            (self.deconv1, self.predict1, c1),
        ):
            feat, flow = self._step(deconv, predict, feat, skip, flow)
            flows.append(flow)
        f0 = _up2(flow) * 2.0
        f0 = f0 + self.refine0(torch.cat([x, f0], 1))
        # flows at full, 1/2, 1/4, 1/8, 1/16 resolution
        return [f0, flows[-1], flows[-2], flows[-3], flows[-4]]


class CCDCPaper(nn.Module):
    """The paper's network with rig-only inputs; the reference branch is a separate method (run once)."""

    def __init__(
        self,
        enc_width: int = 64,
        flow_widths: tuple[int, ...] = (64, 128, 256, 512, 512, 1024),
        dec_widths: tuple[int, ...] = (64, 64, 64, 64),
    ):
        super().__init__()
        self.lum_enc = Encoder(1, enc_width)  # shared by the mono frame and the reference luma
        self.col_enc = Encoder(3, enc_width)
        self.flow = FlowNetS(tuple(flow_widths))
        d = dec_widths
        # fusion input per scale i = 1..4: F_i^l, warped F_i^c, V_i (= warped F_i^Y - F_i^l)
        self.fuse4 = nn.Sequential(_conv(3 * enc_width, d[3], 3), _conv(d[3], d[3], 3))
        self.fuse3 = nn.Sequential(_conv(3 * enc_width + d[3], d[2], 3), _conv(d[2], d[2], 3))
        self.fuse2 = nn.Sequential(_conv(3 * enc_width + d[2], d[1], 3), _conv(d[1], d[1], 3))
        self.fuse1 = nn.Sequential(_conv(3 * enc_width + d[1] + 2 + 3, d[0], 5), _conv(d[0], d[0], 5))
        self.out = nn.Conv2d(d[0], 2, 5, 1, 2)

    def reference_branch(self, ref_up: torch.Tensor) -> list[torch.Tensor]:
        """Work that depends only on the colour reference (B, 3, H, W in 0..1, upsampled to the mono size).

        Returns [ref_up, I2^Y, F^c_1..4, F^Y_1..4]: run once per reference and reused per mono frame.
        """
        y = 0.299 * ref_up[:, 0:1] + 0.587 * ref_up[:, 1:2] + 0.114 * ref_up[:, 2:3]
        return [ref_up, y, *self.col_enc(ref_up), *self.lum_enc(y)]

    def forward(self, mono: torch.Tensor, *ref: torch.Tensor) -> torch.Tensor:
        """mono (B, 1, H, W) in 0..1 plus the reference-branch outputs; returns CbCr as (c - 128) / 255."""
        ref_up, ref_y = ref[0], ref[1]
        fc, fy = ref[2:6], ref[6:10]
        fl = self.lum_enc(mono)
        flows = self.flow(torch.cat([mono, ref_up], 1))
        warped_y = backward_warp(ref_y, flows[0])
        self.last_warped_y = warped_y  # kept for the training warping loss
        v0 = warped_y - mono
        warped_rgb = backward_warp(ref_up, flows[0])
        h = None
        fuses = (self.fuse1, self.fuse2, self.fuse3, self.fuse4)
        for i in (3, 2, 1, 0):
            wc = backward_warp(fc[i], flows[i])  # flows[i] has the resolution of encoder level i
            wy = backward_warp(fy[i], flows[i])
            parts = [fl[i], wc, wy - fl[i]]
            if h is not None:
                parts.append(_up2(h))
            if i == 0:
                parts += [mono, v0, warped_rgb]
            h = fuses[i](torch.cat(parts, 1))
        return torch.tanh(self.out(h)) * 0.5


# --- configs and factory -------------------------------------------------------------------------------------

CONFIGS: dict[str, dict[str, Any]] = {
    "ccdc-temporal": {"arch": "temporal", "widths": [16, 24, 32], "depth": 1, "residual_scale": 0.1, "full_width": 8},
    "ccdc-temporal-small": {
        "arch": "temporal",
        "widths": [8, 12, 16],
        "depth": 1,
        "residual_scale": 0.05,
        "full_width": 8,
    },
    "ccdc-temporal-gated": {
        "arch": "temporal",
        "widths": [8, 12, 16],
        "depth": 1,
        "residual_scale": 0.05,
        "full_width": 8,
        "gate_sigma": 15.0,
    },
    "ccdc-temporal-tiny": {"arch": "temporal", "widths": [4, 4, 4], "depth": 1, "residual_scale": 0.1, "full_width": 4},
    "ccdc": {"arch": "fast", "widths": [24, 32, 48, 64], "depth": 1, "residual_scale": 0.25, "refine": True},
    "ccdc-gated": {
        "arch": "fast",
        "widths": [24, 32, 48, 64],
        "depth": 1,
        "residual_scale": 0.25,
        "refine": True,
        "gate_sigma": 15.0,
    },
    "ccdc-norefine": {"arch": "fast", "widths": [24, 32, 48, 64], "depth": 1, "residual_scale": 0.25},
    "ccdc-tiny": {
        "arch": "fast",
        "widths": [8, 8, 8, 8],
        "depth": 1,
        "residual_scale": 0.25,
        "refine": True,
        "gate_sigma": 15.0,
    },
    # Faithful widths: FlowNetS 64-128-256-512-512-1024, 64-channel SELU encoders, 64-channel decoder.
    "ccdc-paper-full": {
        "arch": "paper",
        "enc_width": 64,
        "flow_widths": [64, 128, 256, 512, 512, 1024],
        "dec_widths": [64, 64, 64, 64],
    },
    # The shipped paper-topology model: same layers at 1/4 width (trainable on CPU in minutes).
    "ccdc-paper": {
        "arch": "paper",
        "enc_width": 16,
        "flow_widths": [16, 32, 64, 128, 128, 256],
        "dec_widths": [16, 16, 16, 16],
    },
    "ccdc-paper-tiny": {"arch": "paper", "enc_width": 4, "flow_widths": [4, 8, 8, 8, 8, 8], "dec_widths": [4, 4, 4, 4]},
}


def build_model(config: dict[str, Any]) -> nn.Module:
    """Build a CCDC network from a config dict (``arch`` = fast | temporal | paper plus its width/depth keys).

    Raises:
        ValueError: unknown ``arch``.

    Example:
        >>> net = build_model(CONFIGS["ccdc"])
    """
    cfg = dict(config)
    arch = cfg.pop("arch", "fast")
    if arch == "fast":
        return CCDCFast(
            tuple(cfg.get("widths", (24, 32, 48, 64))),
            int(cfg.get("depth", 1)),
            float(cfg.get("residual_scale", 0.25)),
            bool(cfg.get("refine", False)),
            float(cfg.get("max_refine", 8.0)),
            float(cfg.get("gate_sigma", 0.0)),
        )
    if arch == "temporal":
        return CCDCTemporal(
            tuple(cfg.get("widths", (16, 24, 32))),
            int(cfg.get("depth", 1)),
            float(cfg.get("residual_scale", 0.1)),
            int(cfg.get("full_width", 8)),
            float(cfg.get("gate_sigma", 0.0)),
        )
    if arch == "paper":
        return CCDCPaper(
            int(cfg.get("enc_width", 64)),
            tuple(cfg.get("flow_widths", (64, 128, 256, 512, 512, 1024))),
            tuple(cfg.get("dec_widths", (64, 64, 64, 64))),
        )
    raise ValueError(f"unknown CCDC arch {arch!r}; use 'fast', 'temporal' or 'paper'")
