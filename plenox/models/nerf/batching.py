"""Training batches drawn across all images, as the reference's LLFF path (use_batching) does.

The reference shuffles every training ray once, walks through the shuffled list batch by
batch, and reshuffles when it reaches the end (the last batch of a pass may be short).
``ShuffledRays`` does the same with each pass's permutation derived from (seed, pass), so a
batch depends on the step alone and a resumed fit draws exactly what an uninterrupted one
would, with no sampler state to checkpoint.
"""

import numpy as np
import torch


class ShuffledRays:
    """Indices of the rays in each step's batch.

    Args:
        n_rays: training rays M (all pixels of all training images).
        batch_rays: rays per batch B.
        seed: with the pass number, seeds each pass's permutation.
    """

    def __init__(self, n_rays: int, batch_rays: int, seed: int = 0):
        if n_rays < 1 or batch_rays < 1:
            raise ValueError(f"need n_rays >= 1 and batch_rays >= 1, got {n_rays} and {batch_rays}")
        self.n_rays, self.batch_rays, self.seed = n_rays, batch_rays, seed
        self.steps_per_pass = -(-n_rays // batch_rays)
        self._pass, self._order = -1, None

    def permutation(self, pass_index: int) -> torch.Tensor:
        """(M,) int64: the order in which pass ``pass_index`` visits the rays."""
        seed = int(np.random.SeedSequence([self.seed, pass_index]).generate_state(1)[0])
        return torch.randperm(self.n_rays, generator=torch.Generator().manual_seed(seed))

    def indices(self, step: int) -> torch.Tensor:
        """(B,) int64 ray indices of the batch for ``step`` (fewer at the end of a pass)."""
        pass_index, k = divmod(step, self.steps_per_pass)
        if pass_index != self._pass:  # one permutation per pass, kept until the walk leaves it
            self._pass, self._order = pass_index, self.permutation(pass_index)
        return self._order[k * self.batch_rays:(k + 1) * self.batch_rays]
