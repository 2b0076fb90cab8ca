"""IDX files, the format of MNIST, and folders of them in MNIST's layout."""

import gzip
import os

import numpy as np

from tfp_realnvp.data import _checks

__all__ = ['IDX_IMAGE_FILES', 'IDX_LABEL_FILES', 'read_idx', 'read_idx_folder']

_IDX_DTYPES = {0x08: '>u1', 0x09: '>i1', 0x0B: '>i2', 0x0C: '>i4', 0x0D: '>f4', 0x0E: '>f8'}


def _file_names(prefix, kind):
  names = []
  for separator in ('-', '.'):
    names += [f'{prefix}{separator}{kind}-ubyte', f'{prefix}{separator}{kind}-ubyte.gz']
  return tuple(names)


# The names MNIST, Fashion-MNIST and KMNIST are distributed under, gzipped or not.
IDX_IMAGE_FILES = {'train': _file_names('train-images', 'idx3'),
                   'test': _file_names('t10k-images', 'idx3')}
IDX_LABEL_FILES = {'train': _file_names('train-labels', 'idx1'),
                   'test': _file_names('t10k-labels', 'idx1')}


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


def find_idx_file(folder, names):
  """The path of the first of `names` that is a file in `folder`, or None."""
  for name in names:
    path = os.path.join(folder, name)
    if os.path.isfile(path):
      return path
  return None


def read_idx_folder(folder):
  """Reads the images, and the labels if present, of a folder in MNIST's layout.

  The folder holds `train-images-idx3-ubyte` and `t10k-images-idx3-ubyte`, and
  optionally `train-labels-idx1-ubyte` and `t10k-labels-idx1-ubyte`: gzipped (`.gz`)
  or not, with `-` or `.` before `idx` (the first of these names that exists is used).

  Args:
    folder: path of the folder.

  Returns:
    `(train, test, train_labels, test_labels)`: `uint8` images of shape `(N, H, W, C)`
    (rank-3 files get `C = 1`) and integer label vectors, or None for both labels when
    the folder has no label files.

  Raises:
    FileNotFoundError: if an image file is missing, or the labels of one split are
      there and those of the other are not.
    ValueError: if a file is not valid IDX, the images are not integers in [0, 255] of
      rank 3 or 4, or the labels are not a vector of one integer per image.
  """
  images, labels = {}, {}
  for split in ('train', 'test'):
    path = find_idx_file(folder, IDX_IMAGE_FILES[split])
    if path is None:
      raise FileNotFoundError(f'{folder} holds no {split} images: expected one of '
                              f'{", ".join(IDX_IMAGE_FILES[split])}.')
    images[split] = as_uint8_images(read_idx(path), path)
    labels[split] = find_idx_file(folder, IDX_LABEL_FILES[split])
  if (labels['train'] is None) != (labels['test'] is None):
    present = 'train' if labels['test'] is None else 'test'
    missing = 'test' if present == 'train' else 'train'
    raise FileNotFoundError(
        f'{folder} holds {present} labels ({os.path.basename(labels[present])}) but no '
        f'{missing} labels: expected one of {", ".join(IDX_LABEL_FILES[missing])}.')
  if labels['train'] is None:
    return images['train'], images['test'], None, None
  for split in ('train', 'test'):
    path = labels[split]
    values = read_idx(path)
    if values.shape != (len(images[split]),) or not np.issubdtype(values.dtype, np.integer):
      raise ValueError(f'{path} must hold one integer label per {split} image, '
                       f'{len(images[split])}; it holds a {_checks.describe(values)}.')
    labels[split] = values
  return images['train'], images['test'], labels['train'], labels['test']


def as_uint8_images(images, what):
  """`images` of shape `(N, H, W)` or `(N, H, W, C)` and values in [0, 255] as `uint8` rank 4."""
  images = np.asarray(images)
  if images.ndim == 3:
    images = images[..., None]
  images = _checks.check_integer_images(images, what)
  _checks.check_levels(images, 256, what)
  return images.astype(np.uint8)
