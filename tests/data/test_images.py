"""Tests of tfp_realnvp/data/images.py: loading, resizing, dequantization, pipelines."""

import gzip
import os
import struct

import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp.data import images as images_lib

DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'


def write_idx(path, array, compress=False):
  type_code = {np.dtype(np.uint8): 0x08, np.dtype('>i4'): 0x0C}[array.dtype]
  header = struct.pack('>BBBB', 0, 0, type_code, array.ndim)
  header += struct.pack(f'>{array.ndim}I', *array.shape)
  content = header + array.tobytes()
  with open(path, 'wb') as f:
    f.write(gzip.compress(content) if compress else content)
  return path


def random_images(rng, shape, num_levels=256):
  return rng.integers(0, num_levels, shape).astype(np.uint8)


def idx_folder(folder, rng, compress=True):
  suffix = '.gz' if compress else ''
  train = random_images(rng, (12, 6, 5))
  test = random_images(rng, (4, 6, 5))
  write_idx(os.path.join(folder, 'train-images-idx3-ubyte' + suffix), train, compress)
  write_idx(os.path.join(folder, 't10k-images-idx3-ubyte' + suffix), test, compress)
  return train, test


def fail_download(*args, **kwargs):
  raise ConnectionError('no network in this test')


@pytest.fixture
def no_download(monkeypatch, tmp_path):
  """Makes tensorflow_datasets fail at once and hides Debian's Fashion-MNIST."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(tfds, 'load', fail_download)
  monkeypatch.setattr(images_lib, 'DEBIAN_FASHION_MNIST_DIR', str(tmp_path / 'absent'))


# IDX files.


@pytest.mark.parametrize('compress', [False, True])
def test_read_idx_round_trips(tmp_path, compress):
  rng = np.random.default_rng(0)
  array = random_images(rng, (3, 4, 5))
  np.testing.assert_array_equal(
      images_lib.read_idx(write_idx(tmp_path / 'a', array, compress)), array)
  labels = np.arange(-3, 4, dtype='>i4')
  read = images_lib.read_idx(write_idx(tmp_path / 'b', labels, compress))
  np.testing.assert_array_equal(read, labels)
  assert read.dtype == np.int32


def test_read_idx_rejects_a_bad_magic_number(tmp_path):
  path = tmp_path / 'bad'
  path.write_bytes(b'\x12\x34\x08\x03' + bytes(100))
  with pytest.raises(ValueError, match='not an IDX file.*magic number 0x12340803'):
    images_lib.read_idx(path)


def test_read_idx_rejects_a_truncated_file(tmp_path):
  path = write_idx(tmp_path / 'short', np.zeros((4, 3, 3), np.uint8))
  path.write_bytes(path.read_bytes()[:-5])
  with pytest.raises(ValueError, match=r'truncated or corrupt.*\(4, 3, 3\)'):
    images_lib.read_idx(path)


def test_read_idx_rejects_a_corrupt_gzip_file(tmp_path):
  path = write_idx(tmp_path / 'x.gz', np.zeros((4, 3, 3), np.uint8), compress=True)
  path.write_bytes(path.read_bytes()[:20])
  with pytest.raises(ValueError, match='corrupt gzip'):
    images_lib.read_idx(path)


@pytest.mark.parametrize('compress', [False, True])
def test_load_images_reads_an_idx_folder(tmp_path, compress):
  train, test = idx_folder(tmp_path, np.random.default_rng(1), compress)
  data = images_lib.load_images('mnist', data_dir=tmp_path)
  np.testing.assert_array_equal(data.train, train[..., None])
  np.testing.assert_array_equal(data.test, test[..., None])
  assert data.train.dtype == np.uint8
  assert (data.num_levels, data.name, data.source) == (256, 'mnist', str(tmp_path))
  assert data.image_shape == (6, 5, 1)


def test_load_images_names_the_missing_idx_files(tmp_path):
  with pytest.raises(FileNotFoundError, match='train-images-idx3-ubyte'):
    images_lib.load_images('kmnist', data_dir=tmp_path)
  with pytest.raises(FileNotFoundError, match='does not exist'):
    images_lib.load_images('kmnist', data_dir=tmp_path / 'nowhere')


def test_load_images_raises_on_a_corrupt_idx_file_in_the_folder(tmp_path):
  idx_folder(tmp_path, np.random.default_rng(2), compress=False)
  (tmp_path / 't10k-images-idx3-ubyte').write_bytes(b'not an idx file')
  with pytest.raises(ValueError, match='t10k-images-idx3-ubyte is not an IDX file'):
    images_lib.load_images('mnist', data_dir=tmp_path)


@pytest.mark.skipif(not os.path.isdir(DEBIAN_DIR),
                    reason=f'{DEBIAN_DIR} is absent (apt-get install -y dataset-fashion-mnist)')
def test_debian_fashion_mnist_loads_without_data_dir(monkeypatch):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(tfds, 'load', fail_download)
  data = images_lib.load_images('fashion_mnist')
  assert data.train.shape == (60000, 28, 28, 1)
  assert data.test.shape == (10000, 28, 28, 1)
  assert data.train.dtype == data.test.dtype == np.uint8
  assert data.num_levels == 256 and data.source == DEBIAN_DIR
  assert data.train.max() == 255 and 0.1 < data.train.mean() / 255 < 0.5


def test_fashion_mnist_looks_in_the_debian_folder_first(monkeypatch, tmp_path, no_download):
  train, _ = idx_folder(tmp_path, np.random.default_rng(3))
  monkeypatch.setattr(images_lib, 'DEBIAN_FASHION_MNIST_DIR', str(tmp_path))
  data = images_lib.load_images('fashion_mnist')
  np.testing.assert_array_equal(data.train[..., 0], train)
  assert data.source == str(tmp_path)


@pytest.mark.parametrize('name', ['mnist', 'fashion_mnist'])
def test_failed_download_explains_local_files(name, no_download):
  with pytest.raises(RuntimeError) as info:
    images_lib.load_images(name)
  message = str(info.value)
  for needed in ['download failed', 'no network in this test', 'data_dir=',
                 'train-images-idx3-ubyte', 'x_train', 'x_test', '.npz',
                 'apt-get install -y dataset-fashion-mnist']:
    assert needed in message
  assert isinstance(info.value.__cause__, ConnectionError)


# Other sources.


def test_digits_have_17_levels_and_a_fixed_split():
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  data = images_lib.load_images('digits')
  assert data.train.shape == (1500, 8, 8, 1) and data.test.shape == (297, 8, 8, 1)
  assert data.num_levels == 17 and data.train.dtype == np.uint8
  assert data.train.max() == 16
  everything = datasets.load_digits().images[..., None]
  np.testing.assert_array_equal(np.concatenate([data.train, data.test]), everything)
  small = images_lib.load_images('digits', max_examples=10)
  assert small.train.shape[0] == small.test.shape[0] == 10


@pytest.mark.parametrize('shape', [(7, 5, 4), (7, 5, 4, 3)])
def test_load_images_reads_an_npz_file(tmp_path, shape):
  rng = np.random.default_rng(4)
  x_train, x_test = random_images(rng, shape), random_images(rng, (2,) + shape[1:])
  path = tmp_path / 'local.npz'
  np.savez(path, x_train=x_train, x_test=x_test, y_train=np.zeros(7))
  data = images_lib.load_images('cifar10', data_dir=str(path), max_examples=3)
  expected_train = x_train if len(shape) == 4 else x_train[..., None]
  np.testing.assert_array_equal(data.train, expected_train[:3])
  assert data.test.shape == (2,) + expected_train.shape[1:]
  assert data.source == str(path)


@pytest.mark.parametrize('arrays, message', [
    (dict(x_train=np.zeros((2, 3, 3), np.uint8)), r"lacks the arrays \['x_test'\]"),
    (dict(x_train=np.zeros((2, 3), np.uint8), x_test=np.zeros((2, 3), np.uint8)),
     'must have rank 4'),
    (dict(x_train=np.zeros((2, 3, 3)), x_test=np.zeros((2, 3, 3))), 'must hold integers'),
    (dict(x_train=np.full((2, 3, 3), 300), x_test=np.zeros((2, 3, 3), np.uint8)),
     r'values in \[0, 255\]'),
])
def test_load_images_rejects_bad_npz_arrays(tmp_path, arrays, message):
  path = tmp_path / 'bad.npz'
  np.savez(path, **arrays)
  with pytest.raises(ValueError, match=message):
    images_lib.load_images('mnist', data_dir=path)


def test_celeb_a_is_center_cropped_to_148_and_resized_to_64(tmp_path):
  faces = np.zeros((2, 218, 178, 3), np.uint8)
  faces[:, 35:35 + 148, 15:15 + 148] = 200
  path = tmp_path / 'celeb_a.npz'
  np.savez(path, x_train=faces, x_test=faces[:1])
  data = images_lib.load_images('celeb_a', data_dir=path)
  assert data.train.shape == (2, 64, 64, 3) and data.test.shape == (1, 64, 64, 3)
  assert np.all(data.train == 200)


@pytest.mark.parametrize('kwargs, message', [
    (dict(name='svhn'), "Unknown image dataset 'svhn'.*mnist, fashion_mnist"),
    (dict(name='digits', data_dir='/tmp'), 'data_dir is not used'),
    (dict(name='digits', image_size=16), r'image_size must be \(height, width\)'),
    (dict(name='digits', image_size=(16, 0)), 'two positive ints'),
    (dict(name='digits', max_examples=0), 'max_examples'),
])
def test_load_images_rejects_bad_arguments(kwargs, message):
  with pytest.raises(ValueError, match=message):
    images_lib.load_images(**kwargs)


# Resizing.


@pytest.mark.parametrize('image_size', [(4, 4), (16, 12), (5, 8)])
def test_resize_keeps_integers_in_range(image_size):
  images = random_images(np.random.default_rng(5), (6, 8, 8, 2), num_levels=17)
  images[0] = 16
  resized = images_lib.resize_images(images, image_size, num_levels=17)
  assert resized.shape == (6,) + image_size + (2,) and resized.dtype == np.uint8
  assert resized.max() <= 16
  assert np.all(resized[0] == 16)


def test_resize_by_half_averages_two_by_two_blocks():
  images = np.array([[0, 2], [4, 7]], np.uint8).reshape(1, 2, 2, 1)
  assert images_lib.resize_images(np.tile(images, (1, 2, 2, 1)), (2, 2)).ravel().tolist() == [
      3, 3, 3, 3]


def test_load_images_resizes():
  data = images_lib.load_images('digits', image_size=(16, 16), max_examples=50)
  assert data.train.shape == (50, 16, 16, 1) and data.train.dtype == np.uint8
  assert data.train.max() <= 16 and data.train.max() >= 15


def test_image_data_validates_its_arrays():
  good = np.zeros((2, 3, 3, 1), np.uint8)
  with pytest.raises(ValueError, match='uint8 array of shape'):
    images_lib.ImageData(good.astype(np.int32), good, 256, 'x', 'y')
  with pytest.raises(ValueError, match='differ in shape'):
    images_lib.ImageData(good, np.zeros((2, 4, 3, 1), np.uint8), 256, 'x', 'y')
  with pytest.raises(ValueError, match=r'values in \[0, 16\]'):
    images_lib.ImageData(good + 17, good, 17, 'x', 'y')


# Dequantization.


@pytest.mark.parametrize('num_levels', [2, 17, 256])
def test_dequantize_stays_in_the_pixel_bin(num_levels):
  levels = np.repeat(np.arange(num_levels), 40000 // num_levels).astype(np.uint8)
  x = images_lib.dequantize(levels, num_levels, 0)
  assert x.dtype == np.float32 and x.shape == levels.shape
  assert x.min() >= 0 and x.max() < 1
  np.testing.assert_array_equal(np.floor(x * np.float32(num_levels)), levels)
  noise = x * num_levels - levels
  assert noise.min() < 0.01 and noise.max() > 0.99 and abs(noise.mean() - 0.5) < 0.01


def test_dequantize_is_reproducible_from_the_seed():
  images = random_images(np.random.default_rng(6), (4, 5, 5, 1))
  np.testing.assert_array_equal(images_lib.dequantize(images, 256, 1),
                                images_lib.dequantize(images, 256, 1))
  assert not np.array_equal(images_lib.dequantize(images, 256, 1),
                            images_lib.dequantize(images, 256, 2))
  generator = np.random.default_rng(1)
  np.testing.assert_array_equal(images_lib.dequantize(images, 256, generator),
                                images_lib.dequantize(images, 256, 1))


def test_dequantize_rejects_values_outside_the_levels():
  with pytest.raises(ValueError, match=r'values in \[0, 16\]'):
    images_lib.dequantize(np.array([3, 17]), 17, 0)
  with pytest.raises(ValueError, match='integers'):
    images_lib.dequantize(np.array([0.5]), 17, 0)


def test_dequantize_tf_stays_in_the_pixel_bin():
  levels = tf.constant(np.repeat(np.arange(256), 200), tf.uint8)
  x = images_lib.dequantize_tf(levels, 256, tf.constant([3, 4], tf.int64)).numpy()
  assert x.dtype == np.float32 and x.min() >= 0 and x.max() < 1
  np.testing.assert_array_equal(np.floor(x * np.float32(256)), levels.numpy())
  again = images_lib.dequantize_tf(levels, 256, tf.constant([3, 4], tf.int64)).numpy()
  np.testing.assert_array_equal(x, again)


# Pipelines.


def distinct_images(num_images, num_levels=256):
  """Images whose top-left pixel is their index, so a batch tells which images it holds."""
  images = random_images(np.random.default_rng(7), (num_images, 4, 6, 2), num_levels)
  images[:, 0, 0, 0] = np.arange(num_images)
  return images


def first_batches(dataset, count):
  return [batch.numpy() for batch in dataset.take(count)]


def test_pipeline_gives_dequantized_float_batches_in_order_when_evaluating():
  images = distinct_images(10, num_levels=17)
  dataset = images_lib.image_pipeline(images, 17, 4, training=False, horizontal_flip=True)
  assert dataset.element_spec.shape == (4, 4, 6, 2)
  batches = first_batches(dataset, 10)
  assert len(batches) == 2
  x = np.concatenate(batches)
  assert x.dtype == np.float32 and x.min() >= 0 and x.max() < 1
  np.testing.assert_array_equal(np.floor(x * 17), images[:8])


def test_pipeline_visits_every_image_once_per_pass():
  images = distinct_images(12)
  dataset = images_lib.image_pipeline(images, 256, 4, seed=3, repeat=2)
  batches = first_batches(dataset, 100)
  assert len(batches) == 6
  indices = [np.floor(b[:, 0, 0, 0] * 256).astype(int) for b in batches]
  first_pass, second_pass = np.concatenate(indices[:3]), np.concatenate(indices[3:])
  assert sorted(first_pass) == sorted(second_pass) == list(range(12))
  assert list(first_pass) != list(range(12)) and list(first_pass) != list(second_pass)


def test_pipeline_is_reproducible_from_the_seed():
  images = distinct_images(50)

  def batches(seed, global_seed):
    tf.random.set_seed(global_seed)
    return first_batches(
        images_lib.image_pipeline(images, 256, 8, seed=seed, horizontal_flip=True), 8)

  reference = batches(seed=5, global_seed=1)
  for same, other in zip(reference, batches(seed=5, global_seed=2)):
    np.testing.assert_array_equal(same, other)
  assert not np.array_equal(reference[0], batches(seed=6, global_seed=1)[0])
  evaluation = [images_lib.image_pipeline(images, 256, 8, training=False, seed=s)
                for s in (5, 5, 6)]
  first = [next(iter(dataset)).numpy() for dataset in evaluation]
  np.testing.assert_array_equal(first[0], first[1])
  assert not np.array_equal(first[0], first[2])
  np.testing.assert_array_equal(np.floor(first[0] * 256), np.floor(first[2] * 256))


def test_pipeline_flips_left_right_only_when_asked():
  images = np.zeros((64, 3, 5, 1), np.uint8)
  images[:, 1, 0, 0] = 255

  def bright_columns(**kwargs):
    batch = next(iter(images_lib.image_pipeline(images, 256, 64, seed=2, **kwargs)))
    return np.argmax(batch.numpy()[:, 1, :, 0], axis=1)

  flipped = bright_columns(horizontal_flip=True)
  assert set(flipped) == {0, 4}
  assert 16 < np.sum(flipped == 4) < 48
  assert set(bright_columns()) == {0}
  assert set(bright_columns(horizontal_flip=True, training=False)) == {0}


def test_pipeline_repeats_and_keeps_the_remainder_as_asked():
  images = distinct_images(10)
  count = lambda **kw: len(first_batches(images_lib.image_pipeline(images, 256, 4, **kw), 50))
  assert count(training=False) == 2
  assert count(training=False, drop_remainder=False) == 3
  assert count(training=False, repeat=3) == 7
  assert count(repeat=2) == 5
  assert count() == 50
  last = first_batches(images_lib.image_pipeline(
      images, 256, 4, training=False, drop_remainder=False, prefetch=False), 3)[-1]
  assert last.shape == (2, 4, 6, 2)


@pytest.mark.parametrize('images, kwargs, message', [
    (np.zeros((4, 3, 3), np.uint8), {}, 'must have rank 4'),
    (np.zeros((4, 3, 3, 1), np.float32), {}, 'must hold integers'),
    (np.full((4, 3, 3, 1), 17, np.uint8), {}, r'values in \[0, 16\]'),
    (np.zeros((4, 3, 3, 1), np.uint8), dict(batch_size=0), 'batch_size'),
    (np.zeros((4, 3, 3, 1), np.uint8), dict(batch_size=5, training=False), 'no batch'),
    (np.zeros((4, 3, 3, 1), np.uint8), dict(repeat=0), 'repeat'),
    (np.zeros((4, 3, 3, 1), np.uint8), dict(seed=1.5), 'seed'),
])
def test_pipeline_rejects_bad_arguments(images, kwargs, message):
  kwargs = dict(dict(batch_size=2), **kwargs)
  with pytest.raises(ValueError, match=message):
    images_lib.image_pipeline(images, 17, **kwargs)
