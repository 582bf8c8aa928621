"""CoColor networks (Yang, Chen and Yang, "Cooperative Colorization", ACM MM 2023), at CPU-trainable widths.

- ``paper`` config: the paper's four generators, each a U-Net (the paper uses "U-Net256" on 256×256 images;
  here 4 levels and a base width of 12, run at 256 px on the long side): the bilateral domain translators G_N2G
  (NIR→grey) and G_G2N (grey→NIR), the NIR colorizer F_N and the grey colorizer F_G; and PatchGAN
  discriminators at image level (D_N^img, D_G^img) and on the colorizers' outputs (D_N^feat, D_G^feat).
  Inference uses F_N alone (the paper's N2C output).
- ``fast`` config: two small U-Nets at the colour camera's resolution that predict per-pixel affine
  NIR→YCbCr coefficients: ``ref`` corrects the classical local fit from the NIR and the aligned reference,
  ``prior`` predicts them from the NIR alone. The coefficients are applied to the full-resolution NIR outside
  the network (engines/cocolor.py), so the networks see 1/16 of the pixels.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

FAST_REF_IN = 11  # kept in step with streamfuse.engines.cocolor.REF_CHANNELS
FAST_PRIOR_IN = 2  # ... and PRIOR_CHANNELS
COEFFS = 6  # a (Y, Cb, Cr) and b (Y, Cb, Cr)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.1)
    )


class UNet(nn.Module):
    """A U-Net: ``levels`` stride-2 downsamplings, channel widths doubling, skip connections, bilinear upsampling."""

    def __init__(self, cin: int, cout: int, width: int = 16, levels: int = 3, out_act: str = "none") -> None:
        super().__init__()
        widths = [width * 2**i for i in range(levels + 1)]
        self.inc = _block(cin, widths[0])
        self.down = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(widths[i], widths[i], 3, stride=2, padding=1),
                nn.LeakyReLU(0.1),
                _block(widths[i], widths[i + 1]),
            )
            for i in range(levels)
        )
        self.up = nn.ModuleList(_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(levels)))
        self.out = nn.Conv2d(widths[0], cout, 3, padding=1)
        self.out_act = out_act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.up:
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = up(torch.cat([y, skip], 1))
        y = self.out(y)
        return torch.sigmoid(y) if self.out_act == "sigmoid" else y


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al.): a few stride-2 convolutions, one realness score per patch."""

    def __init__(self, cin: int, width: int = 16, layers: int = 3) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        c = cin
        for i in range(layers):
            mods += [nn.Conv2d(c, width * 2**i, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c = width * 2**i
        mods.append(nn.Conv2d(c, 1, 3, padding=1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CoColorFast(nn.Module):
    """Fast config: ``ref`` and ``prior`` U-Nets, both predicting coefficient corrections (zero-initialised)."""

    def __init__(self, width: int = 16, levels: int = 3, prior_width: int = 24, prior_levels: int = 4) -> None:
        super().__init__()
        self.ref = UNet(FAST_REF_IN, COEFFS, width, levels)
        self.prior = UNet(FAST_PRIOR_IN, COEFFS, prior_width, prior_levels)
        for net in (self.ref, self.prior):  # both start from their baseline (local fit; NIR as grey)
            nn.init.zeros_(net.out.weight)
            nn.init.zeros_(net.out.bias)


class CoColorPaper(nn.Module):
    """Paper config: G_N2G, G_G2N, F_N, F_G and the four discriminators."""

    def __init__(self, width: int = 16, levels: int = 4, disc_width: int = 16) -> None:
        super().__init__()
        self.g_n2g = UNet(1, 1, width, levels, "sigmoid")
        self.g_g2n = UNet(1, 1, width, levels, "sigmoid")
        self.f_n = UNet(1, 3, width, levels, "sigmoid")
        self.f_g = UNet(1, 3, width, levels, "sigmoid")
        self.d_n_img = PatchDiscriminator(1, disc_width)
        self.d_g_img = PatchDiscriminator(1, disc_width)
        self.d_n_feat = PatchDiscriminator(3, disc_width)
        self.d_g_feat = PatchDiscriminator(3, disc_width)

    def forward(self, nir: torch.Tensor) -> torch.Tensor:
        """Inference: N2C, the NIR colorizer on the NIR frame (RGB 0..1)."""
        return self.f_n(nir)


class _Graph(nn.Module):
    """Export wrapper: one sub-network as a graph."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


CONFIGS: dict[str, dict[str, Any]] = {
    "cocolor": {"arch": "fast", "width": 8, "levels": 3, "prior_width": 24, "prior_levels": 4},
    "cocolor-paper": {"arch": "paper", "width": 12, "levels": 4, "disc_width": 12, "work_side": 256, "multiple": 16},
}


def build_model(config: dict[str, Any] | str) -> nn.Module:
    """Build a CoColor network from a config dict (or a CONFIGS name).

    Raises:
        ValueError: unknown config name or ``arch``.
    """
    cfg = CONFIGS[config] if isinstance(config, str) else dict(config)
    if cfg.get("arch") == "fast":
        return CoColorFast(cfg["width"], cfg["levels"], cfg["prior_width"], cfg["prior_levels"])
    if cfg.get("arch") == "paper":
        return CoColorPaper(cfg.get("width", 16), cfg.get("levels", 4), cfg.get("disc_width", 16))
    raise ValueError(f"unknown CoColor config {config!r}; use one of {', '.join(CONFIGS)}")


def export_graphs(net: nn.Module) -> dict[str, tuple[nn.Module, torch.Tensor, str, str]]:
    """The graphs to export: file stem -> (module, example input, input name, output name)."""
    if isinstance(net, CoColorFast):
        return {
            "model": (_Graph(net.ref), torch.zeros(1, FAST_REF_IN, 48, 64), "features", "coeffs"),
            "prior": (_Graph(net.prior), torch.zeros(1, FAST_PRIOR_IN, 48, 64), "features", "coeffs"),
        }
    return {"model": (_Graph(net.f_n), torch.rand(1, 1, 64, 96), "nir", "rgb")}
