"""bits_per_dim: the unit conversion, against a uniform model and by hand."""

import math

import numpy as np
import pytest

from tfp_realnvp import bits_per_dim


def test_uniform_density_is_eight_bits():
  # The uniform density on [0, 1]^D has log_prob 0.
  np.testing.assert_allclose(bits_per_dim(0., (28, 28, 1)).numpy(), 8.)
  np.testing.assert_allclose(bits_per_dim(0., (8, 8, 1), num_levels=17),
                             math.log2(17), rtol=1e-6)


def test_by_hand():
  log_prob = np.array([1000., -50.], np.float32)
  d = 3 * 4 * 4
  expected = (-log_prob / d + math.log(256)) / math.log(2)
  np.testing.assert_allclose(bits_per_dim(log_prob, (4, 4, 3)), expected,
                             rtol=1e-6)


def test_bad_arguments():
  with pytest.raises(ValueError, match='num_levels'):
    bits_per_dim(0., (2, 2, 1), num_levels=1)
