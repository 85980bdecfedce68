"""Image grids a reader can follow: tiles in [-1, 1] with a label above every column and before every row."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

MIN_TILE = 128  # small tiles are enlarged (nearest) so that the labels fit their columns


def labelled_grid(tiles: torch.Tensor, columns: Sequence[str], rows: Sequence[str], pad: int = 2) -> Image.Image:
    """`tiles` [rows·cols, 3, H, W] in row order as one RGB image, `columns` written above the columns and `rows`
    to the left of the rows."""
    n_cols, n_rows = len(columns), len(rows)
    if len(tiles) != n_cols * n_rows:
        raise ValueError(f"{len(tiles)} tiles for {n_rows} rows x {n_cols} columns")
    scale = max(1, -(-MIN_TILE // tiles.shape[-1]))
    t = tiles.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    t = t.repeat_interleave(scale, -1).repeat_interleave(scale, -2)
    h, w = t.shape[-2:]
    from matplotlib import font_manager  # DejaVu Sans ships with matplotlib and has α, ± and →

    font = ImageFont.truetype(font_manager.findfont("DejaVu Sans"), 13)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = max(int(measure.textlength(r, font=font)) for r in rows) + 12
    top = 22
    page = Image.new("RGB", (left + n_cols * (w + pad), top + n_rows * (h + pad)), "white")
    draw = ImageDraw.Draw(page)
    for j, label in enumerate(columns):
        x = left + j * (w + pad) + (w - measure.textlength(label, font=font)) / 2
        draw.text((x, 4), label, fill="black", font=font)
    for i, label in enumerate(rows):
        y = top + i * (h + pad)
        draw.text((6, y + h / 2 - 7), label, fill="black", font=font)
        for j in range(n_cols):
            page.paste(Image.fromarray(t[i * n_cols + j].permute(1, 2, 0).numpy()), (left + j * (w + pad), y))
    return page
