"""Every private TensorFlow, TFP and Keras hook this package relies on, in one place.

Each function here reaches into an internal API of a pinned release (TensorFlow 2.21,
TensorFlow Probability 0.25, Keras 3.15). `tests/test_compat.py` exercises each one, so an
upgrade that removes or changes a hook fails there, with its name, rather than deep inside a
flow.
"""

import contextlib

import tensorflow as tf

__all__ = [
    'bijector_name_scope',
    'bump_mirrored_collective_keys',
    'could_possibly_record',
    'in_xla_context',
    'kernel_label_map',
    'keras_sublayers',
    'keras_variable_backing',
]


def bijector_name_scope(bijector, name):
  """TFP's name scope of a bijector method, with its parameter assertions.

  `tfb.Bijector._name_and_control_scope` is what TFP's own public methods open: the
  bijector's name scope and, with `validate_args`, the control dependencies of
  `_parameter_control_dependencies`.
  """
  return bijector._name_and_control_scope(name)  # pylint: disable=protected-access


def could_possibly_record():
  """True when a `tf.GradientTape` (or forward accumulator) could record an op now."""
  from tensorflow.python.eager import record  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  return bool(record.could_possibly_record())


def keras_variable_backing(variable):
  """The `tf.Variable` behind a Keras 3 variable (TensorFlow backend).

  Keras 3 layers are not `tf.Module`s, so a bijector holding a Keras model reports no
  variables; storing the backing `tf.Variable`s makes `tf.Module` tracking, gradients,
  `tf.train.Checkpoint` and `tf.distribute` see them.
  """
  value = variable.value
  if not isinstance(value, tf.Variable):
    raise TypeError(
        f'expected a tf.Variable behind Keras variable {variable.path}, got '
        f'{type(value).__name__}; use the TensorFlow backend (KERAS_BACKEND=tensorflow).')
  return value


def bump_mirrored_collective_keys(step=100000):
  """Moves `MirroredStrategy`'s class-wide base of collective instance keys.

  TensorFlow numbers the collective operations of every `MirroredStrategy` from one
  class-wide base, so a second strategy in the same process reuses the first one's keys and
  its all-reduces fail ("Shape mismatch in the collective instance"). TensorFlow's own tests
  move the base between strategies; returns False when the attribute is gone.
  """
  cls = tf.distribute.MirroredStrategy
  if not hasattr(cls, '_collective_key_base'):
    return False
  cls._collective_key_base += step  # pylint: disable=protected-access
  return True


def kernel_label_map(graph, labels):
  """Context in which ops built in `graph` get the given kernel labels (op type -> label)."""
  if graph is None:
    return contextlib.nullcontext()
  return graph._kernel_label_map(labels)  # pylint: disable=protected-access


def in_xla_context(graph):
  """True if `graph` (or a graph it is nested in) is compiled by XLA."""
  from tensorflow.python.ops import control_flow_util  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  return bool(control_flow_util.GraphOrParentsInXlaContext(graph))


def keras_sublayers(model):
  """Every layer inside a Keras 3 model, nested ones included (and the model itself)."""
  return list(model._flatten_layers(include_self=True, recursive=True))  # pylint: disable=protected-access
