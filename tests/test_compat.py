"""Each private TensorFlow, TFP and Keras hook of `tfp_realnvp._compat`, exercised.

An upgrade that removes or changes one of them fails here, by name.
"""

import keras
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp import _compat


def test_bijector_name_scope_opens_the_bijectors_scope():
  bijector = tfp.bijectors.Scale(2., name='doubling')

  @tf.function
  def scoped():
    with _compat.bijector_name_scope(bijector, 'probe') as scope:
      return tf.constant(scope)

  assert 'doubling' in scoped().numpy().decode() and 'probe' in scoped().numpy().decode()


def test_could_possibly_record_sees_a_tape():
  assert not _compat.could_possibly_record()
  with tf.GradientTape():
    assert _compat.could_possibly_record()


def test_keras_variable_backing_is_a_tf_variable():
  layer = keras.layers.Dense(2)
  layer.build((None, 3))
  backing = _compat.keras_variable_backing(layer.kernel)
  assert isinstance(backing, tf.Variable)
  backing.assign(tf.ones((3, 2)))
  assert float(tf.reduce_sum(layer.kernel)) == 6.


def test_mirrored_collective_key_base_exists():
  before = tf.distribute.MirroredStrategy._collective_key_base  # pylint: disable=protected-access
  assert _compat.bump_mirrored_collective_keys(step=7)
  assert tf.distribute.MirroredStrategy._collective_key_base == before + 7  # pylint: disable=protected-access


def test_kernel_labels_and_xla_context():
  seen = {}

  @tf.function
  def labelled():
    with _compat.kernel_label_map(tf.compat.v1.get_default_graph(), {'Identity': 'probe'}):
      return tf.identity(1.)

  # The label reaches the op: no Identity kernel is registered under it.
  with pytest.raises(tf.errors.InvalidArgumentError, match='_kernel="probe"'):
    labelled()

  @tf.function
  def plain():
    graph = tf.compat.v1.get_default_graph()
    seen['plain'] = _compat.in_xla_context(graph)
    return tf.identity(1.)

  @tf.function(jit_compile=True)
  def compiled():
    seen['xla'] = _compat.in_xla_context(tf.compat.v1.get_default_graph())
    return tf.identity(1.)

  plain()
  compiled()
  assert seen == {'plain': False, 'xla': True}
  with _compat.kernel_label_map(None, {}):
    pass
