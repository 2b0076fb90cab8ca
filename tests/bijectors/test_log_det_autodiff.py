"""Every bijector's log-det against an autodiff Jacobian, and round trips.

One parametrised test covers each bijector of the package, on small events,
images with H*W > 1 included, with every variable moved away from its
initial value, before and after a few training steps.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from conftest import autodiff_log_det, fresh, perturb
from tfp_realnvp import RealNVPChain
from tfp_realnvp.bijectors import (FactorOut, InvertibleBatchNorm,
                                   LogitTransform, MaskedAffineCoupling,
                                   Squeeze)

tfd = tfp.distributions

SMALL_NET = dict(hidden_channels=4, num_res_blocks=1)


def _image_data(shape, batch=3, seed=0):
  return tf.random.stateless_uniform((batch,) + shape, [seed, 1],
                                     minval=0.02, maxval=0.98)


def _real_data(shape, batch=3, seed=0):
  return tf.random.stateless_normal((batch,) + shape, [seed, 2])


CASES = {
    'checkerboard_parity0': (
        lambda: MaskedAffineCoupling((4, 4, 2), 'checkerboard', 0, **SMALL_NET),
        (4, 4, 2), _real_data),
    'checkerboard_parity1': (
        lambda: MaskedAffineCoupling((4, 4, 2), 'checkerboard', 1, **SMALL_NET),
        (4, 4, 2), _real_data),
    'checkerboard_odd_size': (
        lambda: MaskedAffineCoupling((3, 3, 1), 'checkerboard', 0, **SMALL_NET),
        (3, 3, 1), _real_data),
    'channel_parity0': (
        lambda: MaskedAffineCoupling((2, 2, 4), 'channel', 0, **SMALL_NET),
        (2, 2, 4), _real_data),
    'channel_parity1': (
        lambda: MaskedAffineCoupling((2, 2, 4), 'channel', 1, **SMALL_NET),
        (2, 2, 4), _real_data),
    'vector_half_parity0': (
        lambda: MaskedAffineCoupling((5,), 'half', 0, hidden_units=(8,)),
        (5,), _real_data),
    'vector_half_parity1': (
        lambda: MaskedAffineCoupling((5,), 'half', 1, hidden_units=(8,)),
        (5,), _real_data),
    'vector_custom_mask': (
        lambda: MaskedAffineCoupling((6,), 'custom', mask=[1, 0, 0, 1, 1, 0],
                                     hidden_units=(8,)),
        (6,), _real_data),
    'batch_norm_image': (lambda: InvertibleBatchNorm((3, 2, 3)), (3, 2, 3),
                         _real_data),
    'batch_norm_vector': (lambda: InvertibleBatchNorm((4,)), (4,), _real_data),
    'squeeze': (lambda: Squeeze((4, 2, 3)), (4, 2, 3), _real_data),
    'logit': (lambda: LogitTransform(event_ndims=3), (3, 3, 2), _image_data),
    'factor_out': (
        lambda: FactorOut(
            MaskedAffineCoupling((2, 2, 2), 'checkerboard', 1, **SMALL_NET),
            (2, 2, 4)),
        (2, 2, 4), _real_data),
    'chain_image_2_scales': (
        lambda: RealNVPChain((4, 4, 1), num_scales=2, **SMALL_NET),
        (4, 4, 1), _image_data),
    'chain_image_rgb': (
        lambda: RealNVPChain((4, 4, 3), num_scales=2, **SMALL_NET),
        (4, 4, 3), _image_data),
    'chain_vector': (
        lambda: RealNVPChain((4,), num_couplings=4, hidden_units=(8,)),
        (4,), _real_data),
}


def _train_a_little(bijector, event_shape, make_data, steps=3):
  """A few Adam steps on max likelihood in training mode."""
  dist = tfd.TransformedDistribution(
      tfd.Sample(tfd.Normal(0., 1.), event_shape), bijector)
  variables = dist.trainable_variables
  if not variables:
    return
  import keras  # pylint: disable=g-import-not-at-top
  optimizer = keras.optimizers.Adam(1e-2)
  for step in range(steps):
    x = make_data(event_shape, batch=8, seed=100 + step)
    with tf.GradientTape() as tape:
      loss = -tf.reduce_mean(
          dist.log_prob(x, bijector_kwargs={'training': True}))
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))


@pytest.mark.parametrize('trained', [False, True], ids=['perturbed', 'trained'])
@pytest.mark.parametrize('case', sorted(CASES))
def test_log_det_matches_autodiff_and_round_trips(case, trained):
  make_bijector, event_shape, make_data = CASES[case]
  bijector = perturb(make_bijector(), seed=7)
  if trained:
    _train_a_little(bijector, event_shape, make_data)
  ndims = len(event_shape)
  x = make_data(event_shape)

  # Inverse direction: data -> latent.
  expected = autodiff_log_det(bijector.inverse, fresh(x))
  ildj = bijector.inverse_log_det_jacobian(fresh(x), event_ndims=ndims).numpy()
  np.testing.assert_allclose(ildj, expected, rtol=1e-4, atol=2e-3)
  assert np.max(np.abs(expected)) > 1e-2 or case == 'squeeze', (
      'degenerate case: the log-det is ~0, the test could not fail')

  # Forward direction: latent -> data, at latents of real data points.
  z = bijector.inverse(fresh(x))
  expected_fwd = autodiff_log_det(bijector.forward, fresh(z))
  fldj = bijector.forward_log_det_jacobian(fresh(z), event_ndims=ndims).numpy()
  np.testing.assert_allclose(fldj, expected_fwd, rtol=1e-4, atol=2e-3)
  np.testing.assert_allclose(fldj, -ildj, rtol=1e-4, atol=2e-3)

  # Round trips both ways, without the cache.
  np.testing.assert_allclose(bijector.forward(fresh(z)).numpy(), x.numpy(),
                             atol=1e-4)
  z2 = _real_data(tuple(z.shape[1:]), seed=3) * 0.5
  if case.startswith('chain_image') or case == 'logit':
    z2 = z + 0.1 * z2   # keep the logits inside the pixel range (no clipping)
  elif case == 'squeeze':
    z2 = _real_data(bijector.latent_shape, seed=3)
  np.testing.assert_allclose(
      bijector.inverse(fresh(bijector.forward(fresh(z2)))).numpy(),
      np.array(z2), atol=1e-4)
