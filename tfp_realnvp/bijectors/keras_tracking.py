"""Glue between user-supplied Keras models (Keras 3 or tf_keras) and tf.Module."""

import keras
import tensorflow as tf

__all__ = ['underlying_variables', 'output_shape', 'call']


def _is_keras3(model):
  return isinstance(model, keras.layers.Layer)


def underlying_variables(model):
  """The `tf.Variable`s behind a Keras 3 model, for `tf.Module` tracking.

  Keras 3 layers are not `tf.Module`s, so a bijector holding one reports no
  variables; storing the backing `tf.Variable`s (trainable and not, e.g. batch
  norm statistics) in an attribute makes `trainable_variables`, gradients,
  `tf.train.Checkpoint` and `tf.distribute` see them. tf_keras models are
  `tf.Module`s already: nothing to add.
  """
  if not _is_keras3(model):
    return []
  variables = []
  for v in model.weights:
    value = v.value
    if not isinstance(value, tf.Variable):
      raise TypeError(f'expected a tf.Variable behind Keras variable {v.path}, '
                      f'got {type(value).__name__}; use the TensorFlow backend '
                      f'(KERAS_BACKEND=tensorflow).')
    variables.append(value)
  return variables


def output_shape(model, input_event_shape):
  """Builds `model` on a batch of one and returns its output's event shape."""
  dtype = getattr(model, 'compute_dtype', None) or 'float32'
  out = model(tf.zeros((1,) + tuple(input_event_shape), dtype=dtype),
              training=False)
  return tuple(out.shape[1:])


def call(model, inputs, training):
  """Calls `model` in its compute dtype (mixed precision) with `training`."""
  dtype = getattr(model, 'compute_dtype', None)
  if dtype is not None and dtype != inputs.dtype:
    inputs = tf.cast(inputs, dtype)
  return model(inputs, training=training)
