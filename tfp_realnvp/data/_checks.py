"""Argument checks shared by the image sources, the resizing and the pipelines."""

import numpy as np


def check_image_size(image_size):
  """Returns `image_size` as `(height, width)` of Python ints, or None."""
  if image_size is None:
    return None
  try:
    height, width = image_size
  except (TypeError, ValueError):
    raise ValueError(f'image_size must be (height, width); got {image_size!r}.') from None
  if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
             for s in (height, width)):
    raise ValueError(f'image_size must be two positive ints; got {image_size!r}.')
  return int(height), int(width)


def check_integer_images(images, what):
  """Returns `images` as a numpy array after checking it is integer and of rank 4."""
  images = np.asarray(images)
  if images.ndim != 4:
    raise ValueError(f'{what} must have rank 4, (N, H, W, C); got shape {images.shape}.')
  if not np.issubdtype(images.dtype, np.integer):
    raise ValueError(f'{what} must hold integers; got dtype {images.dtype}.')
  return images


def check_levels(images, num_levels, what):
  """Raises `ValueError` unless every value of `images` is in `[0, num_levels - 1]`."""
  if images.size and (images.min() < 0 or images.max() >= num_levels):
    raise ValueError(f'{what} must have values in [0, {num_levels - 1}] '
                     f'(num_levels={num_levels}); got [{images.min()}, {images.max()}].')


def check_labels(labels, num_examples, num_classes, what):
  """Returns `labels` as an int32 numpy vector after checking shape, dtype and range.

  Args:
    labels: array-like of integer class indices, one per example.
    num_examples: the number of examples the labels belong to.
    num_classes: Python `int`; every label must be in `[0, num_classes - 1]`.
    what: how the error messages name `labels`.

  Raises:
    ValueError: if `labels` is not a vector of `num_examples` integers (booleans and
      floats are refused) in `[0, num_classes - 1]`.
  """
  labels = np.asarray(labels)
  if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f'{what} must hold integer class indices; got dtype {labels.dtype}.')
  if labels.shape != (num_examples,):
    raise ValueError(f'{what} must have shape ({num_examples},), one label per image; '
                     f'got shape {labels.shape}.')
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise ValueError(f'{what} must have values in [0, {num_classes - 1}] '
                     f'(num_classes={num_classes}); got [{labels.min()}, {labels.max()}].')
  return labels.astype(np.int32)


def check_positive_int(value, what):
  """Raises `ValueError` unless `value` is a positive Python or numpy int (not a bool)."""
  if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
    raise ValueError(f'{what} must be a positive int; got {value!r}.')
  return int(value)


def describe(value):
  """A short description of `value` for error messages."""
  if isinstance(value, np.ndarray):
    return f'{value.dtype} array of shape {value.shape}'
  return type(value).__name__
