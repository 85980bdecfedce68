"""StyleGAN2 generator and discriminator with rosinality's forward API and state-dict keys."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .layers import (
    DEFAULT_BLUR,
    ConstantInput,
    ConvLayer,
    EqualLinear,
    PixelNorm,
    ResBlock,
    StyledConv,
    ToRGB,
)


def channel_table(size: int, channel_multiplier: int = 2, channel_max: int = 512,
                  channels: Mapping[int, int] | None = None) -> dict[int, int]:
    """Feature maps per resolution: the config-f table capped at `channel_max`, or an explicit table."""
    if channels is not None:
        table = {int(r): int(c) for r, c in channels.items()}
        missing = [2**i for i in range(2, int(math.log2(size)) + 1) if 2**i not in table]
        if missing:
            raise ValueError(f"the channel table has no entry for resolutions {missing}")
        return table
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16, 2048: 8}
    return {r: min(c * (channel_multiplier if r >= 64 else 1), channel_max) for r, c in base.items() if r <= size}


def _check_size(size: int) -> int:
    log_size = int(math.log2(size)) if size > 0 else 0
    if size < 4 or 2**log_size != size:
        raise ValueError(f"StyleGAN2 size must be a power of two >= 4, got {size}")
    return log_size


class Generator(nn.Module):
    """StyleGAN2 generator (config-f layout): mapping network + synthesis network with skip ToRGB outputs.

    `forward(styles, ...)` takes a list of one or two z (or w with `input_is_latent=True`), each [B, style_dim],
    or a W+ code [B, n_latent, style_dim], and returns `(image, latent or None)` like the reference code.
    `latent_avg` is a non-persistent buffer (the average w) set by the checkpoint loader.
    """

    def __init__(self, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 channel_max: int = 512, blur_kernel: Sequence[float] = DEFAULT_BLUR, lr_mlp: float = 0.01,
                 channels: Mapping[int, int] | None = None, conv_clamp: float | None = None):
        super().__init__()
        self.size, self.style_dim, self.n_mlp = size, style_dim, n_mlp
        self.log_size = _check_size(size)
        self.channels = channel_table(size, channel_multiplier, channel_max, channels)
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.n_latent = self.log_size * 2 - 2

        self.style = nn.Sequential(
            PixelNorm(),
            *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu") for _ in range(n_mlp)],
        )
        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(self.channels[4], self.channels[4], 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(self.channels[4], style_dim, upsample=False)

        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        self.noises = nn.Module()
        for i in range(self.num_layers):
            res = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))
        in_ch = self.channels[4]
        for i in range(3, self.log_size + 1):
            out_ch = self.channels[2**i]
            self.convs.append(StyledConv(in_ch, out_ch, 3, style_dim, upsample=True, blur_kernel=blur_kernel))
            self.convs.append(StyledConv(out_ch, out_ch, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_ch, style_dim))
            in_ch = out_ch
        self.register_buffer("latent_avg", None, persistent=False)
        self.set_conv_clamp(conv_clamp)

    @property
    def config(self) -> dict:
        """Constructor arguments that rebuild this architecture (explicit channel table included)."""
        return {"size": self.size, "style_dim": self.style_dim, "n_mlp": self.n_mlp,
                "channels": dict(self.channels), "lr_mlp": self.style[1].lr_mul, "conv_clamp": self.conv_clamp}

    def set_conv_clamp(self, conv_clamp: float | None) -> None:
        """Clamp every synthesis layer and ToRGB output to +-conv_clamp (NVIDIA networks use 256)."""
        self.conv_clamp = conv_clamp
        for m in self.modules():
            if isinstance(m, (StyledConv, ToRGB)):
                m.conv_clamp = conv_clamp

    def make_noise(self) -> list[torch.Tensor]:
        device = self.input.input.device
        noises = [torch.randn(1, 1, 4, 4, device=device)]
        for i in range(3, self.log_size + 1):
            noises += [torch.randn(1, 1, 2**i, 2**i, device=device) for _ in range(2)]
        return noises

    @torch.no_grad()
    def mean_latent(self, n_latent: int) -> torch.Tensor:
        """Average w over `n_latent` random z, shape [1, style_dim]."""
        z = torch.randn(n_latent, self.style_dim, device=self.input.input.device)
        return self.style(z).mean(0, keepdim=True)

    def get_latent(self, z: torch.Tensor) -> torch.Tensor:
        return self.style(z)

    def truncate(self, w: torch.Tensor, psi: float, latent: torch.Tensor | None = None,
                 cutoff: int | None = None) -> torch.Tensor:
        """`latent + psi * (w - latent)`; with `cutoff`, only the first `cutoff` layers of a W+ code."""
        latent = self.latent_avg if latent is None else latent
        if latent is None:
            raise ValueError("truncation needs `truncation_latent` or a generator with latent_avg set")
        t = latent + psi * (w - latent)
        if cutoff is None:
            return t
        return torch.cat([t[:, :cutoff], w[:, cutoff:]], dim=1)

    def forward(self, styles: Sequence[torch.Tensor] | torch.Tensor, return_latents: bool = False,
                inject_index: int | None = None, truncation: float = 1, truncation_latent: torch.Tensor | None = None,
                input_is_latent: bool = False, noise: Sequence[torch.Tensor | None] | None = None,
                randomize_noise: bool = True, offsets: Mapping[str, torch.Tensor] | None = None,
                conditions: Mapping[int, tuple[torch.Tensor, torch.Tensor]] | None = None,
                features: Mapping[int, torch.Tensor] | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """rosinality's forward, plus three hooks that change nothing when unused: `offsets` (parameter name ->
        [B, *shape], added to that parameter for each image: per-image generators, as PTI and HyperStyle make),
        `conditions` (resolution -> (scale, shift) [B, C, r, r]: the features after that resolution's upsampling
        convolution become `features · (1 + scale) + shift`, HFGI's consultation fusion) and `features`
        (resolution -> [B, 1 + C, r, r], a mask `keep` and a map `add`: the features leaving that resolution's
        block, after its ToRGB, become `features · keep + add` — DHR's feature modulation (keep the in-domain
        mask, add the free map on the rest), SAM's feature latents (keep 1, add the residual under its mask))."""
        if offsets:
            return self._per_image(offsets, styles, return_latents, inject_index, truncation, truncation_latent,
                                   input_is_latent, noise, randomize_noise, conditions, features)
        if isinstance(styles, torch.Tensor):
            styles = [styles]
        if bad := [tuple(s.shape) for s in styles if s.ndim not in (2, 3) or s.shape[-1] != self.style_dim]:
            raise ValueError(f"Generator styles must be [B, {self.style_dim}] or [B, n_latent, {self.style_dim}], "
                             f"got {bad[0]}")
        if not input_is_latent:
            styles = [self.style(s) for s in styles]
        if noise is None:
            noise = [None] * self.num_layers if randomize_noise else [
                getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        if truncation < 1:
            styles = [self.truncate(s, truncation, truncation_latent) for s in styles]
        latent = self._broadcast(styles, inject_index)

        out = self.conv1(self.input(latent), latent[:, 0], noise=noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for conv_up, conv, n1, n2, to_rgb in zip(self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2],
                                                  self.to_rgbs):
            if features and out.shape[-1] in features:
                keep_add = features[out.shape[-1]]
                out = out * keep_add[:, :1] + keep_add[:, 1:]
            out = conv_up(out, latent[:, i], noise=n1)
            if conditions and out.shape[-1] in conditions:
                scale, shift = conditions[out.shape[-1]]
                out = out * (1 + scale) + shift
            out = conv(out, latent[:, i + 1], noise=n2)
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        return skip, (latent if return_latents else None)

    def features_at(self, codes: torch.Tensor, resolution: int, point: str = "block",
                    noise: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """The generator's own features of W+ `codes` at `resolution` (the stored noise, or `noise`), computed only
        that far: `point="block"` where the `features` hook of `forward` changes them (leaving that resolution's
        block), `"up"` where its `conditions` hook does (after the upsampling convolution)."""
        if point not in ("block", "up"):
            raise ValueError(f"point={point!r} is not one of block, up")
        if resolution not in self.channels or (point == "up" and resolution == 4):
            raise ValueError(f"this {self.size}-px generator has no {point} features at {resolution} px")
        noise = [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)] if noise is None else noise
        latent = self._broadcast([codes], None)
        out = self.conv1(self.input(latent), latent[:, 0], noise=noise[0])
        i = 1
        for conv_up, conv, n1, n2 in zip(self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2]):
            if point == "block" and out.shape[-1] == resolution:
                return out
            out = conv_up(out, latent[:, i], noise=n1)
            if point == "up" and out.shape[-1] == resolution:
                return out
            out = conv(out, latent[:, i + 1], noise=n2)
            i += 2
        return out  # the last block's

    def _per_image(self, offsets, styles, return_latents, inject_index, truncation, truncation_latent,
                   input_is_latent, noise, randomize_noise, conditions, features
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`forward` with each image's own parameters (`offsets` added), vectorised over the batch (torch.func)."""
        from torch.func import functional_call, vmap

        params = dict(self.named_parameters())
        if unknown := [k for k in offsets if k not in params]:
            raise KeyError(f"offsets for {unknown[0]!r}: not a parameter of this generator")
        styles = [styles] if isinstance(styles, torch.Tensor) else list(styles)
        maps = None if noise is None else [n if n is None or n.shape[0] > 1 else n.expand(len(styles[0]), *n.shape[1:])
                                           for n in noise]
        cond = None if not conditions else {r: tuple(c) for r, c in conditions.items()}

        batched = {"off": dict(offsets), "styles": styles}  # vmapped over dim 0; no None leaves
        if maps is not None:
            batched["noise"] = [torch.zeros(len(styles[0])) if n is None else n for n in maps]
        if cond is not None:
            batched["cond"] = cond
        if features:
            batched["features"] = dict(features)

        def one(b):
            own = {k: params[k] + v for k, v in b["off"].items()}
            maps_b = None if maps is None else [None if n is None else m[None] for n, m in zip(maps, b["noise"])]
            kwargs = {"return_latents": return_latents, "inject_index": inject_index, "truncation": truncation,
                      "truncation_latent": truncation_latent, "input_is_latent": input_is_latent,
                      "randomize_noise": randomize_noise, "noise": maps_b,
                      "conditions": None if cond is None else {
                          r: (s[None], t[None]) for r, (s, t) in b["cond"].items()},
                      "features": {r: f[None] for r, f in b["features"].items()} if "features" in b else None}
            image, latent = functional_call(self, own, ([s[None] for s in b["styles"]],), kwargs)
            return image[0], (latent[0] if latent is not None else image.new_zeros(()))

        image, latent = vmap(one, randomness="different")(batched)
        return image, (latent if return_latents else None)

    def _broadcast(self, styles: Sequence[torch.Tensor], inject_index: int | None) -> torch.Tensor:
        """One code per layer: W broadcast, W+ as is, or two codes mixed at `inject_index`."""
        if len(styles) < 2:
            s = styles[0]
            if s.ndim == 3:
                if s.shape[1] != self.n_latent:
                    raise ValueError(f"W+ code has {s.shape[1]} layers, this generator needs {self.n_latent}")
                return s
            return s.unsqueeze(1).repeat(1, self.n_latent, 1)
        if inject_index is None:
            inject_index = random.randint(1, self.n_latent - 1)
        first = styles[0].unsqueeze(1).repeat(1, inject_index, 1)
        second = styles[1].unsqueeze(1).repeat(1, self.n_latent - inject_index, 1)
        return torch.cat([first, second], 1)


class Discriminator(nn.Module):
    """StyleGAN2 residual discriminator with minibatch standard deviation (rosinality key names)."""

    def __init__(self, size: int, channel_multiplier: int = 2, channel_max: int = 512,
                 blur_kernel: Sequence[float] = DEFAULT_BLUR, channels: Mapping[int, int] | None = None,
                 stddev_group: int = 4):
        super().__init__()
        log_size = _check_size(size)
        ch = channel_table(size, channel_multiplier, channel_max, channels)
        convs: list[nn.Module] = [ConvLayer(3, ch[size], 1)]
        in_ch = ch[size]
        for i in range(log_size, 2, -1):
            convs.append(ResBlock(in_ch, ch[2 ** (i - 1)], blur_kernel))
            in_ch = ch[2 ** (i - 1)]
        self.convs = nn.Sequential(*convs)
        self.stddev_group, self.stddev_feat = stddev_group, 1
        self.final_conv = ConvLayer(in_ch + 1, ch[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch[4] * 4 * 4, ch[4], activation="fused_lrelu"), EqualLinear(ch[4], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs(x)
        out = torch.cat([out, self._minibatch_stddev(out)], 1)
        out = self.final_conv(out)
        return self.final_linear(out.flatten(1))

    def _minibatch_stddev(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        # The largest group size <= stddev_group that divides the batch (the reference needs exact division).
        group = next(g for g in range(min(b, self.stddev_group), 0, -1) if b % g == 0)
        y = x.view(group, -1, self.stddev_feat, c // self.stddev_feat, h, w)
        y = torch.sqrt(y.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
        return y.repeat(group, 1, h, w)


__all__ = ["Generator", "Discriminator", "channel_table"]
