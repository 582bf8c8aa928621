"""Dual-lens colorization network (Dong et al., "Learning a Deep Convolutional Network for Colorization in
Monochrome-Color Dual-Lens System", AAAI 2019), torch nn.Modules only.

Pipeline, as in the paper (Fig. 2, Table 1):
1. ResNet1 (shared weights) extracts features of the mono luma and of the reference luma at 1/``stride``.
2. A feature volume concatenates the mono features with the reference features shifted by each disparity
   candidate (the reference is the right camera: mono pixel x matches reference pixel x − d).
3. Attention: two 1×1×1 3-D convolutions with sigmoids give a per-candidate weight that scales the volume.
4. A 3-D encoder–decoder (``levels`` stride-2 levels, transposed-conv decoder with skip additions) regularizes
   it into one logit per candidate: the weight volume W (softmax over candidates).
5. The rough chroma C' is the W-weighted average of the reference Cb/Cr over the candidates.
6. Colour residue joint learning: ResNet2(C') and ResNet3(Y) are concatenated into ResNet4, whose output
   is added to C'.

Deviations, for CPU budgets and any disparity range: W is computed at 1/``stride`` and interpolated to full
resolution, bilinearly in x and y and linearly in d (the paper's last layer is a stride-2 transposed conv);
candidates may start at a small negative disparity (``min_disp``) to absorb calibration error; luma inputs
are normalized per image (mean/std) before ResNet1, so exposure differences between the cameras cancel.
Inputs are in [0, 1]: ``y`` (B,1,H,W) mono luma, ``ref`` (B,3,H,W) reference YCbCr upsampled to the mono size;
H and W must be multiples of ``pad_multiple(config)``. Output: (B,2,H,W) CbCr in [0, 1].
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# --- blocks ---------------------------------------------------------------------------------------------------


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """Two 3×3 conv + BN layers with a residual connection (Table 1, layers 2–3)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn(n, n, 3), _conv_bn(n, n, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class ResNet(nn.Module):
    """5×5 conv (stride 1 or 2) + BN + ReLU, ``blocks`` residual blocks, a plain 3×3 conv (ResNet1–4)."""

    def __init__(self, cin: int, n: int, blocks: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.head = _conv_bn(cin, n, 5, stride)
        self.blocks = nn.Sequential(*[ResBlock(n) for _ in range(blocks)])
        self.tail = nn.Conv2d(n, cout, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.blocks(self.head(x)))


def _conv3d(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


def _deconv3d(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose3d(cin, cout, 3, 2, 1, output_padding=1, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


class Attention(nn.Module):
    """Layers 19–20: 1×1×1 conv (n, sigmoid) then 1×1×1 conv (1, sigmoid); scales each candidate's features."""

    def __init__(self, cin: int, n: int) -> None:
        super().__init__()
        self.a1 = nn.Conv3d(cin, n, 1)
        self.a2 = nn.Conv3d(n, 1, 1)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        return volume * torch.sigmoid(self.a2(torch.sigmoid(self.a1(volume))))


class Regularizer3d(nn.Module):
    """Layers 21–39: a 3-D encoder–decoder (GC-Net style) from the feature volume to one logit per candidate."""

    def __init__(self, cin: int, n: int, levels: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv3d(cin, n), _conv3d(n, n))
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        for i in range(levels):
            c_in = n if i == 0 else 2 * n
            self.down.append(nn.Sequential(_conv3d(c_in, 2 * n, 2), _conv3d(2 * n, 2 * n), _conv3d(2 * n, 2 * n)))
        for i in reversed(range(levels)):
            self.up.append(_deconv3d(2 * n, n if i == 0 else 2 * n))
        self.head = nn.Conv3d(n, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.up:
            y = up(y) + skips.pop()
        return self.head(y)[:, 0]  # (B, D, h, w)


def luma_stats(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image mean and std (B,1,1,1 each) of a luma batch (B,1,H,W): what ResNet1's inputs are normalized by."""
    mean = y.mean(dim=(2, 3), keepdim=True)
    std = ((y - mean) ** 2).mean(dim=(2, 3), keepdim=True).add(1e-4).sqrt()
    return mean, std


def _normalize(y: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    mean, std = luma_stats(y) if stats is None else stats
    return (y - mean) / std


def shift_stack(x: torch.Tensor, offsets: range) -> torch.Tensor:
    """Stack ``x`` (B,C,H,W) shifted right by each offset: out[:, :, k, :, c] = x[..., c − offsets[k]].

    Columns that fall outside the image repeat the edge column.
    """
    lo, hi = min(offsets), max(offsets)
    w = x.shape[-1]
    padded = F.pad(x, (max(hi, 0), max(-lo, 0), 0, 0), mode="replicate")
    start = max(hi, 0)
    return torch.stack([padded[..., start - k : start - k + w] for k in offsets], dim=2)


def hat_kernel(s: int, channels: int = 2) -> torch.Tensor:
    """Depthwise horizontal triangle kernel of half-width ``s`` with unit sum, shape (channels, 1, 1, 2s−1)."""
    taps = torch.tensor([s - abs(i) for i in range(-s + 1, s)], dtype=torch.float32) / (s * s)
    return taps.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)


def hat_filter(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Horizontal triangle filter (linear interpolation between candidates ``s`` pixels apart)."""
    half = (kernel.shape[-1] - 1) // 2
    if half == 0:
        return x
    return F.conv2d(F.pad(x, (half, half, 0, 0), mode="replicate"), kernel, groups=kernel.shape[0])


# --- the network ----------------------------------------------------------------------------------------------


class DualLensNet(nn.Module):
    """Weight-volume colorization for a rectified mono (left) + colour (right) pair; see the module docstring."""

    def __init__(
        self,
        n: int = 32,
        blocks: int = 8,
        stride: int = 2,
        levels: int = 4,
        max_disp: int = 192,
        min_disp: int = 0,
        residue_n: int = 32,
        residue_blocks: int = 8,
        diff: bool = False,
        candidate: bool = False,
    ) -> None:
        super().__init__()
        if stride < 2 or stride & (stride - 1):
            raise ValueError(f"stride must be a power of two >= 2, got {stride}")
        self.n, self.stride, self.levels = n, stride, levels
        self.max_disp, self.min_disp = int(max_disp), int(min_disp)
        self.diff = bool(diff)
        self.candidate = bool(candidate)
        cv = (3 if self.diff else 2) * n  # volume channels
        self.resnet1 = ResNet(1, n, blocks, n, stride=2)
        self.register_buffer("hat", hat_kernel(stride), persistent=False)
        self.attention = Attention(cv, n)
        self.regularizer = Regularizer3d(cv, n, levels)
        self.resnet2 = ResNet(4 if self.candidate else 2, residue_n, residue_blocks, residue_n)
        self.resnet3 = ResNet(1, residue_n, residue_blocks, residue_n)
        self.resnet4 = ResNet(2 * residue_n, residue_n, residue_blocks, 3 if self.candidate else 2)
        # Start as "rough colorization only" (zero residue) and uniform weights; training departs from there.
        for layer in (self.resnet4.tail, self.regularizer.head):
            nn.init.zeros_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def candidates(self) -> range:
        """Disparity candidates at volume resolution, padded to a multiple of 2**levels."""
        lo = math.floor(self.min_disp / self.stride)
        count = math.ceil((self.max_disp - self.min_disp) / self.stride) + 1
        m = 2**self.levels
        return range(lo, lo + math.ceil(count / m) * m)

    def features(self, y: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """ResNet1 features at 1/stride (average-pooled first when stride > 2); ``stats``: normalize by these
        (mean, std) instead of the image's own, so a tile of a frame is normalized as the whole frame is."""
        y = _normalize(y, stats)
        if self.stride > 2:
            y = F.avg_pool2d(y, self.stride // 2)
        return self.resnet1(y)

    def weight_logits(self, y: torch.Tensor, ref_y: torch.Tensor, stats: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of the weight volume at 1/stride: (B, D, H/stride, W/stride).

        ``stats`` (B,4): mono mean, mono std, reference mean, reference std of the whole frame (tiled inference).
        """
        if stats is None:
            f_mono, f_ref = self.features(y), self.features(ref_y)
        else:
            st = stats.view(-1, 4, 1, 1)
            f_mono = self.features(y, (st[:, 0:1], st[:, 1:2]))
            f_ref = self.features(ref_y, (st[:, 2:3], st[:, 3:4]))
        cands = self.candidates()
        f_mono = f_mono.unsqueeze(2).expand(-1, -1, len(cands), -1, -1)
        f_ref = shift_stack(f_ref, cands)
        parts = [f_mono, f_ref, (f_mono - f_ref).abs()] if self.diff else [f_mono, f_ref]
        volume = torch.cat(parts, 1)
        return self.regularizer(self.attention(volume))

    def forward(
        self, y: torch.Tensor, ref: torch.Tensor, cand: torch.Tensor | None = None, stats: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.colorize(y, ref, cand, stats)[0]

    def colorize(
        self, y: torch.Tensor, ref: torch.Tensor, cand: torch.Tensor | None = None, stats: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(final CbCr, rough CbCr C′); training supervises both. ``cand``: the classical candidate CbCr;
        ``stats``: whole-frame luma statistics (see :meth:`weight_logits`)."""
        logits = self.weight_logits(y, ref[:, :1], stats)
        cands, s = self.candidates(), self.stride
        # W at full resolution: softmax over candidates, bilinear in x and y; linear interpolation between
        # candidates s pixels apart equals a hat filter on the reference chroma, so only D shifts are needed.
        weights = F.interpolate(torch.softmax(logits, dim=1), scale_factor=s, mode="bilinear", align_corners=False)
        shifted = shift_stack(hat_filter(ref[:, 1:], self.hat), range(s * cands.start, s * cands.stop, s))
        rough = (shifted * weights.unsqueeze(1)).sum(dim=2)
        if not self.candidate:
            g = torch.cat([self.resnet2(rough - 0.5), self.resnet3(y - 0.5)], dim=1)
            return rough + self.resnet4(g), rough
        if cand is None:
            raise ValueError("this DualLensNet was built with candidate=True: pass the candidate CbCr")
        g = torch.cat([self.resnet2(torch.cat([rough, cand], 1) - 0.5), self.resnet3(y - 0.5)], dim=1)
        out = self.resnet4(g)
        alpha = torch.sigmoid(out[:, :1])  # per-pixel trust in the weight-volume result vs the candidate
        return alpha * rough + (1 - alpha) * cand + out[:, 1:], rough


# --- configs --------------------------------------------------------------------------------------------------

CONFIGS: dict[str, dict[str, Any]] = {
    # Table 1 of the paper: n = 32, 8 residual blocks per ResNet, 4 encoder levels, volume at 1/2.
    "duallens-paper": {
        "n": 32,
        "blocks": 8,
        "stride": 2,
        "levels": 4,
        "max_disp": 192,
        "min_disp": 0,
        "residue_n": 32,
        "residue_blocks": 8,
    },
    # Real-time-leaning default: narrow features, volume at 1/4, two encoder levels, light residue nets.
    "duallens": {
        "n": 8,
        "blocks": 2,
        "stride": 4,
        "levels": 2,
        "max_disp": 160,
        "min_disp": -8,
        "residue_n": 16,
        "residue_blocks": 2,
        "diff": True,  # the volume also carries |f_mono − f_ref|: matching is learned in CPU minutes
        "candidate": True,  # colour residue learning also blends in the classical guided (DIS-flow) chroma
    },
}


def pad_multiple(config: dict[str, Any]) -> int:
    """Input H and W must be multiples of this (stride × 2**levels)."""
    return int(config.get("stride", 2)) * 2 ** int(config.get("levels", 4))


def build_model(config: dict[str, Any]) -> DualLensNet:
    """Build a DualLensNet from a config dict (keys as in ``CONFIGS``; missing keys take the paper's values).

    Raises:
        ValueError: an unknown key or a stride that is not a power of two.

    Example:
        >>> net = build_model(CONFIGS["duallens"])
    """
    allowed = {
        "n",
        "blocks",
        "stride",
        "levels",
        "max_disp",
        "min_disp",
        "residue_n",
        "residue_blocks",
        "diff",
        "candidate",
    }
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ValueError(f"unknown duallens config key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return DualLensNet(**{k: (bool(v) if k in ("diff", "candidate") else int(v)) for k, v in config.items()})
