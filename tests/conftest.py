"""Test configuration: two logical CPU devices stand in for two GPUs; fixed seeds.

Shared helpers live in `flowtest.py` (`import flowtest`).
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('KERAS_BACKEND', 'tensorflow')

import keras  # pylint: disable=g-import-not-at-top
import pytest
import tensorflow as tf

# Must happen before TensorFlow initialises its devices.
_cpus = tf.config.list_physical_devices('CPU')
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'


@pytest.fixture(autouse=True)
def _seed():
  keras.utils.set_random_seed(1234)
  yield
