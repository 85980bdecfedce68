"""DDP parity (make test-all): N processes train the same model as one process.

Each method runs 3 iterations of a global batch of 4, once on one process and once on two CPU processes (gloo)
with 2 images each (In-Domain 8 and 4: its image discriminator's minibatch standard deviation takes groups of 4
images, on each rank as on each GPU), `trainer.sync_batchnorm=true` (BatchNorm over the global batch) and in
float64: in float32 the same images at a batch of 4 rather than 8 round differently inside the generator (relative
3e-4 on the codes' gradient through the perceptual net, with or without DDP), which Adam's per-element
normalisation turns into weight differences of up to its learning rate; docs/scaling.md gives the float32 figures.
"""

from __future__ import annotations

import pytest

from tests.runs import EXPERIMENTS, max_difference, train

EXACT = ("trainer.sync_batchnorm=true", "trainer.precision=64-true")
# e4e's pools of past codes are per-rank state by design (each rank pools its own codes): switched off where one
# process is compared with two, kept on where the ranks are compared with each other.
NO_POOL = ("method.discriminator.pool_size=0",)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_two_processes_train_what_one_process_trains(tmp_path, experiment):
    same = (*EXACT, *(NO_POOL if "e4e" in experiment else ()))
    batch = 8 if experiment == "toy_idinvert" else 4
    one = train(tmp_path / "one", experiment, 1, batch=batch, extra=same)
    two = train(tmp_path / "two", experiment, 2, batch=batch, extra=same)
    assert two["ganinv"]["rank_disagreement"] == 0.0  # (a) every rank holds the same weights
    assert max_difference(one, two) <= 1e-9  # (b) 2 x batch / 2 images == 1 x batch images


@pytest.fixture(scope="module")
def base_e4e(tmp_path_factory):
    """A narrow e4e (2 iterations) for the methods that start from one."""
    run = tmp_path_factory.mktemp("e4e")
    train(run, "toy_e4e", 1, steps=2)
    return run / "checkpoints" / "last.ckpt"


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["toy_hyperstyle", "toy_hfgi", "toy_styleres", "toy_sfe"])
def test_methods_on_a_base_train_on_two_processes_what_one_trains(tmp_path, experiment, base_e4e):
    """HyperStyle (refinement steps under no_sync), HFGI (random warps: one draw per global batch, each rank
    taking the rows of its images: the sampler deals a global batch out interleaved, not in blocks), StyleRes and
    SFE (one edit drawn per global batch; SFE through both phases: its editor from the second iteration)."""
    same = (*EXACT, f"method.base={base_e4e}")
    one = train(tmp_path / "one", experiment, 1, batch=4, extra=same)
    two = train(tmp_path / "two", experiment, 2, batch=4, extra=same)
    assert two["ganinv"]["rank_disagreement"] == 0.0
    assert max_difference(one, two) <= 1e-9


@pytest.mark.slow
def test_e4e_ranks_keep_their_own_pools_and_the_same_weights(tmp_path):
    # A pool of 4 codes is full after the first iteration; from then on each rank draws from its own.
    two = train(tmp_path / "two", "toy_e4e", 2, extra=("method.discriminator.pool_size=4",))
    assert two["ganinv"]["rank_disagreement"] == 0.0
    assert int(two["regularisers.real_pool.count"]) == 4
