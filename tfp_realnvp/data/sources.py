"""Where image datasets come from: `load_images` and the sources it reads.

The sources: tensorflow-datasets names, Debian's Fashion-MNIST package, scikit-learn's
bundled digits, and local files (a folder of MNIST-layout IDX files, a `.npz` file, or a
folder of image files with optional class subfolders).
"""

import os

import numpy as np
import tensorflow as tf

from tfp_realnvp.data import _checks
from tfp_realnvp.data import idx
from tfp_realnvp.data import image_folder
from tfp_realnvp.data.image_data import ImageData
from tfp_realnvp.data.resize import center_crop_tensor
from tfp_realnvp.data.resize import resize_images
from tfp_realnvp.data.resize import resize_tensor

__all__ = ['IMAGE_DATASET_NAMES', 'load_images']

IMAGE_DATASET_NAMES = ('mnist', 'fashion_mnist', 'kmnist', 'cifar10', 'celeb_a', 'digits')
DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'
# The class names of Fashion-MNIST's labels 0-9 (Xiao, Rasul, Vollgraf, 2017,
# https://arxiv.org/abs/1708.07747), for the IDX files of Debian's package.
FASHION_MNIST_CLASS_NAMES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
                             'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
DIGITS_NUM_TRAIN = 1500
CELEB_A_CROP_SIZE = 148
CELEB_A_IMAGE_SIZE = (64, 64)
_FOLDER_OPTIONS = ('test_fraction', 'split_seed', 'channels')


def load_images(name=None, data_dir=None, image_size=None, max_examples=None, *,
                crop_to_aspect_ratio=False, test_fraction=None, split_seed=None,
                channels=None):
  """Loads an image dataset as integer arrays, with its class labels when it has them.

  Where the images come from, in this order:

  1. `name='digits'`: scikit-learn's bundled `load_digits` (1797 images, 8x8x1,
     17 grey levels 0..16, labels 0-9). The first 1500 images in scikit-learn's order
     are the train split, the remaining 297 the test split.
  2. `data_dir` when given (then `name` only names the data, and selects CelebA's crop):
     * a `.npz` file with integer arrays `x_train` and `x_test` of shape `(N, H, W)` or
       `(N, H, W, C)` and values in [0, 255] (the layout of Keras's `mnist.npz`), and
       optionally integer label vectors `y_train` and `y_test` (both or neither);
     * a folder holding `train-images-idx3-ubyte` and `t10k-images-idx3-ubyte` (MNIST's
       layout; gzipped (`.gz`) or not, with `-` or `.` before `idx3`) and optionally the
       labels `train-labels-idx1-ubyte` and `t10k-labels-idx1-ubyte`;
     * any other folder: image files (PNG, JPEG, BMP, GIF; grey or colour), all at its
       top level (no labels) or all in class subfolders whose sorted names are the
       classes. A held-out split is drawn: in each class, `round(test_fraction * n)` of
       its `n` images, at random from `split_seed` (by default 0.1 and 0), are the test
       split; both splits are in a random order. See
       `tfp_realnvp.data.image_folder.read_image_folder`.
  3. `name='fashion_mnist'` without `data_dir`: Debian's `dataset-fashion-mnist` folder
     `/usr/share/datasets/fashion-mnist` when it exists (with its labels and class
     names).
  4. `tensorflow_datasets.load(name)`, splits `'train'` and `'test'`, with the label
     feature and its class names when the dataset has one (CelebA has none); this
     downloads the dataset unless it is already prepared in `~/tensorflow_datasets` (or
     `$TFDS_DATA_DIR`).

  Labels of local files are class indices; `num_classes` is then 1 + the largest label
  and the class names are `'0'`, `'1'`, ...; an image folder's class names are its
  subfolder names. Images from any source other than `digits` have 256 levels.
  `celeb_a` images are center-cropped to a 148x148 square (or the largest square that
  fits) and resized to 64x64 with area interpolation, as in the Real NVP paper.

  #### Examples

  ```python
  from tfp_realnvp import data
  fashion = data.load_images('fashion_mnist')            # offline from Debian's package
  fashion.class_names[fashion.train_labels[0]]           # 'Ankle boot'
  mine = data.load_images(data_dir='my_images/', image_size=(32, 32),
                          crop_to_aspect_ratio=True)     # a folder of PNG/JPEG files
  ```

  Args:
    name: One of `IMAGE_DATASET_NAMES` (`'mnist'`, `'fashion_mnist'`, `'kmnist'`,
      `'cifar10'`, `'celeb_a'`, `'digits'`), or None with `data_dir`: the data are then
      named after the file or folder.
    data_dir: Optional path (`str` or `os.PathLike`) of a `.npz` file or of a folder of
      IDX or image files. Not allowed with `'digits'`.
    image_size: Optional `(height, width)`; the images are then resized as by
      `resize_images`, after the `celeb_a` crop.
    max_examples: Optional positive `int`; each split keeps only its first
      `max_examples` images (for quick runs).
    crop_to_aspect_ratio: Python `bool`; with `image_size`, center-crop the images to
      its aspect ratio before resizing rather than stretch them.
    test_fraction: For an image folder: the share of each class held out for testing, in
      (0, 1); None means 0.1.
    split_seed: For an image folder: the `int` seed of the split; None means 0.
    channels: For an image folder: None to keep the files' channels (they must agree),
      1 to read every image as grey, 3 as RGB.

  Returns:
    An `ImageData`, with `train_labels`, `test_labels`, `num_classes` and `class_names`
    set when the source has labels and None otherwise.

  Raises:
    ValueError: for an unknown `name`, neither `name` nor `data_dir`, a malformed
      `image_size` or `max_examples`, `data_dir` with `'digits'`, an image-folder option
      with a source that has its own split, `crop_to_aspect_ratio` without `image_size`;
      a `data_dir` that holds no images or images that cannot be read or stacked (the
      message names the folder or files); local arrays of the wrong rank, dtype or
      range, or labels that do not match the images.
    FileNotFoundError: if `data_dir` does not exist, or an IDX folder lacks a file.
    RuntimeError: if tensorflow_datasets cannot load (download) the dataset; the
      message explains how to point `data_dir` at local files.
  """
  if name is not None and name not in IMAGE_DATASET_NAMES:
    raise ValueError(f'Unknown image dataset {name!r}; '
                     f'valid names are {", ".join(IMAGE_DATASET_NAMES)}.')
  if name is None and data_dir is None:
    raise ValueError('load_images needs a dataset name, data_dir, or both.')
  image_size = _checks.check_image_size(image_size)
  if crop_to_aspect_ratio and image_size is None:
    raise ValueError('crop_to_aspect_ratio=True needs image_size=(height, width).')
  if max_examples is not None:
    max_examples = _checks.check_positive_int(max_examples, 'max_examples')
  folder_options = dict(test_fraction=test_fraction, split_seed=split_seed,
                        channels=channels)
  folder_options = {key: value for key, value in folder_options.items() if value is not None}
  class_names = None
  if name == 'fashion_mnist' and data_dir is None and os.path.isdir(
      DEBIAN_FASHION_MNIST_DIR):
    data_dir = DEBIAN_FASHION_MNIST_DIR
    class_names = FASHION_MNIST_CLASS_NAMES
  if data_dir is not None:
    data_dir = os.fspath(data_dir)
    if name is None:
      name = os.path.splitext(os.path.basename(os.path.normpath(data_dir)))[0]

  num_levels = 256
  reads_image_folder = name != 'digits' and data_dir is not None and _is_image_folder(data_dir)
  if folder_options and not reads_image_folder:
    raise ValueError(
        f'{", ".join(folder_options)} only apply to a folder of image files; '
        f'{data_dir or name} has its own train/test split and channels.')
  if name == 'digits':
    if data_dir is not None:
      raise ValueError("data_dir is not used by 'digits' (scikit-learn bundles them).")
    arrays = _load_digits()
    num_levels, source = 17, 'sklearn.datasets.load_digits'
  elif reads_image_folder:
    folder = image_folder.read_image_folder(
        data_dir, image_size=image_size, crop_to_aspect_ratio=crop_to_aspect_ratio,
        max_examples=max_examples, preprocess=_celeb_a_crop if name == 'celeb_a' else None,
        **folder_options)
    arrays = (folder.train, folder.test, folder.train_labels, folder.test_labels)
    class_names, source = folder.class_names, data_dir
  elif data_dir is not None:
    arrays, source = _load_local(data_dir), data_dir
  else:
    arrays, class_names = _load_tfds(name, max_examples)
    source = 'tensorflow_datasets'

  train, test, train_labels, test_labels = arrays
  if max_examples is not None and not reads_image_folder:
    train, test = train[:max_examples], test[:max_examples]
    if train_labels is not None:
      train_labels, test_labels = train_labels[:max_examples], test_labels[:max_examples]
  if not reads_image_folder:  # the folder reader crops and resizes image by image
    if name == 'celeb_a':
      train, test = _crop_celeb_a_arrays(train), _crop_celeb_a_arrays(test)
    if image_size is not None:
      train, test = (resize_images(images, image_size, num_levels, crop_to_aspect_ratio)
                     for images in (train, test))
  if train_labels is None:
    class_names = None
  return ImageData(train=train, test=test, num_levels=num_levels, name=name, source=source,
                   train_labels=train_labels, test_labels=test_labels,
                   class_names=class_names)


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
      't10k-images-idx3-ubyte[.gz] (label files train-labels-idx1-ubyte[.gz] and '
      't10k-labels-idx1-ubyte[.gz] are optional);\n'
      '  - a .npz file with uint8 arrays x_train and x_test of shape (N, H, W) or '
      "(N, H, W, C) (the layout of Keras's mnist.npz), and optionally y_train and y_test;\n"
      '  - or a folder of PNG/JPEG images, optionally in one subfolder per class.\n'
      'Fashion-MNIST works offline after `apt-get install -y dataset-fashion-mnist`: '
      f"load_images('fashion_mnist') then reads {DEBIAN_FASHION_MNIST_DIR}. "
      "load_images('digits') needs no download. Datasets already prepared by "
      'tensorflow_datasets are read from ~/tensorflow_datasets or $TFDS_DATA_DIR.')


def _is_image_folder(path):
  """Whether `path` is a folder that does not hold MNIST-layout IDX image files."""
  if not os.path.isdir(path):
    return False
  names = idx.IDX_IMAGE_FILES['train'] + idx.IDX_IMAGE_FILES['test']
  return idx.find_idx_file(path, names) is None


def _load_digits():
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  images = digits.images.astype(np.uint8)[..., None]
  labels = digits.target
  return (images[:DIGITS_NUM_TRAIN], images[DIGITS_NUM_TRAIN:],
          labels[:DIGITS_NUM_TRAIN], labels[DIGITS_NUM_TRAIN:])


def _load_local(path):
  if os.path.isfile(path):
    if not path.endswith('.npz'):
      raise ValueError(f'data_dir {path} is a file but not a .npz file; pass a .npz file '
                       'or a folder of IDX or image files.')
    return _load_npz(path)
  if not os.path.isdir(path):
    raise FileNotFoundError(f'data_dir {path} does not exist.')
  return idx.read_idx_folder(path)


def _load_npz(path):
  with np.load(path) as arrays:
    missing = {'x_train', 'x_test'} - set(arrays.files)
    if missing:
      raise ValueError(f'{path} lacks the arrays {sorted(missing)}; it holds '
                       f'{arrays.files}, and needs x_train and x_test.')
    images = [idx.as_uint8_images(arrays[key], f'{path}[{key}]')
              for key in ('x_train', 'x_test')]
    present = [key for key in ('y_train', 'y_test') if key in arrays.files]
    if len(present) == 1:
      missing = 'y_test' if present == ['y_train'] else 'y_train'
      raise ValueError(f'{path} holds {present[0]} but not {missing}: labels come for both '
                       'splits or for neither.')
    if not present:
      return images[0], images[1], None, None
    labels = [arrays[key] for key in ('y_train', 'y_test')]
  for key, values, split in zip(('y_train', 'y_test'), labels, images):
    _checks.check_labels(values, len(split), np.iinfo(np.int32).max, f'{path}[{key}]')
  return images[0], images[1], labels[0], labels[1]


def _load_tfds(name, max_examples):
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    cap = '' if max_examples is None else f'[:{max_examples}]'
    splits, info = tfds.load(name, split=[f'train{cap}', f'test{cap}'], shuffle_files=False,
                             with_info=True)
    label = info.features['label'] if 'label' in info.features else None
    arrays = [_tfds_arrays(split, crop=name == 'celeb_a', labelled=label is not None)
              for split in splits]
  except Exception as err:  # pylint: disable=broad-except
    raise RuntimeError(download_help(name, err)) from err
  (train, train_labels), (test, test_labels) = arrays
  class_names = None if label is None else tuple(label.names)
  return (train, test, train_labels, test_labels), class_names


def _tfds_arrays(dataset, crop, labelled):
  def pick(example):
    return example['image'], (example['label'] if labelled else tf.zeros([], tf.int64))

  images, labels = [], []
  for image_batch, label_batch in dataset.map(pick).batch(1024).as_numpy_iterator():
    images.append(_crop_celeb_a_arrays(image_batch) if crop else image_batch)
    labels.append(label_batch)
  return np.concatenate(images), np.concatenate(labels) if labelled else None


def _celeb_a_crop(image):
  """The paper's CelebA preprocessing of images `(..., H, W, C)`: a central square, 64x64."""
  shape = tf.shape(image)
  side = tf.minimum(CELEB_A_CROP_SIZE, tf.minimum(shape[-3], shape[-2]))
  return resize_tensor(center_crop_tensor(image, side, side), CELEB_A_IMAGE_SIZE)


def _crop_celeb_a_arrays(images):
  if tuple(images.shape[1:3]) == CELEB_A_IMAGE_SIZE:
    return images
  return _celeb_a_crop(images).numpy()
