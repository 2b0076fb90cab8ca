"""Image datasets as integer arrays, their dequantization and `tf.data` pipelines."""

import dataclasses
import gzip
import os

import numpy as np
import tensorflow as tf

from tfp_realnvp.data import _batching

__all__ = [
    'IMAGE_DATASET_NAMES',
    'ImageData',
    'dequantize',
    'dequantize_tf',
    'image_pipeline',
    'load_images',
    'read_idx',
    'resize_images',
]

IMAGE_DATASET_NAMES = ('mnist', 'fashion_mnist', 'kmnist', 'cifar10', 'celeb_a', 'digits')
DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'
DIGITS_NUM_TRAIN = 1500
CELEB_A_CROP_SIZE = 148
CELEB_A_IMAGE_SIZE = (64, 64)

_IDX_DTYPES = {0x08: '>u1', 0x09: '>i1', 0x0B: '>i2', 0x0C: '>i4', 0x0D: '>f4', 0x0E: '>f8'}
_IDX_IMAGE_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-images-idx3-ubyte.gz',
              'train-images.idx3-ubyte', 'train-images.idx3-ubyte.gz'),
    'test': ('t10k-images-idx3-ubyte', 't10k-images-idx3-ubyte.gz',
             't10k-images.idx3-ubyte', 't10k-images.idx3-ubyte.gz'),
}
# u is kept this far from 0 and 1 so that floor(x * num_levels) == k holds in float32.
_NOISE_MARGIN = 2.0**-12
_RESIZE_CHUNK = 4096


@dataclasses.dataclass(frozen=True, eq=False)
class ImageData:
  """Integer images of one dataset, split into train and test.

  Attributes:
    train: `uint8` array of shape `(N_train, H, W, C)`.
    test: `uint8` array of shape `(N_test, H, W, C)`.
    num_levels: Python `int`, the number of grey levels: pixel values are in
      `[0, num_levels - 1]` (256 for 8-bit images, 17 for scikit-learn's digits).
    name: Python `str`, the dataset name given to `load_images`.
    source: Python `str`, where the images came from: a folder or `.npz` path,
      `'tensorflow_datasets'` or `'sklearn.datasets.load_digits'`.

  Raises:
    ValueError: if the arrays are not `uint8` of rank 4 with the same image shape, or
      hold values of `num_levels` or more.
  """

  train: np.ndarray
  test: np.ndarray
  num_levels: int
  name: str
  source: str

  def __post_init__(self):
    if not 2 <= self.num_levels <= 256:
      raise ValueError(f'num_levels must be in [2, 256]; got {self.num_levels}.')
    for split in ('train', 'test'):
      images = getattr(self, split)
      if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f'ImageData.{split} must be a uint8 array of shape (N, H, W, C); '
                         f'got {_describe(images)}.')
      _check_levels(images, self.num_levels, f'ImageData.{split}')
    if self.train.shape[1:] != self.test.shape[1:]:
      raise ValueError(f'Train images {self.train.shape[1:]} and test images '
                       f'{self.test.shape[1:]} differ in shape.')

  @property
  def image_shape(self):
    """The event shape `(H, W, C)` of one image."""
    return tuple(self.train.shape[1:])


def load_images(name, data_dir=None, image_size=None, max_examples=None):
  """Loads an image dataset as integer arrays.

  Where the images come from, in this order:

  1. `name='digits'`: scikit-learn's bundled `load_digits` (1797 images, 8x8x1,
     17 grey levels 0..16). The first 1500 images in scikit-learn's order are the
     train split, the remaining 297 the test split.
  2. `data_dir` when given: a folder of MNIST-layout IDX files or a `.npz` file (below).
  3. `name='fashion_mnist'` without `data_dir`: Debian's `dataset-fashion-mnist` folder
     `/usr/share/datasets/fashion-mnist` when it exists.
  4. `tensorflow_datasets.load(name)`, splits `'train'` and `'test'`, which downloads
     the dataset unless it is already prepared in `~/tensorflow_datasets` (or
     `$TFDS_DATA_DIR`).

  Local files for `data_dir`:

  * a folder holding `train-images-idx3-ubyte` and `t10k-images-idx3-ubyte`, gzipped
    (`.gz`) or not, with `-` or `.` before `idx3` (the first of these names that
    exists is used; label files are ignored);
  * a `.npz` file with integer arrays `x_train` and `x_test` of shape `(N, H, W)` or
    `(N, H, W, C)` and values in [0, 255] (the layout of Keras's `mnist.npz`).

  Images from any source other than `digits` have 256 levels. `celeb_a` images are
  center-cropped to a 148x148 square (or the largest square that fits) and resized to
  64x64 with area interpolation, as in the Real NVP paper.

  Args:
    name: One of `IMAGE_DATASET_NAMES`: `'mnist'`, `'fashion_mnist'`, `'kmnist'`,
      `'cifar10'`, `'celeb_a'`, `'digits'`.
    data_dir: Optional path (`str` or `os.PathLike`) of a folder of IDX files or of a
      `.npz` file. Not allowed with `'digits'`.
    image_size: Optional `(height, width)`; the images are then resized with
      `resize_images`, after the `celeb_a` crop.
    max_examples: Optional positive `int`; each split keeps only its first
      `max_examples` images (for quick runs).

  Returns:
    An `ImageData`.

  Raises:
    ValueError: for an unknown `name`, a malformed `image_size` or `max_examples`,
      `data_dir` with `'digits'`, or local files holding arrays of the wrong rank,
      dtype or range.
    FileNotFoundError: if `data_dir` does not exist or lacks the IDX files.
    RuntimeError: if tensorflow_datasets cannot load (download) the dataset; the
      message explains how to point `data_dir` at local files.
  """
  if name not in IMAGE_DATASET_NAMES:
    raise ValueError(f'Unknown image dataset {name!r}; '
                     f'valid names are {", ".join(IMAGE_DATASET_NAMES)}.')
  image_size = _check_image_size(image_size)
  if max_examples is not None and (not isinstance(max_examples, int) or
                                   isinstance(max_examples, bool) or max_examples < 1):
    raise ValueError(f'max_examples must be None or a positive int; got {max_examples!r}.')
  if name == 'fashion_mnist' and data_dir is None and os.path.isdir(
      DEBIAN_FASHION_MNIST_DIR):
    data_dir = DEBIAN_FASHION_MNIST_DIR

  num_levels = 256
  if name == 'digits':
    if data_dir is not None:
      raise ValueError("data_dir is not used by 'digits' (scikit-learn bundles them).")
    train, test = _load_digits()
    num_levels, source = 17, 'sklearn.datasets.load_digits'
  elif data_dir is not None:
    train, test = _load_local(os.fspath(data_dir))
    source = os.fspath(data_dir)
  else:
    train, test = _load_tfds(name, max_examples)
    source = 'tensorflow_datasets'

  if max_examples is not None:
    train, test = train[:max_examples], test[:max_examples]
  if name == 'celeb_a':
    train, test = _crop_celeb_a(train), _crop_celeb_a(test)
  if image_size is not None:
    train = resize_images(train, image_size, num_levels)
    test = resize_images(test, image_size, num_levels)
  return ImageData(train=train, test=test, num_levels=num_levels, name=name, source=source)


def read_idx(path):
  """Reads an IDX file (the format of MNIST), gzipped or not.

  Args:
    path: `str` or `os.PathLike`; gzip compression is detected from the content.

  Returns:
    A numpy array with the shape and element type stored in the file.

  Raises:
    ValueError: if the file is not valid gzip, its magic number is not an IDX one, or
      its data do not match the shape in its header.
  """
  path = os.fspath(path)
  with open(path, 'rb') as f:
    raw = f.read()
  if raw[:2] == b'\x1f\x8b':
    try:
      raw = gzip.decompress(raw)
    except (OSError, EOFError) as err:
      raise ValueError(f'{path} is a corrupt gzip file: {err}') from err
  if len(raw) < 4 or raw[:2] != b'\0\0' or raw[2] not in _IDX_DTYPES:
    raise ValueError(f'{path} is not an IDX file: its magic number 0x{raw[:4].hex()} '
                     'is not 0x0000TTRR (TT a type code in 08, 09, 0b-0e, RR the rank).')
  dtype = np.dtype(_IDX_DTYPES[raw[2]])
  header_size = 4 + 4 * raw[3]
  if len(raw) < header_size:
    raise ValueError(f'{path} is not a complete IDX file: its header is cut short.')
  shape = tuple(int(d) for d in np.frombuffer(raw, '>u4', count=raw[3], offset=4))
  expected = int(np.prod(shape)) * dtype.itemsize
  if len(raw) - header_size != expected:
    raise ValueError(f'{path} is truncated or corrupt: its header gives shape {shape} '
                     f'({expected} bytes) but {len(raw) - header_size} bytes follow.')
  data = np.frombuffer(raw, dtype, offset=header_size).reshape(shape)
  return data.astype(dtype.newbyteorder('='))


def resize_images(images, image_size, num_levels=256):
  """Resizes integer images, keeping them integers in `[0, num_levels - 1]`.

  Uses area interpolation when both sides shrink or stay, bilinear interpolation with
  antialiasing otherwise; the results are rounded to the nearest integer and clipped.

  Args:
    images: Integer array of shape `(N, H, W, C)`.
    image_size: `(height, width)` of the result.
    num_levels: Python `int`, the number of grey levels of `images`.

  Returns:
    A `uint8` array of shape `(N, height, width, C)`.

  Raises:
    ValueError: if `images` is not an integer array of rank 4 with values in
      `[0, num_levels - 1]`, or `image_size` is not two positive ints.
  """
  image_size = _check_image_size(image_size)
  images = _check_integer_images(images, 'images')
  _check_levels(images, num_levels, 'images')
  shrinks = image_size[0] <= images.shape[1] and image_size[1] <= images.shape[2]
  method = 'area' if shrinks else 'bilinear'
  chunks = []
  for start in range(0, len(images), _RESIZE_CHUNK):
    chunk = tf.cast(images[start:start + _RESIZE_CHUNK], tf.float32)
    resized = tf.image.resize(chunk, image_size, method=method, antialias=not shrinks)
    chunks.append(np.clip(np.rint(resized.numpy()), 0, num_levels - 1).astype(np.uint8))
  if not chunks:
    return np.zeros((0,) + image_size + images.shape[3:], np.uint8)
  return np.concatenate(chunks)


def dequantize(images, num_levels, seed_or_generator):
  """Uniform dequantization in numpy: `x = (k + u) / num_levels`, `u ~ U[0, 1)`.

  `u` is kept 2**-12 away from 0 and 1, so that `floor(x * num_levels) == k` holds
  exactly in float32 and `x` lies in `[0, 1)`.

  Args:
    images: Integer array (any shape) of values `k` in `[0, num_levels - 1]`.
    num_levels: Python `int`, the number of grey levels.
    seed_or_generator: Anything `np.random.default_rng` accepts: an `int` seed or a
      `np.random.Generator` (which is advanced).

  Returns:
    A float32 array of the shape of `images`, with values in `[0, 1)`.

  Raises:
    ValueError: if `images` is not integer or holds values outside the levels.
  """
  images = np.asarray(images)
  if not np.issubdtype(images.dtype, np.integer):
    raise ValueError(f'images must be integers; got dtype {images.dtype}.')
  _check_levels(images, num_levels, 'images')
  rng = np.random.default_rng(seed_or_generator)
  noise = np.clip(rng.random(images.shape, dtype=np.float32),
                  _NOISE_MARGIN, 1 - _NOISE_MARGIN)
  return (images.astype(np.float32) + noise) / np.float32(num_levels)


def dequantize_tf(images, num_levels, seed):
  """Uniform dequantization in TensorFlow, with stateless noise; see `dequantize`.

  Args:
    images: Integer `Tensor` of values `k` in `[0, num_levels - 1]` (not checked).
    num_levels: Python `int`, the number of grey levels.
    seed: Stateless seed, an int32 or int64 `Tensor` of shape `[2]`; the same seed
      gives the same noise.

  Returns:
    A float32 `Tensor` of the shape of `images`, with values in `[0, 1)`.
  """
  noise = tf.random.stateless_uniform(
      tf.shape(images), seed=seed, minval=_NOISE_MARGIN, maxval=1 - _NOISE_MARGIN)
  return (tf.cast(images, tf.float32) + noise) / float(num_levels)


def image_pipeline(images, num_levels, batch_size, *, training=True, seed=0,
                   horizontal_flip=False, repeat=None, drop_remainder=True, prefetch=True):
  """A `tf.data.Dataset` of dequantized float32 image batches in `[0, 1)`.

  Training (`training=True`): each pass over the data visits the images in a fresh
  random order; with `horizontal_flip`, each image is mirrored left-right with
  probability 1/2; each pixel is dequantized with `dequantize_tf`. Evaluation
  (`training=False`): stored order, no flips, and dequantization noise that is still
  drawn from `seed`, so that an evaluation is reproducible.

  Every random choice is stateless: the order of pass `p` depends only on `(seed, p)`,
  and the flips and noise of batch `b` (counted from 0 across passes) only on
  `(seed, b)`. The same arguments therefore give the same batches, whatever the global
  TensorFlow seed.

  Args:
    images: Integer array of shape `(N, H, W, C)`, e.g. `ImageData.train`.
    num_levels: Python `int`, the number of grey levels of `images`.
    batch_size: Python `int`.
    training: Python `bool`, see above.
    seed: Python `int`.
    horizontal_flip: Python `bool`, random left-right flips (training only; suits
      natural images, not digits).
    repeat: Number of passes over the data, or `None`: endless when training, one
      pass otherwise. Batches may straddle two passes.
    drop_remainder: Python `bool`, drop the last batch if it is smaller than
      `batch_size` (so batches have a static shape). Pass `False` to evaluate every image.
    prefetch: Python `bool`, prefetch batches (`tf.data.AUTOTUNE`).

  Returns:
    A `tf.data.Dataset` of float32 `Tensor`s of shape `(batch_size, H, W, C)`.

  Raises:
    ValueError: if `images` is not an integer array of rank 4 with values in
      `[0, num_levels - 1]`, or `batch_size`, `seed` or `repeat` is invalid.
  """
  images = _check_integer_images(images, 'images')
  _check_levels(images, num_levels, 'images')
  num_passes = repeat if repeat is not None or training else 1
  _batching.check_pipeline_args(len(images), batch_size, seed, num_passes, drop_remainder)
  flip = training and horizontal_flip
  augment_key = _batching.stream_key(seed, _batching.AUGMENT_STREAM)
  images = tf.constant(images)

  def make_batch(batch_number, indices):
    batch = tf.gather(images, indices)
    key = tf.random.experimental.stateless_fold_in(augment_key, batch_number)
    flip_key, noise_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    if flip:
      flips = tf.random.stateless_uniform([tf.shape(batch)[0]], seed=flip_key) < 0.5
      batch = tf.where(flips[:, None, None, None], tf.reverse(batch, axis=[2]), batch)
    return dequantize_tf(batch, num_levels, noise_key)

  dataset = _batching.index_batches(
      len(images), batch_size, seed=seed, shuffle=training, num_passes=num_passes,
      drop_remainder=drop_remainder)
  dataset = dataset.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return dataset.prefetch(tf.data.AUTOTUNE) if prefetch else dataset


def download_help(name, error):
  """The message of the `RuntimeError` raised when tensorflow_datasets fails."""
  detail = f'{type(error).__name__}: {error}'
  if len(detail) > 600:
    detail = detail[:600] + '...'
  return (
      f"tensorflow_datasets could not load '{name}'; the download failed (does this "
      f'machine have internet access?). The error was: {detail}\n'
      f"To use local files, pass data_dir= to load_images('{name}', data_dir=...):\n"
      '  - a folder of MNIST-layout IDX files: train-images-idx3-ubyte[.gz] and '
      't10k-images-idx3-ubyte[.gz] (label files are not needed);\n'
      '  - or a .npz file with uint8 arrays x_train and x_test of shape (N, H, W) or '
      "(N, H, W, C) (the layout of Keras's mnist.npz).\n"
      'Fashion-MNIST works offline after `apt-get install -y dataset-fashion-mnist`: '
      f"load_images('fashion_mnist') then reads {DEBIAN_FASHION_MNIST_DIR}. "
      "load_images('digits') needs no download. Datasets already prepared by "
      'tensorflow_datasets are read from ~/tensorflow_datasets or $TFDS_DATA_DIR.')


def _load_digits():
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  images = datasets.load_digits().images.astype(np.uint8)[..., None]
  return images[:DIGITS_NUM_TRAIN], images[DIGITS_NUM_TRAIN:]


def _load_local(path):
  if os.path.isfile(path):
    if not path.endswith('.npz'):
      raise ValueError(f'data_dir {path} is a file but not a .npz file; pass a .npz file '
                       'or a folder of IDX files.')
    return _load_npz(path)
  if not os.path.isdir(path):
    raise FileNotFoundError(f'data_dir {path} does not exist.')
  return tuple(_read_idx_images(path, split) for split in ('train', 'test'))


def _read_idx_images(folder, split):
  for filename in _IDX_IMAGE_FILES[split]:
    path = os.path.join(folder, filename)
    if os.path.isfile(path):
      return _as_uint8_images(read_idx(path), path)
  raise FileNotFoundError(f'{folder} holds no {split} images: expected one of '
                          f'{", ".join(_IDX_IMAGE_FILES[split])}.')


def _load_npz(path):
  with np.load(path) as arrays:
    missing = {'x_train', 'x_test'} - set(arrays.files)
    if missing:
      raise ValueError(f'{path} lacks the arrays {sorted(missing)}; it holds '
                       f'{arrays.files}, and needs x_train and x_test.')
    return tuple(_as_uint8_images(arrays[key], f'{path}[{key}]')
                 for key in ('x_train', 'x_test'))


def _as_uint8_images(images, what):
  if images.ndim == 3:
    images = images[..., None]
  images = _check_integer_images(images, what)
  _check_levels(images, 256, what)
  return images.astype(np.uint8)


def _load_tfds(name, max_examples):
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    cap = '' if max_examples is None else f'[:{max_examples}]'
    splits = tfds.load(name, split=[f'train{cap}', f'test{cap}'], shuffle_files=False)
    return tuple(_tfds_images(split, crop=name == 'celeb_a') for split in splits)
  except Exception as err:  # pylint: disable=broad-except
    raise RuntimeError(download_help(name, err)) from err


def _tfds_images(dataset, crop):
  batches = dataset.map(lambda example: example['image']).batch(1024)
  return np.concatenate([_crop_celeb_a(batch) if crop else batch
                         for batch in batches.as_numpy_iterator()])


def _crop_celeb_a(images):
  height, width = images.shape[1:3]
  if (height, width) == CELEB_A_IMAGE_SIZE:
    return images
  side = min(CELEB_A_CROP_SIZE, height, width)
  top, left = (height - side) // 2, (width - side) // 2
  return resize_images(images[:, top:top + side, left:left + side], CELEB_A_IMAGE_SIZE)


def _check_image_size(image_size):
  if image_size is None:
    return None
  try:
    height, width = image_size
  except (TypeError, ValueError):
    raise ValueError(f'image_size must be (height, width); got {image_size!r}.') from None
  if not all(isinstance(s, (int, np.integer)) and s >= 1 for s in (height, width)):
    raise ValueError(f'image_size must be two positive ints; got {image_size!r}.')
  return int(height), int(width)


def _check_integer_images(images, what):
  images = np.asarray(images)
  if images.ndim != 4:
    raise ValueError(f'{what} must have rank 4, (N, H, W, C); got shape {images.shape}.')
  if not np.issubdtype(images.dtype, np.integer):
    raise ValueError(f'{what} must hold integers; got dtype {images.dtype}.')
  return images


def _check_levels(images, num_levels, what):
  if images.size and (images.min() < 0 or images.max() >= num_levels):
    raise ValueError(f'{what} must have values in [0, {num_levels - 1}] '
                     f'(num_levels={num_levels}); got [{images.min()}, {images.max()}].')


def _describe(value):
  if isinstance(value, np.ndarray):
    return f'{value.dtype} array of shape {value.shape}'
  return type(value).__name__
