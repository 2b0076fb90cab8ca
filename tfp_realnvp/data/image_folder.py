"""A folder of image files (PNG, JPEG, ...) as a dataset, with class subfolders as labels."""

import collections
import dataclasses
import os

import numpy as np
import tensorflow as tf

from tfp_realnvp.data import _checks
from tfp_realnvp.data.resize import resize_tensor

__all__ = ['DEFAULT_SPLIT_SEED', 'DEFAULT_TEST_FRACTION', 'IMAGE_EXTENSIONS', 'FolderImages',
           'read_image_folder']

# The formats `tf.io.decode_image` reads (and Keras's `image_dataset_from_directory` lists).
IMAGE_EXTENSIONS = ('.bmp', '.gif', '.jpeg', '.jpg', '.png')
DEFAULT_TEST_FRACTION = 0.1
DEFAULT_SPLIT_SEED = 0
_EXAMPLES_IN_ERRORS = 3


@dataclasses.dataclass(frozen=True)
class FolderImages:
  """What `read_image_folder` returns: `uint8` images, int32 labels or None, class names."""

  train: np.ndarray
  test: np.ndarray
  train_labels: np.ndarray | None
  test_labels: np.ndarray | None
  class_names: tuple[str, ...] | None


def is_image_file(name):
  """Whether the file name has one of `IMAGE_EXTENSIONS` (in any case)."""
  return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_image_folder(folder):
  """The image files of `folder` and their class indices.

  Returns:
    `(paths, labels, class_names)`: the sorted image paths, an int32 vector of their
    class indices and the sorted class subfolder names, or `(paths, None, None)` for a
    folder of images without class subfolders.

  Raises:
    ValueError: if the folder holds no image, or images both at its top level and in
      subfolders.
  """
  entries = sorted(os.listdir(folder))
  top_level = [os.path.join(folder, e) for e in entries
               if is_image_file(e) and os.path.isfile(os.path.join(folder, e))]
  classes = {}
  for entry in entries:
    subfolder = os.path.join(folder, entry)
    if entry.startswith('.') or not os.path.isdir(subfolder):
      continue
    paths = sorted(os.path.join(root, name)
                   for root, dirs, names in os.walk(subfolder)
                   for name in names if is_image_file(name) and not name.startswith('.'))
    if paths:
      classes[entry] = paths
  if classes and top_level:
    raise ValueError(
        f'{folder} holds images both at its top level ({_examples(top_level, folder)}) and in '
        f'subfolders ({", ".join(classes)}): put every image in a class subfolder (the '
        'subfolder names are the labels), or none in subfolders (no labels).')
  if not classes and not top_level:
    raise ValueError(
        f'{folder} holds no images: expected image files ({", ".join(IMAGE_EXTENSIONS)}) '
        'in the folder or in class subfolders, or MNIST-layout IDX files '
        '(train-images-idx3-ubyte[.gz] and t10k-images-idx3-ubyte[.gz]).')
  if not classes:
    return top_level, None, None
  class_names = tuple(sorted(classes))
  paths = [path for name in class_names for path in classes[name]]
  labels = np.concatenate([np.full(len(classes[name]), k, np.int32)
                           for k, name in enumerate(class_names)])
  return paths, labels, class_names


def split_indices(labels, num_examples, test_fraction, seed):
  """Train and test indices: a stratified random split, each split in a random order.

  In each class (or among all examples without labels), `round(test_fraction * n)` of its
  `n` examples, chosen at random, go to the test split; both splits are then shuffled,
  all from `np.random.default_rng(seed)`.
  """
  rng = np.random.default_rng(seed)
  groups = ([np.arange(num_examples)] if labels is None
            else [np.flatnonzero(labels == k) for k in range(int(labels.max()) + 1)])
  train, test = [], []
  for group in groups:
    group = rng.permutation(group)
    num_test = int(np.floor(test_fraction * len(group) + 0.5))
    test.append(group[:num_test])
    train.append(group[num_test:])
  train, test = np.concatenate(train), np.concatenate(test)
  if not len(train) or not len(test):
    raise ValueError(
        f'test_fraction={test_fraction} of {num_examples} images leaves '
        f'{len(train)} for training and {len(test)} for testing; both need at least one.')
  return rng.permutation(train), rng.permutation(test)


def decode_images(paths, folder, channels=None, transform=None):
  """Decodes image files with `tf.io.decode_image` in a `tf.data` pipeline.

  Args:
    paths: list of file paths.
    folder: the folder they are in, for error messages.
    channels: None to keep each file's channels, or 1 (grey) or 3 (RGB) to convert.
    transform: Optional function applied to each decoded `uint8` image `Tensor`
      `(H, W, C)` inside the pipeline (e.g. a resize), returning one.

  Returns:
    A `uint8` array `(N, H, W, C)` (GIF files give their first frame).

  Raises:
    ValueError: naming the first file that cannot be decoded, or examples of the files
      if the images have different numbers of channels or sizes.
  """
  def decode(path):
    image = tf.io.decode_image(tf.io.read_file(path), channels=channels or 0,
                               dtype=tf.uint8, expand_animations=False)
    return image if transform is None else transform(image)

  dataset = tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string))
  dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  iterator = iter(dataset)
  images = []
  for path in paths:
    try:
      images.append(next(iterator).numpy())
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as err:
      reason = err.message.splitlines()[0].split('ParallelMapV2: ', 1)[-1]
      raise ValueError(f'{path} cannot be read as an image: {reason}') from None
  _check_same_shapes(images, paths, folder)
  return np.stack(images)


def _check_same_shapes(images, paths, folder):
  by_channels = collections.defaultdict(list)
  by_size = collections.defaultdict(list)
  for path, image in zip(paths, images):
    by_channels[image.shape[-1]].append(path)
    by_size[image.shape[:2]].append(path)
  if len(by_channels) > 1:
    counts = '; '.join(f'{count} channel(s): {_examples(some, folder)}'
                       for count, some in sorted(by_channels.items()))
    raise ValueError(f'The images of {folder} have different numbers of channels ({counts}). '
                     'Pass channels=1 to read every image as grey, or channels=3 as RGB.')
  if len(by_size) > 1:
    sizes = '; '.join(f'{height}x{width}: {_examples(some, folder)}'
                      for (height, width), some in sorted(by_size.items()))
    raise ValueError(f'The images of {folder} differ in size ({sizes}). Pass '
                     'image_size=(height, width) to resize them (and crop_to_aspect_ratio=True '
                     'to crop rather than stretch).')


def read_image_folder(folder, *, test_fraction=DEFAULT_TEST_FRACTION,
                      split_seed=DEFAULT_SPLIT_SEED, image_size=None,
                      crop_to_aspect_ratio=False, channels=None, max_examples=None,
                      preprocess=None):
  """Reads a folder of images as integer arrays, split into train and test.

  The folder holds image files (`.png`, `.jpg`, `.jpeg`, `.bmp`, `.gif`; grey or colour;
  decoded by `tf.io.decode_image`), either all at its top level (no labels) or all in
  class subfolders (at any depth below them), as for Keras's
  `image_dataset_from_directory`: the class names are the subfolder names sorted, and
  the label of an image is the index of its subfolder in that order. Files with other
  extensions and names starting with `.` are skipped.

  Held-out split: in each class, `round(test_fraction * n)` of its `n` images, chosen at
  random from `split_seed`, form the test split; both splits are then shuffled with the
  same generator, so the split and the order depend only on the file names and `split_seed`.

  Args:
    folder: path of the folder.
    test_fraction: float in (0, 1), the share of each class held out for testing.
    split_seed: Python `int` for NumPy's `default_rng`, which draws the split and the
      order.
    image_size: Optional `(height, width)`; every image is then resized as by
      `resize_images` while it is read (needed when the images differ in size).
    crop_to_aspect_ratio: with `image_size`, center-crop each image to the aspect ratio
      of `image_size` before resizing instead of stretching it.
    channels: None to keep the files' channels (they must all have the same number), 1
      to convert every image to grey, or 3 to RGB.
    max_examples: Optional positive `int`; only the first `max_examples` images of each
      split (in their shuffled order) are decoded.
    preprocess: Optional function applied to each decoded `uint8` image `Tensor`
      `(H, W, C)` before the resize, returning one (used for CelebA's crop).

  Returns:
    A `FolderImages`.

  Raises:
    FileNotFoundError: if `folder` is not a folder.
    ValueError: if the folder holds no image, images both at its top level and in
      subfolders, a file that cannot be decoded, images with different numbers of
      channels (without `channels`), or of different sizes (without `image_size`); or
      for bad arguments. Each message names the folder or the files.
  """
  folder = os.fspath(folder)
  if not os.path.isdir(folder):
    raise FileNotFoundError(f'{folder} is not a folder.')
  if (isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float))
      or not 0 < test_fraction < 1):
    raise ValueError(f'test_fraction must be a number in (0, 1); got {test_fraction!r}.')
  if not isinstance(split_seed, (int, np.integer)) or isinstance(split_seed, bool):
    raise ValueError(f'split_seed must be an int; got {split_seed!r}.')
  if channels not in (None, 1, 3):
    raise ValueError(f'channels must be None, 1 (grey) or 3 (RGB); got {channels!r}.')
  image_size = _checks.check_image_size(image_size)
  if crop_to_aspect_ratio and image_size is None:
    raise ValueError('crop_to_aspect_ratio=True needs image_size=(height, width).')
  if max_examples is not None:
    max_examples = _checks.check_positive_int(max_examples, 'max_examples')
  paths, labels, class_names = list_image_folder(folder)
  train, test = split_indices(labels, len(paths), test_fraction, split_seed)
  if max_examples is not None:
    train, test = train[:max_examples], test[:max_examples]
  selected = np.concatenate([train, test])
  selected_paths = [paths[i] for i in selected]

  def transform(image):
    if preprocess is not None:
      image = preprocess(image)
    if image_size is not None:
      image = resize_tensor(image, image_size, crop_to_aspect_ratio=crop_to_aspect_ratio)
    return image

  images = decode_images(selected_paths, folder, channels, transform)
  return FolderImages(
      train=images[:len(train)], test=images[len(train):],
      train_labels=None if labels is None else labels[train],
      test_labels=None if labels is None else labels[test],
      class_names=class_names)


def _examples(paths, folder):
  shown = ', '.join(os.path.relpath(p, folder) for p in paths[:_EXAMPLES_IN_ERRORS])
  more = len(paths) - _EXAMPLES_IN_ERRORS
  return shown + (f' and {more} more' if more > 0 else '')
