"""SCSNet networks (Zhang et al., "SCSNet: simultaneous image colorization and super-resolution", AAAI 2022).

torch nn.Modules only. One design, two widths (``CONFIGS``): ``scsnet-paper`` (the paper's layout at widths a CPU
can train) and ``scsnet`` (fast: fewer channels, a two-level pyramid, a narrow CPM head; real time at
384x288 -> 768x576).

Layout, after the paper's Figure 3:

- an initial convolution lifts the low-resolution (LR) inputs to ``width`` channels (F_init);
- colorization branch: a stride-4 source encoder (F_s), a reference encoder (F_r) run once per reference,
  the pyramid valve cross-attention (``PVCAttn``) that injects the reference (referential mode; automatic mode
  takes F_int = F_s), and a decoder with a self-attention layer back to LR resolution (F_color);
- super-resolution branch: residual basic blocks on F_init (F_tex); a 3x3 convolution fuses F_tex and F_color
  into F_cs;
- the continuous pixel mapping head (``CPM``): F_cs bilinearly sampled at every output pixel (corners aligned),
  plus the local relative coordinate to the anchor pixel and the scale, mapped by four linear layers (1x1
  convolutions) to the output Y, Cb, Cr.

Departures, each for a measured or stated reason: the LR input also carries the reference aligned by the
``guided`` engine's DIS stage, and the CPM head also sees per-pixel hints at output resolution (bicubic luma, the
aligned reference); the net predicts residuals over them. RGB PSNR is dominated by luma, and the aligned
reference carries true high-resolution luma where the scene is static. The first CPM layer is applied to F_cs
before the bilinear sampling (the two commute, both being linear), which keeps the output-resolution work to
the hidden width.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# Input layout, kept in step with streamfuse.engines.scsnet (that module must not import torch).
LR_CHANNELS = 4  # LR mono luma, aligned reference Y, Cb, Cr at LR (zeros in automatic mode)
REF_CHANNELS = 3  # reference Y, Cb, Cr at LR size, unaligned (the PVCAttn input)
# Output-resolution planes, channels last (B, H, W, HINT_CHANNELS): the base the net adds its residual to (luma:
# bicubic plus the gated reference detail, or plain bicubic in automatic mode; fill Cb, Cr), then bicubic Y, the
# warped reference's LR-matched blur, warped Cb, Cr (reference planes are zeros in automatic mode), then the CPM
# coordinates: relative x, relative y, 1/scale, mode (1 referential, 0 automatic).
IMAGE_HINTS = 7
HINT_CHANNELS = IMAGE_HINTS + 4
ENCODER_STRIDE = 4


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2)]
    if act:
        layers.append(nn.LeakyReLU(0.1, inplace=True))
    return nn.Sequential(*layers)


def _resize_to(x: torch.Tensor, like: torch.Tensor, align: bool = False) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=align)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a skip (the paper's super-resolution basic block)."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(_conv(c, c), _conv(c, c, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Encoder(nn.Module):
    """Stride-4 encoder: two stride-2 convolutions and ``depth`` basic blocks."""

    def __init__(self, cin: int, c: int, depth: int):
        super().__init__()
        self.net = nn.Sequential(
            _conv(cin, c // 2, stride=2), _conv(c // 2, c, stride=2), *[BasicBlock(c) for _ in range(depth)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class VCAttn(nn.Module):
    """Valve cross-attention (paper Figure 4): query from the source, key/value from the reference; two sigmoid
    valves from [F_s, F_r->s] gate how much of each flows into the output."""

    def __init__(self, c: int, ck: int):
        super().__init__()
        self.ck = ck
        self.q = nn.Conv2d(c, ck, 1)
        self.k = nn.Conv2d(c, ck, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.valve = nn.Sequential(nn.Conv2d(2 * c, c, 1), nn.LeakyReLU(0.1, inplace=True), nn.Conv2d(c, 2, 1))

    def keys_values(self, fr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference-only part (computed once per reference)."""
        return self.k(fr), self.v(fr)

    def forward(self, fs: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, c = fs.shape[0], fs.shape[1]
        q = self.q(fs)
        qf = q.flatten(2).transpose(1, 2)  # B, Ns, ck
        attn = torch.softmax(torch.bmm(qf, k.flatten(2)) * (1.0 / math.sqrt(self.ck)), dim=-1)  # B, Ns, Nr
        frs = torch.bmm(v.flatten(2), attn.transpose(1, 2)).reshape(b, c, q.shape[2], q.shape[3])
        valves = torch.sigmoid(self.valve(torch.cat([fs, frs], 1)))
        return valves[:, :1] * fs + valves[:, 1:] * frs


class PVCAttn(nn.Module):
    """Pyramid VCAttn (paper Figure 5): pre-convolved feature maps average-pooled to each pyramid level, one
    VCAttn per level, upsampled back, concatenated, post-convolved."""

    def __init__(self, c: int, ck: int, pools: tuple[int, ...]):
        super().__init__()
        self.pools = tuple(pools)
        self.pre_s = nn.ModuleList(_conv(c, c, 1) for _ in pools)
        self.pre_r = nn.ModuleList(_conv(c, c, 1) for _ in pools)
        self.attn = nn.ModuleList(VCAttn(c, ck) for _ in pools)
        self.post = _conv(c * len(pools), c)

    @staticmethod
    def _pool(x: torch.Tensor, p: int) -> torch.Tensor:
        return x if p == 1 else F.avg_pool2d(x, p, p, ceil_mode=True, count_include_pad=False)

    def reference(self, fr: torch.Tensor) -> list[torch.Tensor]:
        """Keys and values of every level, flattened as [k0, v0, k1, v1, ...]."""
        out: list[torch.Tensor] = []
        for p, pre, attn in zip(self.pools, self.pre_r, self.attn, strict=True):
            out.extend(attn.keys_values(pre(self._pool(fr, p))))
        return out

    def forward(self, fs: torch.Tensor, kv: list[torch.Tensor]) -> torch.Tensor:
        levels = []
        for i, (p, pre, attn) in enumerate(zip(self.pools, self.pre_s, self.attn, strict=True)):
            level = attn(pre(self._pool(fs, p)), kv[2 * i], kv[2 * i + 1])
            levels.append(level if p == 1 else _resize_to(level, fs))
        return fs + self.post(torch.cat(levels, 1))


class SelfAttn(nn.Module):
    """SAGAN-style self-attention at a pooled grid (the decoder's self-attention layer)."""

    def __init__(self, c: int, ck: int, pool: int):
        super().__init__()
        self.pool = pool
        self.inner = VCAttn(c, ck)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xp = PVCAttn._pool(x, self.pool)
        k, v = self.inner.keys_values(xp)
        y = self.inner(xp, k, v)
        return x + _resize_to(y - xp, x)


class SCSNet(nn.Module):
    """The full network. ``forward`` is the training/reference path; the engine runs ``reference_features`` once
    per reference and ``main`` per frame (both exported to ONNX).

    Shapes: lr (B, LR_CHANNELS, h, w); ref (B, REF_CHANNELS, h, w); hints (B, H, W, HINT_CHANNELS) with the
    CPM coordinates and condition as its last four planes. Output (B, H, W, 3), channels last:
    Y / 255, (Cb - 128) / 255, (Cr - 128) / 255, the scaling of every input plane too
    (``streamfuse.engines.scsnet.build_inputs``).
    """

    def __init__(
        self,
        width: int = 32,
        color_width: int = 48,
        key_width: int = 16,
        sr_blocks: int = 4,
        enc_depth: int = 2,
        pools: tuple[int, ...] = (1, 2, 4),
        self_attn_pool: int = 2,
        hidden: int = 64,
    ):
        super().__init__()
        self.init = _conv(LR_CHANNELS, width)
        self.enc_s = Encoder(width, color_width, enc_depth)
        self.enc_r = Encoder(REF_CHANNELS, color_width, enc_depth)
        self.pvcattn = PVCAttn(color_width, key_width, pools)
        self.dec_attn = SelfAttn(color_width, key_width, self_attn_pool)
        self.dec = nn.Sequential(_conv(color_width, width), BasicBlock(width))
        self.sr = nn.Sequential(*[BasicBlock(width) for _ in range(sr_blocks)])
        # The 3x3 fusion of [F_tex, F_color] as two convolutions summed (the same map, no concatenated copy).
        self.fuse_tex = nn.Conv2d(width, width, 3, 1, 1)
        self.fuse_color = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        # CPM: four linear layers, channels last at the output resolution (plain matrix products, no layout
        # changes). The first is split by input: F_cs (applied at LR, before the bilinear sampling; the two
        # commute) and the per-pixel planes (hints and coordinates).
        self.cpm_feat = nn.Conv2d(width, hidden, 1)
        self.cpm_pix = nn.Linear(HINT_CHANNELS, hidden, bias=False)
        self.cpm = nn.Sequential(
            nn.LeakyReLU(0.1),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.1),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.1),
            nn.Linear(hidden, 3),
        )
        self.n_kv = 2 * len(pools)
        # The residual head starts at zero, so an untrained net returns its base (bicubic luma, aligned chroma).
        nn.init.zeros_(self.cpm[-1].weight)
        nn.init.zeros_(self.cpm[-1].bias)

    def reference_features(self, ref: torch.Tensor) -> list[torch.Tensor]:
        """PVCAttn keys and values of a reference (the stream contract reuses them across frames)."""
        return self.pvcattn.reference(self.enc_r(ref))

    def main(self, lr: torch.Tensor, hints: torch.Tensor, kv: list[torch.Tensor] | None) -> torch.Tensor:
        """Per-frame path; ``kv`` None is automatic mode (F_int = F_s)."""
        f_init = self.init(lr)
        fs = self.enc_s(f_init)
        f_int = fs if kv is None else self.pvcattn(fs, kv)
        f_color = _resize_to(self.dec(self.dec_attn(f_int)), f_init)
        f_cs = F.leaky_relu(self.fuse_tex(self.sr(f_init)) + self.fuse_color(f_color), 0.1)
        feat = F.interpolate(self.cpm_feat(f_cs), size=hints.shape[1:3], mode="bilinear", align_corners=True)
        pix = hints.reshape(-1, hints.shape[-1])  # (B·H·W, C): the linear layers export as fused Gemm ops
        out = self.cpm(feat.permute(0, 2, 3, 1).reshape(pix.shape[0], -1) + self.cpm_pix(pix)) + pix[:, :3]
        return out.reshape(hints.shape[0], hints.shape[1], hints.shape[2], 3)  # residual over Y, fill Cb, Cr

    def forward(self, lr, ref, hints, referential: bool = True) -> torch.Tensor:
        kv = self.reference_features(ref) if referential else None
        return self.main(lr, hints, kv)


CONFIGS: dict[str, dict[str, Any]] = {
    "scsnet-paper": {
        "width": 32,
        "color_width": 64,
        "key_width": 16,
        "sr_blocks": 6,
        "enc_depth": 2,
        "pools": [1, 2, 4],
        "self_attn_pool": 2,
        "hidden": 48,
    },
    "scsnet": {
        "width": 12,
        "color_width": 24,
        "key_width": 8,
        "sr_blocks": 1,
        "enc_depth": 1,
        "pools": [4, 8],
        "self_attn_pool": 8,
        "hidden": 12,
    },
}


def build_model(config: dict[str, Any]) -> SCSNet:
    """Build an SCSNet from a config dict (one of ``CONFIGS`` or a manifest's ``arch``).

    Example:
        >>> net = build_model(CONFIGS["scsnet"])
    """
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in config.items() if k != "name"}
    return SCSNet(**kwargs)
