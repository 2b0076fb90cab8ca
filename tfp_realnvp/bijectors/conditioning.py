"""Class labels as the `conditional_input` of a class-conditional flow.

A class-conditional flow models `p(x | y)` for labels `y` in `{0, ..., K - 1}`. The labels
reach every coupling's s/t network, per call, through the keyword `conditional_input` (as
TFP's conditional bijectors take theirs):

```python
dist.log_prob(x, bijector_kwargs={'conditional_input': labels})
dist.sample(16, bijector_kwargs={'conditional_input': tf.fill([16], 3)})
```

Two forms are accepted, with one label per event (the labels' shape is the batch shape of
the events):

- integer labels, any integer dtype, shape `batch_shape`, values in `[0, K)`;
- one-hot (or any probability vector over the classes) float labels, shape
  `batch_shape + (K,)`, each row summing to 1.

Both become float32 one-hot rows of shape `batch_shape + (K,)`.
"""

import tensorflow as tf

__all__ = ['one_hot_labels']


def one_hot_labels(labels, num_classes, batch_shape, name, validate=True):
  """Validates `labels` (integer or one-hot) and returns float32 one-hot rows.

  Args:
    labels: integer labels of shape `batch_shape` or float rows of shape
      `batch_shape + (num_classes,)`.
    num_classes: K.
    batch_shape: the events' static batch shape (a `tf.TensorShape`, dimensions may be
      unknown): the labels' must match it.
    name: the bijector's name, for error messages.
    validate: check the values at run time (range of integers; rows of floats in [0, 1]
      summing to 1).

  Returns:
    A float32 tensor of shape `batch_shape + (num_classes,)`.

  Raises:
    ValueError: for a shape that fits neither form; `InvalidArgumentError` at run time for
      values out of range (with `validate`).
    TypeError: for labels that are neither integers nor floats.
  """
  if labels is None:
    raise ValueError(
        f'{name}: this flow is class-conditional (num_classes={num_classes}); pass the labels '
        f"per call, e.g. dist.log_prob(x, bijector_kwargs={{'conditional_input': labels}}).")
  labels = tf.convert_to_tensor(labels)
  batch_shape = tf.TensorShape(batch_shape)
  batch_rank = batch_shape.rank
  rank = labels.shape.rank
  if labels.dtype.is_integer:
    if rank != batch_rank or not labels.shape.is_compatible_with(batch_shape):
      raise ValueError(
          f'{name}: conditional_input of shape {tuple(labels.shape)} does not match the batch '
          f'shape {tuple(batch_shape)} of the input: integer labels have the batch shape, '
          f'one label per event.')
    labels = tf.cast(labels, tf.int32)
    if validate:
      labels = _with_checks(labels, [
          tf.debugging.assert_greater_equal(
              labels, 0, message=f'{name}: labels must be in [0, {num_classes}); found a '
                                 f'negative label'),
          tf.debugging.assert_less(
              labels, num_classes, message=f'{name}: labels must be in [0, {num_classes}); '
                                           f'found a label >= {num_classes}')])
    return tf.one_hot(labels, num_classes, dtype=tf.float32)
  if labels.dtype.is_floating:
    if (rank != batch_rank + 1 or labels.shape[-1] not in (None, num_classes)
        or not labels.shape[:-1].is_compatible_with(batch_shape)):
      raise ValueError(
          f'{name}: conditional_input of shape {tuple(labels.shape)} does not match the batch '
          f'shape {tuple(batch_shape)} of the input: one-hot labels have shape '
          f'batch_shape + ({num_classes},); integer labels have the batch shape.')
    labels = tf.cast(labels, tf.float32)
    if validate:
      labels = _with_checks(labels, [
          tf.debugging.assert_near(
              tf.reduce_sum(labels, -1), tf.ones([], tf.float32), atol=1e-3,
              message=f'{name}: one-hot labels must sum to 1 over the {num_classes} classes'),
          tf.debugging.assert_non_negative(
              labels, message=f'{name}: one-hot labels must be >= 0')])
    return labels
  raise TypeError(f'{name}: labels must be integers or float one-hot rows, got '
                  f'{labels.dtype.name}.')


def _with_checks(tensor, checks):
  with tf.control_dependencies(checks):
    return tf.identity(tensor)
