"""Test configuration: two logical CPU devices stand in for two GPUs."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('KERAS_BACKEND', 'tensorflow')

import numpy as np  # pylint: disable=g-import-not-at-top
import pytest
import tensorflow as tf

# Must happen before TensorFlow initialises its devices.
_cpus = tf.config.list_physical_devices('CPU')
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'


@pytest.fixture(autouse=True)
def _seed():
  tf.keras.utils.set_random_seed(1234)
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(1234)
  yield


def perturb(bijector, seed=0, scale=0.1):
  """Moves every variable away from its initial value so nothing is trivial.

  Zero-initialised output layers make couplings the identity at the start; a
  log-det test on the identity could not fail. Variances stay positive.
  """
  rng = np.random.default_rng(seed)
  for v in bijector.variables:
    shape = tuple(v.shape)
    if 'variance' in v.name:
      v.assign(rng.uniform(0.5, 2.0, shape).astype(np.float32))
    else:
      v.assign(v.numpy() + scale * rng.standard_normal(shape).astype(np.float32))
  return bijector


def autodiff_log_det(fn, x):
  """log|det J| of `fn` at every example of `x`, by `batch_jacobian` + slogdet."""
  x = tf.convert_to_tensor(x)
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = fn(x)
  jac = tape.batch_jacobian(y, x).numpy()
  batch = x.shape[0]
  size = int(np.prod(x.shape[1:]))
  assert int(np.prod(y.shape[1:])) == size
  jac = jac.reshape(batch, size, size).astype(np.float64)
  sign, log_det = np.linalg.slogdet(jac)
  assert np.all(sign != 0), 'singular Jacobian'
  return log_det


def fresh(t):
  """A new tensor with the same values: defeats TFP's bijector cache."""
  return tf.constant(np.array(t))

