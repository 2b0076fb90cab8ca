"""Tests of tfp_realnvp/data/sources.py: `load_images` from every source, with labels."""

import os

import numpy as np
import pytest
from data_testlib import idx_folder
from data_testlib import write_image

from tfp_realnvp.data import sources

DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'


def fail_download(*args, **kwargs):
  raise ConnectionError('no network in this test')


@pytest.fixture
def no_download(monkeypatch, tmp_path):
  """Makes tensorflow_datasets fail at once and hides Debian's Fashion-MNIST."""
  import tensorflow_datasets as tfds
  monkeypatch.setattr(tfds, 'load', fail_download)
  monkeypatch.setattr(sources, 'DEBIAN_FASHION_MNIST_DIR', str(tmp_path / 'absent'))


# IDX folders.


@pytest.mark.parametrize('compress', [False, True])
def test_load_images_reads_an_idx_folder_with_labels(tmp_path, compress):
  arrays = idx_folder(tmp_path, seed=1, compress=compress)
  data = sources.load_images('mnist', data_dir=tmp_path)
  np.testing.assert_array_equal(data.train, arrays['train'][..., None])
  np.testing.assert_array_equal(data.test, arrays['test'][..., None])
  np.testing.assert_array_equal(data.train_labels, arrays['train_labels'])
  np.testing.assert_array_equal(data.test_labels, arrays['test_labels'])
  assert data.train.dtype == np.uint8 and data.train_labels.dtype == np.int32
  assert (data.num_levels, data.name, data.source) == (256, 'mnist', str(tmp_path))
  largest = max(arrays['train_labels'].max(), arrays['test_labels'].max())
  assert data.num_classes == largest + 1
  assert data.class_names == tuple(str(k) for k in range(largest + 1))
  assert data.image_shape == (6, 5, 1)


def test_load_images_without_label_files_has_no_labels(tmp_path):
  idx_folder(tmp_path, seed=2, labels=False)
  data = sources.load_images('kmnist', data_dir=tmp_path, max_examples=5)
  assert not data.has_labels and data.train.shape == (5, 6, 5, 1)
  assert data.train_labels is data.test_labels is data.num_classes is data.class_names is None


def test_max_examples_keeps_the_labels_of_the_images_kept(tmp_path):
  arrays = idx_folder(tmp_path, seed=3)
  data = sources.load_images('mnist', data_dir=tmp_path, max_examples=3)
  np.testing.assert_array_equal(data.train_labels, arrays['train_labels'][:3])
  np.testing.assert_array_equal(data.test_labels, arrays['test_labels'][:3])


def test_load_images_raises_on_a_corrupt_idx_file_in_the_folder(tmp_path):
  idx_folder(tmp_path, seed=2, compress=False)
  (tmp_path / 't10k-images-idx3-ubyte').write_bytes(b'not an idx file')
  with pytest.raises(ValueError, match='t10k-images-idx3-ubyte is not an IDX file'):
    sources.load_images('mnist', data_dir=tmp_path)


def test_an_explicit_data_dir_that_cannot_be_read_is_an_error_naming_it(tmp_path):
  with pytest.raises(ValueError, match=f'{tmp_path} holds no images.*train-images-idx3'):
    sources.load_images('fashion_mnist', data_dir=tmp_path)
  (tmp_path / 'notes.txt').write_text('not an image')
  with pytest.raises(ValueError, match=f'{tmp_path} holds no images'):
    sources.load_images('fashion_mnist', data_dir=tmp_path)
  with pytest.raises(FileNotFoundError, match='nowhere does not exist'):
    sources.load_images('kmnist', data_dir=tmp_path / 'nowhere')
  with pytest.raises(ValueError, match='notes.txt is a file but not a .npz file'):
    sources.load_images('kmnist', data_dir=tmp_path / 'notes.txt')


# Debian's Fashion-MNIST.


@pytest.mark.skipif(not os.path.isdir(DEBIAN_DIR),
                    reason=f'{DEBIAN_DIR} is absent (apt-get install -y dataset-fashion-mnist)')
def test_debian_fashion_mnist_loads_with_its_labels_without_data_dir(monkeypatch):
  import tensorflow_datasets as tfds
  monkeypatch.setattr(tfds, 'load', fail_download)
  data = sources.load_images('fashion_mnist')
  assert data.train.shape == (60000, 28, 28, 1)
  assert data.test.shape == (10000, 28, 28, 1)
  assert data.train.dtype == data.test.dtype == np.uint8
  assert data.num_levels == 256 and data.source == DEBIAN_DIR
  assert data.train.max() == 255 and 0.1 < data.train.mean() / 255 < 0.5
  # Fashion-MNIST has 6000 training and 1000 test images of each of its 10 classes.
  assert data.num_classes == 10
  np.testing.assert_array_equal(np.bincount(data.train_labels), [6000] * 10)
  np.testing.assert_array_equal(np.bincount(data.test_labels), [1000] * 10)
  assert data.class_names[data.train_labels[0]] == 'Ankle boot'
  assert data.class_names == sources.FASHION_MNIST_CLASS_NAMES
  # Trousers are taller than wide: their mean image is darker at the sides than sandals'.
  trousers = data.train[data.train_labels == 1].mean(axis=0)[:, :, 0]
  bags = data.train[data.train_labels == 8].mean(axis=0)[:, :, 0]
  assert trousers[:, :5].mean() < bags[:, :5].mean()


def test_fashion_mnist_looks_in_the_debian_folder_first(monkeypatch, tmp_path, no_download):
  arrays = idx_folder(tmp_path, seed=3)
  monkeypatch.setattr(sources, 'DEBIAN_FASHION_MNIST_DIR', str(tmp_path))
  data = sources.load_images('fashion_mnist')
  np.testing.assert_array_equal(data.train[..., 0], arrays['train'])
  np.testing.assert_array_equal(data.train_labels, arrays['train_labels'])
  assert data.source == str(tmp_path)
  assert data.class_names == sources.FASHION_MNIST_CLASS_NAMES and data.num_classes == 10


# tensorflow-datasets.


@pytest.mark.parametrize('name', ['mnist', 'fashion_mnist'])
def test_failed_download_explains_local_files(name, no_download):
  with pytest.raises(RuntimeError) as info:
    sources.load_images(name)
  message = str(info.value)
  for needed in ['download failed', 'no network in this test', 'data_dir=',
                 'train-images-idx3-ubyte', 'x_train', 'x_test', '.npz', 'PNG/JPEG',
                 'apt-get install -y dataset-fashion-mnist']:
    assert needed in message
  assert isinstance(info.value.__cause__, ConnectionError)


def test_tensorflow_datasets_labels_and_class_names(monkeypatch, tmp_path):
  # tfds's mock_data makes random examples from the dataset's own feature spec, offline.
  import tensorflow_datasets as tfds
  monkeypatch.setattr(sources, 'DEBIAN_FASHION_MNIST_DIR', str(tmp_path / 'absent'))
  with tfds.testing.mock_data(num_examples=6):
    data = sources.load_images('fashion_mnist')
    _, info = tfds.load('fashion_mnist', split='train', with_info=True)
    expected = [example['label'] for example in tfds.load(
        'fashion_mnist', split='test', shuffle_files=False).as_numpy_iterator()]
  assert data.source == 'tensorflow_datasets'
  assert data.train.shape == (6, 28, 28, 1) and data.test.shape == (6, 28, 28, 1)
  assert data.class_names == tuple(info.features['label'].names)
  assert data.class_names[9] == 'Ankle boot' and data.num_classes == 10
  np.testing.assert_array_equal(data.test_labels, expected)
  assert data.train_labels.dtype == np.int32


# scikit-learn's digits.


def test_digits_have_17_levels_a_fixed_split_and_their_targets():
  from sklearn import datasets
  data = sources.load_images('digits')
  assert data.train.shape == (1500, 8, 8, 1) and data.test.shape == (297, 8, 8, 1)
  assert data.num_levels == 17 and data.train.dtype == np.uint8
  assert data.train.max() == 16
  digits = datasets.load_digits()
  np.testing.assert_array_equal(np.concatenate([data.train, data.test]),
                                digits.images[..., None])
  np.testing.assert_array_equal(np.concatenate([data.train_labels, data.test_labels]),
                                digits.target)
  assert data.num_classes == 10 and data.class_names == tuple('0123456789')
  small = sources.load_images('digits', max_examples=10)
  assert small.train.shape[0] == small.test.shape[0] == small.train_labels.shape[0] == 10


# .npz files.


@pytest.mark.parametrize('shape', [(7, 5, 4), (7, 5, 4, 3)])
def test_load_images_reads_an_npz_file(tmp_path, shape):
  rng = np.random.default_rng(4)
  x_train = rng.integers(0, 256, shape).astype(np.uint8)
  x_test = rng.integers(0, 256, (2,) + shape[1:]).astype(np.uint8)
  path = tmp_path / 'local.npz'
  np.savez(path, x_train=x_train, x_test=x_test)
  data = sources.load_images('cifar10', data_dir=str(path), max_examples=3)
  expected_train = x_train if len(shape) == 4 else x_train[..., None]
  np.testing.assert_array_equal(data.train, expected_train[:3])
  assert data.test.shape == (2,) + expected_train.shape[1:]
  assert data.source == str(path) and not data.has_labels


def test_load_images_reads_npz_labels(tmp_path):
  rng = np.random.default_rng(5)
  path = tmp_path / 'mine.npz'
  y_train, y_test = np.array([0, 3, 1, 3], np.uint8), np.array([2, 0], np.int64)
  np.savez(path, x_train=rng.integers(0, 256, (4, 3, 3)).astype(np.uint8),
           x_test=rng.integers(0, 256, (2, 3, 3)).astype(np.uint8), y_train=y_train,
           y_test=y_test)
  data = sources.load_images(data_dir=path)
  assert data.name == 'mine'
  np.testing.assert_array_equal(data.train_labels, y_train)
  np.testing.assert_array_equal(data.test_labels, y_test)
  assert data.num_classes == 4 and data.class_names == ('0', '1', '2', '3')


@pytest.mark.parametrize('arrays, message', [
    (dict(x_train=np.zeros((2, 3, 3), np.uint8)), r"lacks the arrays \['x_test'\]"),
    (dict(x_train=np.zeros((2, 3), np.uint8), x_test=np.zeros((2, 3), np.uint8)),
     'must have rank 4'),
    (dict(x_train=np.zeros((2, 3, 3)), x_test=np.zeros((2, 3, 3))), 'must hold integers'),
    (dict(x_train=np.full((2, 3, 3), 300), x_test=np.zeros((2, 3, 3), np.uint8)),
     r'values in \[0, 255\]'),
    (dict(x_train=np.zeros((2, 3, 3), np.uint8), x_test=np.zeros((1, 3, 3), np.uint8),
          y_train=np.zeros(2, np.uint8)), 'holds y_train but not y_test'),
    (dict(x_train=np.zeros((2, 3, 3), np.uint8), x_test=np.zeros((1, 3, 3), np.uint8),
          y_train=np.zeros(2), y_test=np.zeros(1)), r'\[y_train\] must hold integer'),
    (dict(x_train=np.zeros((2, 3, 3), np.uint8), x_test=np.zeros((1, 3, 3), np.uint8),
          y_train=np.zeros(3, np.uint8), y_test=np.zeros(1, np.uint8)),
     r'\[y_train\] must have shape \(2,\)'),
    (dict(x_train=np.zeros((2, 3, 3), np.uint8), x_test=np.zeros((1, 3, 3), np.uint8),
          y_train=np.zeros(2, np.int8), y_test=-np.ones(1, np.int8)),
     r'\[y_test\] must have values in \[0, '),
])
def test_load_images_rejects_bad_npz_arrays(tmp_path, arrays, message):
  path = tmp_path / 'bad.npz'
  np.savez(path, **arrays)
  with pytest.raises(ValueError, match=message):
    sources.load_images('mnist', data_dir=path)


# CelebA's crop.


def test_celeb_a_is_center_cropped_to_148_and_resized_to_64(tmp_path):
  faces = np.zeros((2, 218, 178, 3), np.uint8)
  faces[:, 35:35 + 148, 15:15 + 148] = 200
  path = tmp_path / 'celeb_a.npz'
  np.savez(path, x_train=faces, x_test=faces[:1])
  data = sources.load_images('celeb_a', data_dir=path)
  assert data.train.shape == (2, 64, 64, 3) and data.test.shape == (1, 64, 64, 3)
  assert np.all(data.train == 200)


def test_celeb_a_from_an_image_folder_gets_the_same_crop(tmp_path):
  face = np.zeros((218, 178, 3), np.uint8)
  face[35:35 + 148, 15:15 + 148] = 200
  for k in range(4):
    write_image(tmp_path / f'{k:06d}.png', face)
  data = sources.load_images('celeb_a', data_dir=tmp_path, test_fraction=0.25)
  assert data.train.shape == (3, 64, 64, 3) and data.test.shape == (1, 64, 64, 3)
  assert np.all(data.train == 200) and np.all(data.test == 200)


# Arguments.


@pytest.mark.parametrize('kwargs, message', [
    (dict(name='svhn'), "Unknown image dataset 'svhn'.*mnist, fashion_mnist"),
    (dict(), 'needs a dataset name, data_dir, or both'),
    (dict(name='digits', data_dir='/tmp'), 'data_dir is not used'),
    (dict(name='digits', image_size=16), r'image_size must be \(height, width\)'),
    (dict(name='digits', image_size=(16, 0)), 'two positive ints'),
    (dict(name='digits', max_examples=0), 'max_examples'),
    (dict(name='digits', crop_to_aspect_ratio=True), 'needs image_size'),
    (dict(name='digits', test_fraction=0.2), 'test_fraction only apply to a folder of image'),
    (dict(name='digits', channels=3, split_seed=1), 'split_seed, channels only apply'),
])
def test_load_images_rejects_bad_arguments(kwargs, message):
  with pytest.raises(ValueError, match=message):
    sources.load_images(**kwargs)


def test_folder_options_are_refused_for_an_idx_folder(tmp_path):
  idx_folder(tmp_path)
  with pytest.raises(ValueError, match=f'test_fraction only apply.*{tmp_path} has its own'):
    sources.load_images('mnist', data_dir=tmp_path, test_fraction=0.5)
