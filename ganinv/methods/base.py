"""`InversionModule`: what every inversion method shares, so that a method file holds only its paper.

A frozen generator (its weights travel in every checkpoint, checked by a content hash), its average code, an
encoder, the image loss terms with their weights (`conf/loss/*.yaml`), the public inference API (`invert`,
`reconstruct`), distortion on a fixed validation set, a NaN guard, and training counted in iterations.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from itertools import chain
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from ganinv.checkpoints import state_hash
from ganinv.data.transforms import PROTOCOL_SIZE, resize
from ganinv.distributed import batch_rows, keyed_generator, rank_and_world, seed
from ganinv.errors import ConfigError
from ganinv.inversion import Inversion, as_inversion
from ganinv.losses import NormalizedStyleSpace
from ganinv.stylegan2.layers import batched_modconv


class TrainingDiverged(RuntimeError):
    """A loss term became NaN or infinite; the message names the iteration and the term."""


class IterationModule(pl.LightningModule):
    """Training counted in iterations (one per batch) up to `max_iterations`, kept in the `iteration` buffer (so
    checkpoints carry it); a run resumed after its last iteration trains nothing more.

    Under DDP: the parameters and buffers under `ddp_ignore` (frozen networks, per-rank state) stay out of DDP's
    gradient buckets and buffer broadcast; `find_unused_parameters` says whether DDP must search each backward's
    graph (needed where one backward reaches only some parameters: two players, progressive heads); randomness
    comes from `keyed` generators and `sample_normal` (or from the global RNG, which every rank seeds alike, once
    re-seeded by `keyed`)."""

    ddp_ignore: tuple[str, ...] = ()

    def __init__(self, max_iterations: int):
        super().__init__()
        self.max_iterations = int(max_iterations)
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))
        self._done = (None, -1, 0)  # (the buffer, its version, its value): reading a GPU buffer waits for the GPU

    def iterations_done(self) -> int:
        """Iterations done: the `iteration` buffer, read again only when it changed other than by
        `finish_iteration` (a load, a move, an assignment), so counting needs no device sync."""
        buffer, version, value = self._done
        if buffer is not self.iteration or version != self.iteration._version:
            value = int(self.iteration)
            self._done = (self.iteration, self.iteration._version, value)
        return value

    @property
    def find_unused_parameters(self) -> bool:
        return not self.automatic_optimization

    def setup(self, stage: str) -> None:
        from torch.nn.parallel import DistributedDataParallel

        names = [n for n, _ in chain(self.named_parameters(), self.named_buffers()) if n.startswith(self.ddp_ignore)]
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(self, names)

    def keyed(self, purpose: str) -> torch.Generator:
        """A generator for this process's own random choices at this iteration, keyed by (seed, rank, iteration,
        purpose): ranks draw differently, a resumed run draws what an uninterrupted one would."""
        return keyed_generator(seed(), rank_and_world()[0], self.iterations_done(), purpose)

    def sample_normal(self, purpose: str, n: int, dim: int) -> torch.Tensor:
        """`n` rows of N(0, I) for this process: its rows (`batch_rows`) of one draw for the global batch
        (n × world rows, keyed by seed, iteration and purpose), so ranks draw different samples and N processes
        together draw what one process draws for the same global batch."""
        key = keyed_generator(seed(), self.iterations_done(), purpose)
        rows = torch.randn(n * rank_and_world()[1], dim, generator=key)
        return batch_rows(rows).to(self.device, self.dtype)

    def synced_parameters(self) -> list[torch.Tensor]:
        """The parameters DDP keeps equal on every rank (all but those under `ddp_ignore`)."""
        return [p for n, p in self.named_parameters() if not n.startswith(self.ddp_ignore)]

    def local_gradients(self, keep: bool = True) -> AbstractContextManager:
        """While `keep`: backward passes add to this process's gradients without DDP's all-reduce (the next synced
        backward reduces the sum), as gradient accumulation does."""
        trainer = self._trainer  # None outside a Trainer (a benchmark's bare steps)
        block = getattr(trainer.strategy, "block_backward_sync", None) if keep and trainer is not None else None
        return block() if block is not None else nullcontext()

    def on_train_batch_start(self, batch, batch_idx):
        if self.iterations_done() >= self.max_iterations:
            self.trainer.should_stop = True
            return -1
        return None

    def finish_iteration(self) -> None:
        done = self.iterations_done() + 1
        self.iteration += 1
        self._done = (self.iteration, self.iteration._version, done)
        if done >= self.max_iterations:
            self.trainer.should_stop = True


class FrozenNets(nn.Module):
    """Loss networks: frozen, always in eval mode, and left out of state dicts (they are rebuilt from config)."""

    def train(self, mode: bool = True) -> FrozenNets:
        return super().train(False)

    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        return {} if destination is None else destination


class InversionModule(IterationModule):
    """image -> code (W+) -> frozen StyleGAN2 -> reconstruction; subclasses add `build_encoder`, `encode` and
    their training step.

    `loss` is a `conf/loss/*.yaml` dict whose `weights` name every term the method computes (`loss_terms()`; 0
    switches a term off) and nothing else; `loss_nets` are the networks and objects it names, built by the caller
    (`build_loss_nets`): `perceptual` and `identity` (needed when their weight is > 0), e4e's and In-Domain's `r1`.
    No `loss` at all makes an inference-only module. `optimizer` is a Hydra `_partial_` config.
    `start_from: avg | zero`: codes are offsets from the generator's average code, or absolute.
    """

    TERMS: tuple[str, ...] = ("l2", "perceptual", "id")
    # Terms any encoder may add by weighing them (absent: 0): LSAP's alignment to the synthetic style direction.
    OPTIONAL_TERMS: tuple[str, ...] = ("sncd",)
    ddp_ignore = ("generator.", "nets.")  # frozen: no gradients to reduce, nothing to broadcast

    def __init__(self, generator: nn.Module, encoder: Mapping[str, Any] | nn.Module | None = None,
                 loss: Mapping[str, Any] | None = None, optimizer: Mapping[str, Any] | None = None,
                 input_nc: int = 3, input_size: int = PROTOCOL_SIZE, start_from: str = "avg",
                 max_iterations: int = 100_000, generator_hash: str | None = None,
                 loss_nets: Mapping[str, Any] | None = None, anchor_samples: int = 100_000):
        super().__init__(max_iterations)
        if start_from not in ("avg", "zero"):
            raise ValueError(f"start_from={start_from!r} is not one of avg, zero")
        hash_now = state_hash(generator)
        if generator_hash is not None and generator_hash != hash_now:
            raise ValueError("the generator does not match the one this module was trained with (content hash "
                             f"{hash_now[:12]} vs {generator_hash[:12]}); pass the generator the run used.")
        skip = ["generator", "loss_nets", "base", *(["encoder"] if isinstance(encoder, nn.Module) else [])]
        self.save_hyperparameters(ignore=skip)
        self.hparams["generator_hash"] = hash_now
        self.hparams["generator_config"] = {k: v for k, v in generator.config.items() if v is not None}
        self.generator = generator.eval().requires_grad_(False)
        avg = generator.latent_avg.detach().float().reshape(-1)
        self.register_buffer("latent_avg", avg.expand(generator.n_latent, -1).clone())  # [n_latent, style_dim]
        self.n_latent, self.style_dim = generator.n_latent, generator.style_dim
        self.input_nc, self.input_size, self.start_from = int(input_nc), int(input_size), start_from
        optional = tuple(t for t in self.OPTIONAL_TERMS if t not in self.loss_terms()) if self.has_encoder else ()
        self.weights = check_weights(type(self).__name__, self.loss_terms(), loss, optional)
        # LSAP's normalised style space, for its alignment term (anchors from `anchor_samples` mapped z)
        self.style_space = NormalizedStyleSpace(generator, int(anchor_samples)) \
            if self.weights.get("sncd", 0) > 0 else None
        self.loss_objects = dict(loss_nets or {})
        self.nets = FrozenNets()
        for name, key in (("perceptual", "perceptual"), ("identity", "id")):
            if self.weights.get(key, 0) > 0:
                if not isinstance(self.loss_objects.get(name), nn.Module):
                    raise ConfigError(f"loss.weights.{key} is {self.weights[key]} but no {name} network was given: "
                                     f"set loss/{name}=<net>, or weight 0 (loss_nets: build_loss_nets(loss))")
                setattr(self.nets, name, self.loss_objects[name])
        self.optimizer_cfg = dict(optimizer or {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-4})
        if isinstance(encoder, nn.Module):
            self.encoder = encoder
        else:  # latent optimisation has none
            self.encoder = self.build_encoder(dict(encoder or {})) if self.has_encoder else None
        self.register_load_state_dict_post_hook(_ignore_frozen_nets)

    def loss_terms(self) -> tuple[str, ...]:
        """The loss terms this method computes, each of which `loss.weights` must name."""
        return self.TERMS

    def label(self) -> str:
        """What a record calls this method by default: the paper's name and what changes it (space, variant)."""
        return type(self).__name__

    has_encoder = True  # False for latent optimisation

    # ---- what a method provides -------------------------------------------------------------------------
    def build_encoder(self, cfg: dict) -> nn.Module:
        raise NotImplementedError

    def train_step(self, batch: dict) -> torch.Tensor | None:
        """One training iteration on a batch: the loss (automatic optimisation) or None (manual)."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes [B, n_latent, style_dim] for inputs already at `input_size`."""
        raise NotImplementedError

    # ---- the public inference API ------------------------------------------------------------------------
    @torch.no_grad()
    def invert(self, images: torch.Tensor) -> Inversion:
        """The `Inversion` of images of any size in [-1, 1] (resized to the encoder's input size first): codes
        [B, n_latent, style_dim] (with `latent_avg` where the method starts from it) and whatever per-image state
        the method adds."""
        inv = self.inversion(resize(images.to(self.latent_avg), self.input_size))
        if inv.codes.shape != (len(images), *self.latent_avg.shape):
            raise ValueError(f"{type(self).__name__} inverted {len(images)} images to codes {tuple(inv.codes.shape)}; "
                             f"the generator needs [{len(images)}, {', '.join(map(str, self.latent_avg.shape))}]")
        return inv

    def inversion(self, x: torch.Tensor) -> Inversion:
        """`invert` for inputs already at `input_size`, with gradients where the caller allows them; methods that
        add per-image state override it."""
        return Inversion(self.encode(x))

    def reconstruct(self, inversion: Inversion | torch.Tensor, noise: list[torch.Tensor] | None = None
                    ) -> torch.Tensor:
        """Generator images [B, 3, size, size] of an `Inversion` (or of bare W+ codes, with the stored noise or
        `noise`); in float32 even under `speed.autocast` (StyleGAN2's modulated convolutions overflow in half
        precision)."""
        inv = as_inversion(inversion, noise)
        with torch.autocast(inv.codes.device.type, enabled=False):
            return self.generate(inv.replace(codes=inv.codes.to(self.latent_avg.dtype)))  # out of autocast's bf16

    def generate(self, inv: Inversion) -> torch.Tensor:
        """The generator's image of an inversion: its codes, noise maps, per-image weight offsets and blended
        features (a residual only the method that made it can use: HFGI)."""
        if inv.residual is not None or inv.extra:
            made = "HFGI" if inv.residual is not None else "StyleRes or SFE"
            raise ConfigError(f"{type(self).__name__} cannot generate an inversion that only the {made} run that made "
                              "it renders: reconstruct it with that run (checkpoint=<that run>)")
        return self.generator([inv.codes], input_is_latent=True, noise=inv.noise, randomize_noise=False,
                              offsets=inv.offsets, features=inv.features)[0]

    def offset(self, codes: torch.Tensor) -> torch.Tensor:
        """Encoder outputs as codes: plus `latent_avg` when `start_from=avg`."""
        return codes + self.latent_avg if self.start_from == "avg" else codes

    # ---- losses --------------------------------------------------------------------------------------------
    def image_losses(self, y_hat: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted image terms that are switched on: l2, perceptual, id (each unweighted, by name)."""
        y_hat = match_size(y_hat, y)
        terms = {"l2": F.mse_loss(y_hat, y)} if self.weights.get("l2", 0) > 0 else {}
        if hasattr(self.nets, "perceptual"):
            terms["perceptual"] = self.nets.perceptual(y_hat, y)
        if hasattr(self.nets, "identity"):
            terms["id"] = self.nets.identity(y_hat, y)
        return terms

    def alignment_terms(self, codes: torch.Tensor, layers: range | None = None) -> dict[str, torch.Tensor]:
        """LSAP's alignment term on W+ codes (over `layers`, default all) when `loss.weights.sncd` > 0: what any
        encoder trains with to keep its codes along the generator's synthetic style direction."""
        return {} if self.style_space is None else {"sncd": self.style_space.alignment_loss(codes, layers)}

    def total(self, terms: dict[str, torch.Tensor], prefix: str = "train") -> torch.Tensor:
        """The weighted sum of `terms`, each logged; a NaN or inf term stops training with its name (one check for
        all terms: one device sync per iteration)."""
        if not torch.stack([v.detach().float().sum() for v in terms.values()]).isfinite().all():
            name, value = next((k, float(v.detach().sum())) for k, v in terms.items() if not v.isfinite().all())
            raise TrainingDiverged(f"loss term '{name}' is {value} at iteration {self.iterations_done()}; training "
                                   "stopped, the last checkpoint is the last good state. Lower the learning rate or "
                                   "that term's weight.")
        loss = sum(self.weights[name] * value for name, value in terms.items())
        self.log_dict({f"{prefix}/{k}": v.detach() for k, v in {**terms, "loss": loss}.items()},
                      prog_bar=prefix == "train")
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast), batched_modconv():
            loss = self.train_step(batch)
        self.finish_iteration()
        return loss

    autocast_mode: str | None = None  # speed.autocast (use_speed)

    @property
    def autocast(self) -> bool:
        """Whether training steps run under bfloat16 autocast on this module's device."""
        return self.autocast_mode == "bf16" or self.autocast_mode == "auto" and native_bf16(self.device.type)

    def use_speed(self, autocast: str | None = None, channels_last: bool = False, compile: bool = False) -> None:
        """Training speed options (`speed.*` of ganinv-train; docs/scaling.md#training-speed): `autocast=bf16`
        runs the encoder and the loss networks in bfloat16 autocast (the generator stays float32), `auto` where
        the device computes bfloat16 natively (`native_bf16`);
        `channels_last` stores their convolution weights NHWC; `compile` compiles the encoder's backbone units in
        place (state-dict keys unchanged; the heads stay eager, so e4e's stages and ReStyle's steps never
        recompile)."""
        if autocast not in (None, "bf16", "auto"):
            raise ConfigError(f"speed.autocast={autocast!r} is not one of null, bf16, auto")
        self.autocast_mode = autocast
        if channels_last:
            for net in (self.encoder, self.nets):
                net.to(memory_format=torch.channels_last)
        if compile:
            body = getattr(self.encoder, "body", None)
            parts = [getattr(self.encoder, "input_layer", None), *body] if body is not None else [self.encoder]
            for part in filter(None, parts):
                part.compile()

    # ---- validation: distortion on the fixed validation split -----------------------------------------------
    def validation_step(self, batch: dict, batch_idx: int) -> dict:
        began = time.perf_counter()
        inv = self.inversion(batch["x"])
        return self.validated(batch, inv, self.reconstruct(inv), time.perf_counter() - began)

    def validated(self, batch: dict, inv: Inversion, image: torch.Tensor, seconds: float) -> dict:
        """Logs the batch's `val/<metric>` and returns what the validation callbacks take from it (the first
        validation images' inversions: `ganinv.callbacks.ValidationSubset`): the inversion, the clamped
        reconstructions and the seconds inverting took."""
        self.log_distortion(image, batch["y"], "val")
        return {"inversion": inv.detach(), "recs": image.detach().float().clamp(-1, 1), "seconds": seconds}

    def log_distortion(self, y_hat: torch.Tensor, y: torch.Tensor, prefix: str) -> None:
        y_hat = match_size(y_hat.clamp(-1, 1), y)
        metrics = {"mse": F.mse_loss(y_hat, y)}
        if hasattr(self.nets, "perceptual"):
            name = "lpips" if type(self.nets.perceptual).__name__ == "LPIPS" else "perceptual"
            metrics[name] = self.nets.perceptual(y_hat, y)
        if hasattr(self.nets, "identity"):
            metrics["id_sim"] = 1 - self.nets.identity(y_hat, y)
        self.log_dict({f"{prefix}/{k}": v for k, v in metrics.items()}, sync_dist=True, batch_size=len(y))

    # ---- optimisation --------------------------------------------------------------------------------------
    def make_optimizer(self, params, cfg: Mapping[str, Any] | None = None) -> torch.optim.Optimizer:
        from hydra.utils import instantiate

        return instantiate(dict(cfg or self.optimizer_cfg), _convert_="all")(params)  # lists as lists

    def configure_optimizers(self):
        return self.make_optimizer(self.encoder.parameters())

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint.setdefault("ganinv", {})["method"] = type(self).__name__  # what load_method rebuilds

    def train(self, mode: bool = True) -> InversionModule:
        super().train(mode)
        self.generator.eval()  # frozen on purpose: noise buffers and any BN stay fixed
        return self


@functools.cache
def native_bf16(device_type: str) -> bool:
    """Whether this machine's `device_type` computes bfloat16 natively: a CUDA GPU that supports it without
    emulation (Ampere or newer), a CPU with AVX512-BF16 or AMX (elsewhere bfloat16 is emulated, and slower)."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device_type == "cpu":
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags
    return False


def check_weights(method: str, terms: tuple[str, ...], loss: Mapping[str, Any] | None,
                  optional: tuple[str, ...] = ()) -> dict[str, float]:
    """`loss.weights` as floats, naming every one of `terms` and perhaps some of `optional` (absent: 0); a missing
    or unknown weight is an error naming the key."""
    if loss is None:
        return {}
    weights = {k: float(v) for k, v in dict(loss.get("weights") or {}).items()}
    missing = [t for t in terms if t not in weights]
    unknown = [k for k in weights if k not in terms and k not in optional]
    weights |= {t: 0.0 for t in optional if t not in weights}
    if missing or unknown:
        what = (f"loss.weights.{missing[0]} is missing" if missing else
                f"loss.weights.{unknown[0]} is not a term of {method}")
        extra = f" (and may weigh {', '.join(optional)})" if optional else ""
        raise ConfigError(f"{what}: {method} computes {', '.join(terms)}{extra}; give each a weight (0 switches a "
                         "term off) and no other.")
    return weights


def match_size(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The reconstruction at the target's size: box pooling when the factor is whole (pSp's face_pool)."""
    s, t = y_hat.shape[-1], y.shape[-1]
    if s == t:
        return y_hat
    return F.adaptive_avg_pool2d(y_hat, t) if s > t and s % t == 0 else resize(y_hat, t)


def _ignore_frozen_nets(module: nn.Module, incompatible) -> None:
    incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if not k.startswith("nets.")]
