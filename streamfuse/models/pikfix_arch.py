"""Pik-Fix (Xu et al., "Pik-Fix: Restoring and Colorizing Old Photos"): restoration, similarity and colorization nets.

Conventions: luma planes are 0..1, chroma planes (BT.601 Cb, Cr; the paper's ab) are (c - 128) / 255, so -0.5..0.5.

- ``RestorationNet`` (paper §3.1): a multi-level residual dense network. The picture and its 1/4 and 1/8
  downsamples feed three levels of residual dense blocks; the lower levels are upsampled (bilinear), concatenated
  and fused by a convolution into the restored luma. Its input also carries the degraded luma matched to the
  reference's luma histogram (the reference's tone prior), so fading is undone from the reference's statistics.
- ``SimilarityNet`` (§3.2): a shared luma encoder with four feature levels, mixed per target scale by learnable
  coefficients A_i (eq. 1) and a shared 1×1 filter W, then a softmax-normalized correlation of mean-centred
  features between the input and the reference. At CPU widths the similarity maps are built at the two coarsest
  scales (1/8 and 1/16); the finer colorization levels use the 1/8 map upsampled.
- ``SPHist`` (§3.3, eq. 3-4): the space-preserving colour histogram by Gaussian expansion with learnable bin
  centres; warped through the similarity maps and fused after the encoder's dense blocks of
  ``ColorizationNet``, a U-Net of dense blocks with a fusion dense block (6 units) and a bilinear decoder.
  The colorization net also sees the reference chroma that ``guided``'s DIS flow aligned onto the restored luma,
  and predicts a bounded correction of it.
- ``PikFixFast`` (the fast ``pikfix`` config): the restoration net only, run at 1/4 resolution after a lossless
  pixel unshuffle (with a 1/16 context branch); chroma comes from the aligned reference outside the network.

Widths are set so one CPU thread trains them in under an hour; the paper's are in the comments of the configs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# --- blocks ----------------------------------------------------------------------------------------------------


class ResidualDenseBlock(nn.Module):
    """RDN's residual dense block: densely connected 3×3 conv units, 1×1 local fusion, local residual."""

    def __init__(self, channels: int, growth: int, units: int) -> None:
        super().__init__()
        self.units = nn.ModuleList(nn.Conv2d(channels + i * growth, growth, 3, padding=1) for i in range(units))
        self.fuse = nn.Conv2d(channels + units * growth, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in self.units:
            feats.append(F.relu(conv(torch.cat(feats, 1))))
        return x + self.fuse(torch.cat(feats, 1))


class DenseBlock(nn.Module):
    """DenseNet block (as in the colorization backbone): units concatenate their outputs, 1×1 transition."""

    def __init__(self, cin: int, growth: int, units: int, cout: int) -> None:
        super().__init__()
        self.units = nn.ModuleList(nn.Conv2d(cin + i * growth, growth, 3, padding=1) for i in range(units))
        self.out = nn.Conv2d(cin + units * growth, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in self.units:
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.1))
        return F.leaky_relu(self.out(torch.cat(feats, 1)), 0.1)


def _resize(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


# --- restoration -----------------------------------------------------------------------------------------------


class RestorationNet(nn.Module):
    """Multi-level RDN (full, 1/4, 1/8 resolution): (N, 2, H, W) [degraded, tone-matched] -> restored luma."""

    def __init__(self, width: int = 16, growth: int = 8, blocks: int = 3, units: int = 4, downs=(1, 4, 8)) -> None:
        super().__init__()
        self.downs = tuple(int(d) for d in downs)
        self.levels = nn.ModuleList()
        for _ in self.downs:
            self.levels.append(
                nn.Sequential(
                    nn.Conv2d(2, width, 3, padding=1),
                    *[ResidualDenseBlock(width, growth, units) for _ in range(blocks)],
                )
            )
        self.fuse = nn.Sequential(
            nn.Conv2d(width * len(self.downs), width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 1, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        feats = []
        for d, level in zip(self.downs, self.levels, strict=True):
            xi = x if d == 1 else F.avg_pool2d(x, d, ceil_mode=True)
            f = level(xi)
            feats.append(f if d == 1 else _resize(f, size))
        return x[:, 1:2] + self.fuse(torch.cat(feats, 1))


class PikFixFast(nn.Module):
    """Fast restoration: pixel unshuffle ×4, residual dense blocks at 1/4 resolution plus a 1/16 context branch,
    pixel shuffle back; predicts a correction of the tone-matched luma. Input H and W must be multiples of 16."""

    def __init__(self, width: int = 24, growth: int = 12, blocks: int = 2, units: int = 3) -> None:
        super().__init__()
        self.head = nn.Conv2d(2 * 16, width, 3, padding=1)
        self.body = nn.Sequential(*[ResidualDenseBlock(width, growth, units) for _ in range(blocks)])
        self.context = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU()
        )
        self.tail = nn.Conv2d(width, 16, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = F.relu(self.head(F.pixel_unshuffle(x, 4)))
        ctx = self.context(F.avg_pool2d(f, 4))
        f = self.body(f + _resize(ctx, f.shape[-2:]))
        return x[:, 1:2] + F.pixel_shuffle(self.tail(f), 4)


# --- similarity and histograms -----------------------------------------------------------------------------------


class LumaEncoder(nn.Module):
    """Four stride-2 levels (1/2 .. 1/16) of a small conv encoder on luma: the similarity net's backbone
    (the paper uses a pretrained ResNet34; no pretrained weights can be downloaded here, so it is learned)."""

    def __init__(self, widths=(16, 24, 32, 48)) -> None:
        super().__init__()
        layers, cin = [], 1
        for w in widths:
            layers.append(
                nn.Sequential(
                    nn.Conv2d(cin, w, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU()
                )
            )
            cin = w
        self.layers = nn.ModuleList(layers)
        self.widths = tuple(widths)

    def forward(self, y: torch.Tensor) -> list[torch.Tensor]:
        feats, x = [], y
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class SimilarityNet(nn.Module):
    """Multi-scale similarity maps between input and reference luma (paper eq. 1-2), at the given target levels."""

    def __init__(self, channels: int = 32, targets=(2, 3), widths=(16, 24, 32, 48), temperature: float = 0.02) -> None:
        super().__init__()
        self.encoder = LumaEncoder(widths)
        self.proj = nn.ModuleList(nn.Conv2d(w, channels, 1) for w in widths)
        self.targets = tuple(targets)
        self.coef = nn.Parameter(torch.ones(len(self.targets), len(widths)))  # A_i
        self.shared = nn.Conv2d(channels * len(widths), channels, 1)  # W
        self.temperature = temperature

    def features(self, y: torch.Tensor) -> list[torch.Tensor]:
        """M_i for every target level: the mixed, L2-normalized, mean-centred features of one luma plane."""
        f = [p(x) for p, x in zip(self.proj, self.encoder(y), strict=True)]
        out = []
        for i, t in enumerate(self.targets):
            size = f[t].shape[-2:]
            mixed = torch.cat([_resize(self.coef[i, j] * fj, size) for j, fj in enumerate(f)], 1)
            m = self.shared(mixed)
            m = m - m.mean(dim=(2, 3), keepdim=True)
            out.append(m / (m.norm(dim=1, keepdim=True) + 1e-6))
        return out

    def attention(self, fi: torch.Tensor, fr: torch.Tensor) -> torch.Tensor:
        """Softmax over reference positions of the correlation: (N, HiWi, HrWr)."""
        q = fi.flatten(2).transpose(1, 2)
        k = fr.flatten(2)
        return torch.softmax(torch.bmm(q, k) / self.temperature, dim=2)


class SPHist(nn.Module):
    """Space-preserving histogram of each chroma plane by Gaussian expansion (eq. 3), learnable bin centres (eq. 4)."""

    def __init__(self, bins: int = 16, sigma: float = 0.1) -> None:
        super().__init__()
        vmin, vmax = -1.0, 1.0
        self.centres = nn.Parameter(torch.tensor([vmin + (vmax - vmin) / bins * (k + 0.5) for k in range(bins)]))
        self.sigma = sigma
        self.bins = bins

    def forward(self, chroma: torch.Tensor) -> torch.Tensor:
        """(N, 2, H, W) chroma (-0.5..0.5, scaled to the paper's -1..1) -> (N, 2K, H, W) per-pixel bin probabilities."""
        d = chroma.unsqueeze(2) * 2.0 - self.centres.view(1, 1, -1, 1, 1)
        h = torch.softmax(-(d * d) / (2 * self.sigma * self.sigma), dim=2)
        return h.flatten(1, 2)


def warp_by_attention(attn: torch.Tensor, values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Project reference-space values (N, C, Hr, Wr) to the input's (N, C, *size) through a similarity map."""
    n, c = values.shape[:2]
    out = torch.bmm(attn, values.flatten(2).transpose(1, 2))
    return out.transpose(1, 2).reshape(n, c, size[0], size[1])


# --- colorization ------------------------------------------------------------------------------------------------


class ColorizationNet(nn.Module):
    """U-Net of dense blocks (1/2 .. 1/16) with the similarity-warped SPHist fused after the encoder blocks.

    Inputs: restored luma (N,1,H,W), aligned reference chroma and its luma warp error (N,3,H,W), and the warped
    histograms + chroma per encoder level. Output: chroma correction, bounded to ±0.25.
    """

    def __init__(self, widths=(16, 24, 32, 48), growth: int = 8, units=(2, 3, 4, 3), hist_ch: int = 34) -> None:
        super().__init__()
        self.enc = nn.ModuleList()
        cin = 4
        for i, (w, u) in enumerate(zip(widths, units, strict=True)):
            self.enc.append(
                nn.Sequential(nn.Conv2d(cin, w, 3, stride=2, padding=1), nn.LeakyReLU(0.1), DenseBlock(w, growth, u, w))
            )
            cin = w + (hist_ch if i >= 1 else 0)
        self.fusion = nn.Sequential(
            DenseBlock(cin, growth, 6, widths[-1]), nn.Conv2d(widths[-1], widths[-1], 3, padding=1)
        )
        self.dec = nn.ModuleList()
        up_in = widths[-1]
        for i in range(len(widths) - 2, -1, -1):
            skip = widths[i] + (hist_ch if i >= 1 else 0)
            self.dec.append(
                nn.Sequential(
                    nn.Conv2d(up_in + skip, widths[i], 3, padding=1),
                    nn.LeakyReLU(0.1),
                    nn.Conv2d(widths[i], widths[i], 3, padding=1),
                    nn.LeakyReLU(0.1),
                )
            )
            up_in = widths[i]
        self.out = nn.Sequential(
            nn.Conv2d(up_in + 4, 16, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(16, 2, 3, padding=1)
        )
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, hists: list[torch.Tensor]) -> torch.Tensor:
        skips, f = [], x
        for i, block in enumerate(self.enc):
            f = block(f)
            if i >= 1:
                f = torch.cat([f, _resize(hists[i - 1], f.shape[-2:])], 1)
            skips.append(f)
        f = self.fusion(f)
        for j, block in enumerate(self.dec):
            skip = skips[len(skips) - 2 - j]
            f = block(torch.cat([_resize(f, skip.shape[-2:]), skip], 1))
        f = _resize(f, x.shape[-2:])
        return 0.25 * torch.tanh(self.out(torch.cat([f, x], 1)))


class PikFixPaper(nn.Module):
    """The three sub-networks end to end. ``restore`` and ``colorize`` are exported as separate graphs, because
    ``guided``'s DIS alignment of the reference onto the restored luma runs between them (outside the network)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.restoration = RestorationNet(cfg["width"], cfg["growth"], cfg["blocks"], cfg["units"])
        self.similarity = SimilarityNet(cfg["sim_channels"])
        self.hist = SPHist(cfg["bins"])
        self.colorization = ColorizationNet(hist_ch=2 * cfg["bins"] + 2)

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        return self.restoration(x)

    def colorize(
        self, y: torch.Tensor, aligned: torch.Tensor, ref_y: torch.Tensor, ref_c: torch.Tensor
    ) -> torch.Tensor:
        """Chroma (N,2,H,W) from restored luma, DIS-aligned reference (Cb, Cr, warp error) and the reference."""
        fi, fr = self.similarity.features(y), self.similarity.features(ref_y)
        values = torch.cat([self.hist(ref_c), ref_c], 1)
        hists = []
        for a, b in zip(fi, fr, strict=True):
            attn = self.similarity.attention(a, b)
            hists.append(warp_by_attention(attn, _resize(values, b.shape[-2:]), a.shape[-2:]))
        hists = [_resize(hists[0], (hists[0].shape[2] * 2, hists[0].shape[3] * 2)), *hists]
        return aligned[:, :2] + self.colorization(torch.cat([y, aligned], 1), hists)

    def forward(self, x, aligned, ref_y, ref_c):
        y = self.restore(x)
        return y, self.colorize(y.clamp(0, 1), aligned, ref_y, ref_c)


class LumaEncoderExport(nn.Module):
    """The similarity net's encoder as a graph for reference retrieval: luma -> its 1/8 and 1/16 feature maps."""

    def __init__(self, net: PikFixPaper) -> None:
        super().__init__()
        self.encoder = net.similarity.encoder

    def forward(self, y: torch.Tensor):
        f = self.encoder(y)
        return f[2], f[3]


# --- configs -------------------------------------------------------------------------------------------------------

# Paper: 3 levels × 3 RDBs × 4 units at 64 channels; dense blocks 6/12/24/16; ResNet34 similarity; 4 scales.
PAPER = {"arch": "paper", "width": 16, "growth": 8, "blocks": 3, "units": 4, "sim_channels": 32, "bins": 16}
FAST = {"arch": "fast", "width": 32, "growth": 16, "blocks": 2, "units": 3}
CONFIGS = {"paper": PAPER, "fast": FAST}
MULTIPLE = {"paper": 16, "fast": 16}  # input H, W must be multiples of this


def build_model(cfg: dict[str, Any]) -> nn.Module:
    """Build a Pik-Fix network from its config dict (``arch`` = paper or fast; other keys as in PAPER / FAST).

    Raises:
        ValueError: unknown arch.
    """
    arch = cfg.get("arch")
    if arch == "paper":
        return PikFixPaper(cfg)
    if arch == "fast":
        return PikFixFast(cfg["width"], cfg["growth"], cfg["blocks"], cfg["units"])
    raise ValueError(f"unknown Pik-Fix arch {arch!r}; use 'paper' or 'fast'")
