"""Positional encoding: reference order, frequencies and sizes."""

import math

import torch

from plenox.models.nerf import PositionalEncoding


def test_reference_dims():
    assert PositionalEncoding(10).out_dim == 63
    assert PositionalEncoding(4).out_dim == 27
    assert PositionalEncoding(4, include_input=False).out_dim == 24
    assert PositionalEncoding(10)(torch.zeros(2, 5, 3)).shape == (2, 5, 63)


def test_hand_computed_values():
    x = [0.5, -1.0, 2.0]
    expected = list(x)
    for freq in (1.0, 2.0):  # 2^0, 2^1: no factor of pi
        expected += [math.sin(freq * v) for v in x]
        expected += [math.cos(freq * v) for v in x]
    got = PositionalEncoding(2)(torch.tensor([x]))
    torch.testing.assert_close(got, torch.tensor([expected]))


def test_without_input():
    got = PositionalEncoding(1, include_input=False)(torch.tensor([[0.0, 1.0, 3.0]]))
    expected = [0.0, math.sin(1.0), math.sin(3.0), 1.0, math.cos(1.0), math.cos(3.0)]
    torch.testing.assert_close(got, torch.tensor([expected]))
