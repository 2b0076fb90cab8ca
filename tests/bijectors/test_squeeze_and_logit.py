"""Squeeze layout and errors; LogitTransform's math, exactness and errors."""

import numpy as np
import pytest
import tensorflow as tf
from flowtest import fresh

from tfp_realnvp.bijectors import LogitTransform
from tfp_realnvp.bijectors import Squeeze


def test_squeeze_groups_each_2x2_block_into_channels():
  squeeze = Squeeze((4, 4, 1))
  x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
  y = squeeze.inverse(x).numpy()
  assert y.shape == (1, 2, 2, 4)
  # The top-left 2x2 block [[0, 1], [4, 5]] becomes the channels of (0, 0).
  np.testing.assert_array_equal(y[0, 0, 0], [0, 1, 4, 5])
  np.testing.assert_array_equal(y[0, 1, 1], [10, 11, 14, 15])
  np.testing.assert_array_equal(squeeze.forward(fresh(y)).numpy(), x)


def test_squeeze_any_channels_and_batch_shapes():
  squeeze = Squeeze((2, 6, 3))
  x = tf.random.normal((2, 5, 2, 6, 3))
  y = squeeze.inverse(x)
  assert y.shape == (2, 5, 1, 3, 12)
  np.testing.assert_array_equal(squeeze.forward(fresh(y)).numpy(), x.numpy())
  assert squeeze.inverse_event_shape((2, 6, 3)) == (1, 3, 12)
  assert squeeze.forward_event_shape((1, 3, 12)) == (2, 6, 3)


def test_squeeze_errors_name_the_problem():
  with pytest.raises(ValueError, match=r'spatial size 5x4.*must be even'):
    Squeeze((5, 4, 1))
  with pytest.raises(ValueError, match=r'image event \(H, W, C\)'):
    Squeeze((4, 4))
  with pytest.raises(ValueError, match=r'expected data of shape \(\.\.\., 4, 4, 1\), got '
                                       r'\(2, 4, 6, 1\)'):
    Squeeze((4, 4, 1)).inverse(tf.zeros((2, 4, 6, 1)))
  with pytest.raises(ValueError, match=r'expected latents of shape \(\.\.\., 2, 2, 4\)'):
    Squeeze((4, 4, 1)).forward(tf.zeros((2, 4, 4, 1)))


def test_logit_matches_the_formula():
  logit = LogitTransform(event_ndims=1, alpha=0.05)
  x = np.array([[0., 0.25, 0.5, 1.]], np.float32)
  p = 0.05 + 0.9 * x
  np.testing.assert_allclose(logit.inverse(x).numpy(), np.log(p / (1 - p)),
                             rtol=1e-5)
  np.testing.assert_allclose(
      logit.inverse_log_det_jacobian(x, event_ndims=1).numpy(),
      np.sum(np.log(0.9 / (p * (1 - p))), -1), rtol=1e-5)


def test_logit_forward_is_exact_on_its_whole_domain():
  """No clipping: logits far out map just outside [0, 1], and back."""
  logit = LogitTransform(event_ndims=1)
  low, high = logit.support
  np.testing.assert_allclose([low, high], [-0.05 / 0.9, 1 + 0.05 / 0.9])
  y = tf.constant([[-6., -3.5, 0., 3.5, 6.]])
  x = logit.forward(y).numpy()
  assert x.min() < 0. and x.max() > 1.
  assert x.min() > low and x.max() < high
  np.testing.assert_allclose(logit.inverse(fresh(x)).numpy(), y.numpy(), atol=1e-4)
  fldj = logit.forward_log_det_jacobian(y, event_ndims=1).numpy()
  sig = 1. / (1. + np.exp(-y.numpy()))
  np.testing.assert_allclose(fldj, np.sum(np.log(sig * (1 - sig) / 0.9), -1), rtol=1e-5)


@pytest.mark.parametrize('value,message', [
    (1.5, 'found a pixel value above 1.056'), (-0.1, 'found a pixel value below -0.05556'),
    (255., r'pixels must be in \[0, 1\]'), (np.nan, 'NaN or Inf')])
def test_logit_validation_errors(value, message):
  logit = LogitTransform(event_ndims=1, validate_args=True)
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    logit.inverse(tf.constant([[0.5, value]]))
  logit.inverse(tf.constant([[0., 1., 1.03]]))   # inside the support: no error


def test_logit_bad_alpha():
  with pytest.raises(ValueError, match='alpha'):
    LogitTransform(alpha=0.5)
