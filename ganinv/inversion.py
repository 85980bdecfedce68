"""`Inversion`: what inverting a batch of images yields — W+ codes, and whatever per-image state a method adds to
them (fitted noise maps; generator weight offsets, as PTI and HyperStyle make; the image detail the code misses,
from which HFGI conditions the generator's features; generator features kept under a mask and added to, as DHR
and SAM make; the tensors from which StyleRes and SFE rebuild the generator's features after an edit).
Every method's `invert` returns one and its `reconstruct` takes one; editing moves the codes and keeps the rest
(docs/inversion.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class Inversion:
    """`codes` [B, n_latent, style_dim]; `noise`: per-image noise maps, one [B, 1, r, r] per generator layer;
    `offsets`: generator parameter name -> [B, *parameter shape], added to that parameter for each image;
    `residual` [B, 3, H, W]: the image the code misses (input − reconstruction), for methods that feed it back;
    `features`: resolution r -> [B, 1 + C, r, r], a mask `keep` (channel 0) and a map `add`: the generator's
    features leaving resolution r become features · keep + add (DHR's feature modulation, SAM's feature latents);
    `extra`: name -> [B, ...], what only the method that made it renders (StyleRes's encoder features, SFE's fused
    features, and the codes as inverted, `origin`, which an edit moves `codes` away from)."""

    codes: Tensor
    noise: list[Tensor] | None = None
    offsets: dict[str, Tensor] | None = field(default=None)
    residual: Tensor | None = None
    features: dict[int, Tensor] | None = field(default=None)
    extra: dict[str, Tensor] | None = field(default=None)

    def __post_init__(self):
        if self.codes.ndim != 3:
            raise ValueError(f"Inversion.codes must be [B, n_latent, style_dim], got {tuple(self.codes.shape)}")
        b = len(self.codes)
        if bad := [f"noise[{i}] {tuple(n.shape)}" for i, n in enumerate(self.noise or [])
                   if n.ndim != 4 or len(n) not in (1, b)]:
            raise ValueError(f"Inversion.noise maps must be [B or 1, 1, r, r] for B = {b} codes: {bad[0]}")
        parts = {**{f"offsets[{k!r}]": v for k, v in (self.offsets or {}).items()},
                 **{f"features[{k!r}]": v for k, v in (self.features or {}).items()},
                 **{f"extra[{k!r}]": v for k, v in (self.extra or {}).items()},
                 **({} if self.residual is None else {"residual": self.residual})}
        if bad := [f"{k} {tuple(v.shape)}" for k, v in parts.items() if len(v) != b]:
            raise ValueError(f"Inversion parts must hold one row per image (B = {b}): {bad[0]}")

    def __len__(self) -> int:
        return len(self.codes)

    def map(self, fn: Callable[[Tensor], Tensor]) -> Inversion:
        """`fn` of every tensor it holds (e.g. a gather over processes)."""
        return Inversion(fn(self.codes), None if self.noise is None else [fn(n) for n in self.noise],
                         None if self.offsets is None else {k: fn(v) for k, v in self.offsets.items()},
                         None if self.residual is None else fn(self.residual),
                         None if self.features is None else {k: fn(v) for k, v in self.features.items()},
                         None if self.extra is None else {k: fn(v) for k, v in self.extra.items()})

    def pair(self, other: Inversion, fn: Callable[[Tensor, Tensor], Tensor]) -> Inversion:
        """`fn` of each part and the same part of `other` (a part either lacks is dropped)."""
        def both(x, y):
            return None if x is None or y is None else fn(x, y)

        def parts(x, y):
            return None if x is None or y is None else {k: fn(v, y[k]) for k, v in x.items()}

        noise = None if self.noise is None or other.noise is None else [
            fn(x, y) for x, y in zip(self.noise, other.noise)]
        return Inversion(fn(self.codes, other.codes), noise, parts(self.offsets, other.offsets),
                         both(self.residual, other.residual), parts(self.features, other.features),
                         parts(self.extra, other.extra))

    def __getitem__(self, index: int | slice | Tensor | Sequence[int]) -> Inversion:
        """The inversions of some images (an int keeps its batch dimension)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return self.map(lambda t: t[index])

    def to(self, *args, **kwargs) -> Inversion:
        return self.map(lambda t: t.to(*args, **kwargs))

    def detach(self) -> Inversion:
        return self.map(Tensor.detach)

    def cpu(self) -> Inversion:
        return self.map(Tensor.cpu)

    def replace(self, **changes) -> Inversion:
        """The same inversion with some fields replaced (e.g. edited `codes`)."""
        return dataclasses.replace(self, **changes)

    @property
    def refined(self) -> bool:
        """Whether the images carry state beyond their codes."""
        return (self.noise is not None or bool(self.offsets) or self.residual is not None or bool(self.features)
                or bool(self.extra))

    @staticmethod
    def cat(parts: Sequence[Inversion]) -> Inversion:
        """One inversion of every part's images, in order."""
        first = parts[0]
        return Inversion(
            torch.cat([p.codes for p in parts]),
            None if first.noise is None else [torch.cat(maps) for maps in zip(*(p.noise for p in parts))],
            None if first.offsets is None else {k: torch.cat([p.offsets[k] for p in parts]) for k in first.offsets},
            None if first.residual is None else torch.cat([p.residual for p in parts]),
            None if first.features is None else {k: torch.cat([p.features[k] for p in parts]) for k in first.features},
            None if first.extra is None else {k: torch.cat([p.extra[k] for p in parts]) for k in first.extra})

    def state(self) -> dict:
        """Plain tensors for `torch.save` (read back with `Inversion.from_state`)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_state(cls, state: dict) -> Inversion:
        return cls(**state)

    def storage_bytes(self) -> int:
        """Bytes this inversion holds per image."""
        tensors = [self.codes, *(self.noise or []), *(self.offsets or {}).values(), *(self.features or {}).values(),
                   *(self.extra or {}).values(),
                   *([self.residual] if self.residual is not None else [])]
        return sum(t.numel() * t.element_size() for t in tensors) // max(len(self), 1)


def as_inversion(codes: Tensor | Inversion, noise: list[Tensor] | None = None) -> Inversion:
    """An `Inversion` of codes (with `noise`, if given), or the inversion itself."""
    if isinstance(codes, Inversion):
        return codes if noise is None else codes.replace(noise=noise)
    return Inversion(codes, noise)
