"""When the training loop takes its held-out records: fixed spacing, or doubling from eval_first_s."""

from types import SimpleNamespace

import pytest

from plenox.config import RunSettings
from plenox.training.loop import TrainingLoop


def schedule(config: RunSettings, until: float) -> list[float]:
    """The held-out times next_heldout_time gives when each record is taken exactly on time."""
    times, now = [], 0.0
    while now < until:
        now = TrainingLoop.next_heldout_time(SimpleNamespace(config=config, elapsed=now))
        times.append(now)
    return times


def test_fixed_spacing():
    assert schedule(RunSettings(eval_every_s=60.0), 200) == [60.0, 120.0, 180.0, 240.0]


def test_doubling_from_the_first_point_up_to_the_spacing():
    config = RunSettings(eval_every_s=60.0, eval_first_s=1.0)
    assert schedule(config, 200) == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 124.0, 184.0, 244.0]


def test_a_late_record_moves_the_next_one():
    config = RunSettings(eval_every_s=60.0, eval_first_s=1.0)
    # A slow step took the clock from 1 s to 5 s: the next point doubles from there.
    assert TrainingLoop.next_heldout_time(SimpleNamespace(config=config, elapsed=5.0)) == pytest.approx(10.0)
