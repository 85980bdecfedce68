"""IR / IR-SE ResNet backbones (ArcFace's "improved residual" units) with the official key names.

The stem is `input_layer` (3x3 conv, BN, PReLU) and the units are `body.{i}` with `shortcut_layer` and
`res_layer`, exactly as pSp / e4e / ReStyle store them, so their checkpoints load with `strict=True`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# Units per stage for each depth (ArcFace / InsightFace tables).
UNITS = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}
WIDTHS = (64, 128, 256, 512)
MODES = ("ir", "ir_se")


def check_input_size(encoder: nn.Module, x: torch.Tensor) -> None:
    """Every encoder's one rule: inputs are exactly `input_size` square, larger or smaller alike; callers resize."""
    s, (h, w) = encoder.input_size, x.shape[-2:]
    if (h, w) != (s, s):
        raise ValueError(f"{type(encoder).__name__} takes {s}x{s} inputs (input_size={s}), got {h}x{w}; resize the "
                         "images first (ganinv.data.transforms.resize) or build the encoder with the input_size "
                         "of your images.")


class SEModule(nn.Module):
    """Squeeze-and-excitation: channel gates from the global average, bias-free 1x1 convs."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)  # narrow test widths (< 16) keep one hidden channel
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))


class BottleneckIR(nn.Module):
    """IR unit: BN -> conv3x3 -> PReLU -> conv3x3 (stride here) -> BN [-> SE], plus a shortcut.

    The shortcut subsamples with `MaxPool2d(1, stride)` when the width is kept, else a strided 1x1 conv + BN.
    """

    def __init__(self, in_ch: int, depth: int, stride: int, se: bool = True):
        super().__init__()
        if in_ch == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_ch, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        layers = [nn.BatchNorm2d(in_ch), nn.Conv2d(in_ch, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
                  nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth)]
        if se:
            layers.append(SEModule(depth, 16))
        self.res_layer = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


def check_arch(num_layers: int, mode: str, widths: Sequence[int]) -> None:
    if num_layers not in UNITS:
        raise ValueError(f"num_layers must be one of {sorted(UNITS)}, got {num_layers}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if len(widths) != 4:
        raise ValueError(f"widths must list the 4 stage widths, got {tuple(widths)}")


def make_input_layer(input_nc: int, width: int) -> nn.Sequential:
    """The stem: 3x3 conv (no bias), BN, PReLU at full resolution."""
    return nn.Sequential(nn.Conv2d(input_nc, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.PReLU(width))


def make_body(num_layers: int = 50, mode: str = "ir_se", widths: Sequence[int] = WIDTHS) -> nn.Sequential:
    """All units of the four stages; the first unit of every stage has stride 2 (256 -> 16 px for 4 stages)."""
    check_arch(num_layers, mode, widths)
    units, in_ch = [], widths[0]
    for n, depth in zip(UNITS[num_layers], widths):
        for k in range(n):
            units.append(BottleneckIR(in_ch, depth, 2 if k == 0 else 1, se=mode == "ir_se"))
            in_ch = depth
    return nn.Sequential(*units)


def stage_ends(num_layers: int) -> list[int]:
    """Index of the last unit of each stage (for IR-50: 2, 6, 20, 23 - the pSp FPN taps are the last three)."""
    ends, total = [], 0
    for n in UNITS[num_layers]:
        total += n
        ends.append(total - 1)
    return ends


def infer_ir_arch(sd: dict[str, torch.Tensor]) -> dict:
    """num_layers, mode, input_nc and stage widths of an IR backbone state dict (keys without prefix)."""
    n_units = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("body."))
    by_units = {sum(v): k for k, v in UNITS.items()}
    if n_units not in by_units:
        raise KeyError(f"body has {n_units} units; IR-50/100/152 have {sorted(by_units)}")
    num_layers = by_units[n_units]
    starts = [0, *[e + 1 for e in stage_ends(num_layers)[:-1]]]
    widths = tuple(int(sd[f"body.{s}.res_layer.1.weight"].shape[0]) for s in starts)
    stem = sd["input_layer.0.weight"]
    if stem.shape[0] != widths[0]:
        raise KeyError(f"stem width {stem.shape[0]} differs from the first stage width {widths[0]}")
    return {"num_layers": num_layers, "mode": "ir_se" if "body.0.res_layer.5.fc1.weight" in sd else "ir",
            "input_nc": int(stem.shape[1]), "widths": widths}
