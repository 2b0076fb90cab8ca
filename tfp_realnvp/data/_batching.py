"""Reproducible streams of example indices, shared by the image and toy pipelines."""

import tensorflow as tf

ORDER_STREAM = 1
AUGMENT_STREAM = 2


def stream_key(seed, stream):
  """Returns the stateless seed (shape [2], int64) of one random stream of `seed`."""
  return tf.constant([seed, stream], dtype=tf.int64)


def check_pipeline_args(num_examples, batch_size, seed, num_passes, drop_remainder):
  """Raises `ValueError` for arguments that cannot make a useful pipeline."""
  if num_examples < 1:
    raise ValueError('The pipeline needs at least one example; got none.')
  if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
    raise ValueError(f'batch_size must be a positive int; got {batch_size!r}.')
  if not isinstance(seed, int) or isinstance(seed, bool) or not -2**63 <= seed < 2**63:
    raise ValueError(f'seed must be an int in the int64 range; got {seed!r}.')
  if num_passes is not None:
    if not isinstance(num_passes, int) or isinstance(num_passes, bool) or num_passes < 1:
      raise ValueError(f'repeat must be None or a positive int; got {num_passes!r}.')
    if drop_remainder and num_examples * num_passes < batch_size:
      raise ValueError(
          f'batch_size={batch_size} exceeds the {num_examples * num_passes} examples of '
          f'{num_passes} pass(es) over the data, and drop_remainder=True would leave no batch.')


def index_batches(num_examples, batch_size, *, seed, shuffle, num_passes, drop_remainder):
  """Batches of example indices, numbered from 0 across passes.

  Pass `p` visits the examples in the order `argsort(stateless_uniform(seed, p))` when
  `shuffle`, in their stored order otherwise; batches may straddle two passes.

  Args:
    num_examples: Python `int`, the number of examples.
    batch_size: Python `int`.
    seed: Python `int`; the order of pass `p` depends only on `(seed, p)`.
    shuffle: Python `bool`.
    num_passes: Python `int`, or `None` for an endless stream.
    drop_remainder: Python `bool`, drop a last batch smaller than `batch_size`.

  Returns:
    A `tf.data.Dataset` of `(batch_number, indices)` pairs: an int64 scalar and an
    int64 vector of length `batch_size` (or less for a kept remainder).
  """
  if num_passes is None:
    passes = tf.data.Dataset.counter()
  else:
    passes = tf.data.Dataset.range(num_passes)
  order_key = stream_key(seed, ORDER_STREAM)

  def pass_indices(pass_number):
    if not shuffle:
      return tf.data.Dataset.range(num_examples)
    pass_key = tf.random.experimental.stateless_fold_in(order_key, pass_number)
    keys = tf.random.stateless_uniform(
        [num_examples], seed=pass_key, minval=None, maxval=None, dtype=tf.int64)
    return tf.data.Dataset.from_tensor_slices(tf.argsort(keys, stable=True))

  indices = passes.flat_map(pass_indices)
  return indices.batch(batch_size, drop_remainder=drop_remainder).enumerate()
