"""Glue between the s/t networks (Keras 3 or tf_keras models) and `tf.Module` tracking."""

import keras
import tensorflow as tf

from tfp_realnvp import _compat

__all__ = ['underlying_variables', 'output_shape', 'call']


def underlying_variables(model):
  """The `tf.Variable`s behind a Keras 3 model, for `tf.Module` tracking.

  Keras 3 layers are not `tf.Module`s, so a bijector holding one reports no variables;
  storing the backing `tf.Variable`s (trainable and not, e.g. batch-norm statistics) in an
  attribute makes `trainable_variables`, gradients, `tf.train.Checkpoint` and `tf.distribute`
  see them. tf_keras models are `tf.Module`s already: nothing to add.
  """
  if not isinstance(model, keras.layers.Layer):
    return []
  return [_compat.keras_variable_backing(v) for v in model.weights]


def output_shape(model, input_event_shape):
  """Builds `model` on a batch of one and returns its output's event shape."""
  dtype = getattr(model, 'compute_dtype', None) or 'float32'
  out = model(tf.zeros((1,) + tuple(input_event_shape), dtype=dtype), training=False)
  return tuple(out.shape[1:])


def call(model, inputs, training):
  """Calls `model` in its compute dtype (mixed precision) with `training`."""
  dtype = getattr(model, 'compute_dtype', None)
  if dtype is not None and dtype != inputs.dtype:
    inputs = tf.cast(inputs, dtype)
  return model(inputs, training=training)
