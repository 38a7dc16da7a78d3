"""ShuffledRays: the reference's walk over shuffled rays of all images, a function of the step alone."""

import torch

from plenox.models.nerf import ShuffledRays


def test_each_pass_visits_every_ray_once_in_a_fresh_order():
    rays = ShuffledRays(n_rays=10, batch_rays=4, seed=3)
    assert rays.steps_per_pass == 3
    passes = [torch.cat([rays.indices(s) for s in range(p * 3, p * 3 + 3)]) for p in range(2)]
    assert [len(rays.indices(s)) for s in range(3)] == [4, 4, 2]  # the last batch of a pass is short
    for order in passes:
        assert sorted(order.tolist()) == list(range(10))
    assert not torch.equal(passes[0], passes[1])


def test_batches_depend_on_step_and_seed_only():
    a, b = ShuffledRays(100, 16, seed=1), ShuffledRays(100, 16, seed=1)
    later = [a.indices(s) for s in (9, 2, 30)]          # out of order, across passes
    assert all(torch.equal(x, b.indices(s)) for x, s in zip(later, (9, 2, 30)))
    assert not torch.equal(ShuffledRays(100, 16, seed=2).indices(0), b.indices(0))
