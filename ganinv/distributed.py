"""What ganinv needs from torch.distributed, in one place: this process's rank and the world size, randomness keyed
by (seed, rank, iteration), shards without padding and their gathering, the check that every rank holds the same
weights, and a BatchNorm that normalises over the global batch on any device (torch's SyncBatchNorm needs GPUs).
Every function also works without a process group (one process: rank 0 of 1)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import nn


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if active() else (0, 1)


def seed() -> int:
    """The run's seed (`seed_everything` records it for every process), 0 when none was set."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


def keyed_generator(*key: object) -> torch.Generator:
    """A CPU generator seeded from `key` (e.g. seed, rank, iteration, purpose): the same key gives the same draws
    on any machine, in any process, after any resume."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)


def batch_rows(drawn: torch.Tensor) -> torch.Tensor:
    """This rank's rows of `drawn`, something drawn once per row of the global batch: the training sampler deals
    the global batch out interleaved (rank r holds its rows r, r + world, ...), as DistributedSampler does."""
    rank, world = rank_and_world()
    return drawn[rank::world]


def shard(n: int, batch: int = 1) -> range:
    """This rank's contiguous share of `n` items: every item on exactly one rank, no padding. Shares are whole
    batches of `batch` (the first ranks take one batch more) wherever there are as many batches as ranks, so an
    item is computed in the batch one process would compute it in (a batch's rounding can depend on its size);
    else single items (the first ranks take one more)."""
    rank, world = rank_and_world()
    batches = -(-n // batch)
    if batches < world:
        batch, batches = 1, n
    size, extra = divmod(batches, world)
    start = (rank * size + min(rank, extra)) * batch
    return range(min(start, n), min(start + (size + (rank < extra)) * batch, n))


def _wire(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` where the backend can send it (NCCL: the GPU)."""
    return tensor.cuda() if dist.get_backend() == "nccl" and not tensor.is_cuda else tensor


def largest(value: int) -> int:
    """The largest of every rank's `value` (e.g. a flag one rank raised), on every rank."""
    if not active():
        return value
    t = _wire(torch.tensor(int(value)))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t)


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's `tensor` (first dimensions may differ), concatenated in rank order on every rank."""
    if not active():
        return tensor
    home, tensor = tensor.device, _wire(tensor)
    world = dist.get_world_size()
    sizes = [torch.zeros((), dtype=torch.long, device=tensor.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor(len(tensor), device=tensor.device))
    most = int(max(sizes))
    padded = torch.zeros(most, *tensor.shape[1:], dtype=tensor.dtype, device=tensor.device)
    padded[:len(tensor)] = tensor
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:int(s)] for p, s in zip(parts, sizes)]).to(home)


def rank_disagreement(tensors: Iterable[torch.Tensor]) -> float:
    """The largest absolute difference between these tensors here and on rank 0 (0.0 when they agree)."""
    if not active():
        return 0.0
    flat = _wire(torch.cat([t.detach().reshape(-1) for t in tensors]))  # in their own precision
    reference = flat.clone()
    dist.broadcast(reference, 0)
    diff = (flat - reference).abs().max() if len(flat) else flat.new_zeros(())
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    return float(diff)


def start_failure(err: BaseException, accelerator: str) -> str | None:
    """One line naming why the process group did not start and the fix, for an error raised while it started
    (None for any other error)."""
    text = f"{type(err).__name__}: {err}"
    if not isinstance(err, dist.DistError) and "process group" not in text and "TCPStore" not in text:
        return None
    backend = "gloo" if accelerator == "cpu" else "nccl"
    where = f"MASTER_ADDR={os.environ.get('MASTER_ADDR', '127.0.0.1')} MASTER_PORT={os.environ.get('MASTER_PORT')}"
    if "EADDRINUSE" in text or "address already in use" in text.lower():
        why = f"rank 0 cannot listen on {where}: the port is taken; set MASTER_PORT to a free port (or unset it)"
    elif "timed out" in text.lower() or "timeout" in text.lower():
        why = (f"the processes did not all join at {where} in time: every node must reach MASTER_ADDR:MASTER_PORT "
               "and run the same command with the same trainer.devices and trainer.num_nodes")
    else:
        why = f"{text.splitlines()[0][:200]}; check {where} and that every process runs the same command"
    return f"the {backend} process group of trainer=ddp did not start: {why}."


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch (the batches of every process), with
    gradients through the all-reduce: what torch's SyncBatchNorm does, on CPU (gloo) too. The same parameters and
    buffers as the BatchNorm it replaces; plain BatchNorm in eval mode."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        total = _sum_over_ranks(torch.cat([count, x.sum(dims)]))  # two passes: the mean, then centred squares
        n, mean = total[0], total[1:] / total[0]
        centred = x - mean.reshape(shape)
        var = _sum_over_ranks(centred.pow(2).sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1), m)
        y = centred * torch.rsqrt(var + self.eps).reshape(shape)
        return y * self.weight.reshape(shape) + self.bias.reshape(shape) if self.affine else y


def _sum_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """The sum of `t` over ranks, with gradients (every rank's contribution flows back to it)."""
    if not active():
        return t
    import warnings

    from torch.distributed.nn.functional import all_reduce

    with warnings.catch_warnings():  # its successor, _functional_collectives, has no gradient for gloo
        warnings.simplefilter("ignore", FutureWarning)
        return all_reduce(t)


def use_global_batchnorm(module: nn.Module) -> nn.Module:
    """`trainer.sync_batchnorm=true` on CPU: every BatchNorm of `module` becomes a `GlobalBatchNorm` (in place), on
    one process too, so that N processes compute exactly what one does."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, (GlobalBatchNorm,
                                                                                         nn.SyncBatchNorm)):
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        out.load_state_dict(module.state_dict())
        out.train(module.training)
        out.requires_grad_(any(p.requires_grad for p in module.parameters()))
        return out.to(next(iter(module.state_dict().values()), torch.zeros(())).device)
    for name, child in module.named_children():
        module.add_module(name, use_global_batchnorm(child))
    return module
