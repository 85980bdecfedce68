"""The DDP helpers on one process, with the rank and world size set by hand (multi-process runs: tests/slow)."""

from __future__ import annotations

import pytest
import torch

import ganinv.distributed as distributed
from ganinv.methods.base import IterationModule
from ganinv.methods.e4e import LatentPool


def as_rank(monkeypatch, rank: int, world: int) -> None:
    monkeypatch.setattr(distributed, "rank_and_world", lambda: (rank, world))
    monkeypatch.setattr("ganinv.methods.base.rank_and_world", lambda: (rank, world))


@pytest.mark.parametrize("n, world, batch", [(10, 1, 1), (10, 3, 1), (2, 4, 1), (64, 2, 1), (11, 2, 4), (11, 4, 4),
                                             (64, 3, 16), (33, 2, 16)])
def test_shards_cover_the_set_once_without_padding_in_whole_batches(monkeypatch, n, world, batch):
    shards = []
    for rank in range(world):
        as_rank(monkeypatch, rank, world)
        shards.append(list(distributed.shard(n, batch)))
    assert sorted(i for s in shards for i in s) == list(range(n))
    whole = -(-n // batch) >= world  # enough batches: every share starts where one process starts a batch
    unit = batch if whole else 1
    assert all(s[0] % unit == 0 for s in shards if s)
    counts = [-(-len(s) // unit) for s in shards]  # batches (or items) per rank: one more on the first ranks
    assert max(counts) - min(counts) <= 1 and counts == sorted(counts, reverse=True)


def test_ranks_draw_the_rows_one_process_draws_for_the_same_images(monkeypatch):
    """A draw per image of the global batch (a code, a warp) goes with the image on any number of processes: the
    rows follow how the training sampler deals the global batch out to the ranks."""
    from ganinv.data.datamodule import EpochSampler

    module = IterationModule(10)
    module.iteration += 7
    dataset = list(range(32))
    one = list(EpochSampler(dataset, 1, 0, seed=3))[:8]  # the first global batch of 8
    as_rank(monkeypatch, 0, 1)
    whole = dict(zip(one, module.sample_normal("z", 8, 5)))
    parts = []
    for rank in range(2):
        as_rank(monkeypatch, rank, 2)
        mine = list(EpochSampler(dataset, 2, rank, seed=3))[:4]
        parts.append(module.sample_normal("z", 4, 5))
        assert set(mine) <= set(whole)
        for image, row in zip(mine, parts[-1]):
            assert torch.equal(row, whole[image])
    assert not torch.equal(parts[0], parts[1])
    module.iteration += 1
    assert not torch.equal(module.sample_normal("z", 4, 5), parts[1])  # and every iteration afresh


def test_each_rank_keeps_and_samples_its_own_pool(monkeypatch):
    module = IterationModule(10)
    codes = torch.randn(6, 3)
    chosen = []
    for rank in range(2):
        as_rank(monkeypatch, rank, 2)
        pool = LatentPool(2, 3)
        pool(codes[:2], module.keyed("pool"))
        chosen.append(pool(codes[2:], module.keyed("pool")))
    again = LatentPool(2, 3)
    again(codes[:2], module.keyed("pool"))
    assert torch.equal(again(codes[2:], module.keyed("pool")), chosen[1])  # keyed: the same draws after a resume
    assert not torch.equal(chosen[0], chosen[1])


def test_frozen_nets_and_pools_stay_out_of_ddp(tiny_generator):
    from ganinv.losses import LazyR1
    from ganinv.methods import E4EModule

    loss = {"weights": {"l2": 1, "perceptual": 0, "id": 0, "delta_norm": 1, "w_discriminator": 0.1}}
    module = E4EModule(tiny_generator, {"widths": [8, 8, 12, 16]}, loss, input_size=32,
                       loss_nets={"r1": LazyR1(10.0, 16)}, discriminator={"pool_size": 4})
    module.setup("fit")
    ignored = set(module._ddp_params_and_buffers_to_ignore)
    assert {"regularisers.real_pool.codes", "regularisers.fake_pool.count"} <= ignored
    assert any(n.startswith("generator.") for n in ignored) and not any(n.startswith("encoder.") for n in ignored)
    assert module.find_unused_parameters  # two players: each backward reaches only one


def test_global_batchnorm_on_one_process_is_batchnorm():
    import copy

    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 25, 6), torch.nn.BatchNorm1d(6))
    ours = distributed.use_global_batchnorm(copy.deepcopy(plain))
    assert sum(isinstance(m, distributed.GlobalBatchNorm) for m in ours.modules()) == 2
    assert ours.state_dict().keys() == plain.state_dict().keys()
    x = torch.randn(8, 3, 7, 7) * 3 + 2
    for net in (plain, ours):
        net(x).pow(2).mean().backward()
    for (name, a), b in zip(plain.state_dict().items(), ours.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name  # running statistics
    for (name, a), b in zip(plain.named_parameters(), ours.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5), name
    plain.eval(), ours.eval()
    assert torch.allclose(plain(x), ours(x), atol=1e-5)
