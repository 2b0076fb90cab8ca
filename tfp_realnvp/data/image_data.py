"""`ImageData`: the integer images of one dataset, split into train and test, with labels."""

import dataclasses

import numpy as np

from tfp_realnvp.data import _checks

__all__ = ['ImageData']


@dataclasses.dataclass(frozen=True, eq=False)
class ImageData:
  """Integer images of one dataset, split into train and test, and their class labels.

  Attributes:
    train: `uint8` array of shape `(N_train, H, W, C)`.
    test: `uint8` array of shape `(N_test, H, W, C)`.
    num_levels: Python `int`, the number of grey levels: pixel values are in
      `[0, num_levels - 1]` (256 for 8-bit images, 17 for scikit-learn's digits).
    name: Python `str`, the dataset name given to `load_images` (or the file or folder
      name when none was given).
    source: Python `str`, where the images came from: a folder or `.npz` path,
      `'tensorflow_datasets'` or `'sklearn.datasets.load_digits'`.
    train_labels: `int32` array of shape `(N_train,)` with values in
      `[0, num_classes - 1]`, or None when the source has no labels. Any integer array
      is accepted and stored as `int32`.
    test_labels: `int32` array of shape `(N_test,)`, or None; None exactly when
      `train_labels` is.
    num_classes: Python `int`, the number of classes, or None without labels. Defaults to
      `len(class_names)` when names are given, else to 1 + the largest label of either
      split.
    class_names: tuple of `num_classes` distinct `str`s, the name of each class index, or
      None without labels. Defaults to `('0', '1', ...)`.

  Raises:
    ValueError: if the images are not `uint8` of rank 4 with the same image shape or hold
      values of `num_levels` or more; if only one split has labels; if labels are not
      integer vectors of one label per image in `[0, num_classes - 1]`; if `num_classes`
      or `class_names` is given without labels or they disagree.
  """

  train: np.ndarray
  test: np.ndarray
  num_levels: int
  name: str
  source: str
  train_labels: np.ndarray | None = None
  test_labels: np.ndarray | None = None
  num_classes: int | None = None
  class_names: tuple[str, ...] | None = None

  def __post_init__(self):
    if not 2 <= self.num_levels <= 256:
      raise ValueError(f'num_levels must be in [2, 256]; got {self.num_levels}.')
    for split in ('train', 'test'):
      images = getattr(self, split)
      if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f'ImageData.{split} must be a uint8 array of shape (N, H, W, C); '
                         f'got {_checks.describe(images)}.')
      _checks.check_levels(images, self.num_levels, f'ImageData.{split}')
    if self.train.shape[1:] != self.test.shape[1:]:
      raise ValueError(f'Train images {self.train.shape[1:]} and test images '
                       f'{self.test.shape[1:]} differ in shape.')
    self._check_labels()

  def _check_labels(self):
    if self.train_labels is None and self.test_labels is None:
      if self.num_classes is not None or self.class_names is not None:
        raise ValueError('ImageData.num_classes and class_names need train_labels and '
                         'test_labels; got no labels.')
      return
    if self.train_labels is None or self.test_labels is None:
      given, missing = (('train', 'test') if self.test_labels is None else ('test', 'train'))
      raise ValueError(f'ImageData got {given}_labels but no {missing}_labels: a dataset has '
                       'labels for both splits or for neither.')
    num_classes, class_names = self.num_classes, self.class_names
    if class_names is not None:
      class_names = tuple(str(name) for name in class_names)
      if len(set(class_names)) != len(class_names):
        raise ValueError(f'ImageData.class_names must be distinct; got {class_names}.')
      if num_classes is None:
        num_classes = len(class_names)
    if num_classes is None:
      largest = [int(np.max(labels)) for labels in (self.train_labels, self.test_labels)
                 if np.size(labels) and np.issubdtype(np.asarray(labels).dtype, np.integer)]
      num_classes = max(largest, default=0) + 1
    num_classes = _checks.check_positive_int(num_classes, 'ImageData.num_classes')
    if class_names is None:
      class_names = tuple(str(k) for k in range(num_classes))
    elif len(class_names) != num_classes:
      raise ValueError(f'ImageData has num_classes={num_classes} but {len(class_names)} '
                       f'class_names: {class_names}.')
    for split in ('train', 'test'):
      labels = _checks.check_labels(getattr(self, f'{split}_labels'),
                                    len(getattr(self, split)), num_classes,
                                    f'ImageData.{split}_labels')
      object.__setattr__(self, f'{split}_labels', labels)
    object.__setattr__(self, 'num_classes', num_classes)
    object.__setattr__(self, 'class_names', class_names)

  @property
  def image_shape(self):
    """The event shape `(H, W, C)` of one image."""
    return tuple(self.train.shape[1:])

  @property
  def has_labels(self):
    """Whether the images come with class labels."""
    return self.train_labels is not None
