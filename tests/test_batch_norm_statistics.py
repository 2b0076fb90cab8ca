"""recompute_batch_norm_statistics: running averages become averages of batch statistics."""

import flowtest
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp import recompute_batch_norm_statistics
from tfp_realnvp.bijectors import InvertibleBatchNorm
from tfp_realnvp.bijectors import MaskedAffineCoupling
from tfp_realnvp.bijectors import checkerboard_mask


def test_a_lone_batch_norm_gets_the_average_of_its_batch_statistics():
  bn = InvertibleBatchNorm((2, 2, 3), momentum=0.9)
  rng = np.random.default_rng(0)
  batches = [rng.normal(2., 3., (8, 2, 2, 3)).astype(np.float32) for _ in range(4)]
  bn.inverse(tf.constant(batches[0] * 10.), training=True)     # stale statistics
  assert recompute_batch_norm_statistics(bn, batches) == 4
  np.testing.assert_allclose(bn.moving_mean.numpy(),
                             np.mean([b.mean(axis=(0, 1, 2)) for b in batches], 0), rtol=1e-5)
  np.testing.assert_allclose(bn.moving_variance.numpy(),
                             np.mean([b.var(axis=(0, 1, 2)) for b in batches], 0), rtol=1e-5)
  assert bn.momentum == 0.9 and not any('recompute' in v.name for v in bn.variables)


def test_the_networks_batch_norms_are_recomputed_too():
  coupling = flowtest.perturb(MaskedAffineCoupling((4, 4, 2), 'checkerboard',
                                                   network=flowtest.tiny_resnet))
  net = coupling.network
  first_norm = net.get_layer('block_0').norm_in
  probe = keras.Model(net.inputs, net.get_layer('conv_in').output)   # that norm's input
  rng = np.random.default_rng(1)
  batches = [rng.normal(size=(6, 4, 4, 2)).astype(np.float32) for _ in range(3)]
  mask = checkerboard_mask(4, 4, 0)
  expected = np.mean([probe(b * mask).numpy().mean(axis=(0, 1, 2)) for b in batches], 0)
  recompute_batch_norm_statistics(coupling, batches, max_batches=3)
  np.testing.assert_allclose(first_norm.moving_mean.numpy(), expected, rtol=1e-4, atol=1e-5)
  assert first_norm.momentum == pytest.approx(0.9)


def test_no_batch_norm_or_no_batch_is_an_error():
  with pytest.raises(ValueError, match='no batch norm'):
    recompute_batch_norm_statistics(flowtest.REGISTRY['squeeze'].build(), [np.zeros((1,))])
  with pytest.raises(ValueError, match='no batch was given'):
    recompute_batch_norm_statistics(InvertibleBatchNorm((3,)), [])
