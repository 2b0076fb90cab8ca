"""Tests of tfp_realnvp/data/image_folder.py: folders of PNG/JPEG files as datasets."""

import numpy as np
import pytest
from data_testlib import write_image

from tfp_realnvp.data import image_folder
from tfp_realnvp.data import load_images


def numbered_image(number, shape=(6, 5, 1)):
  """An image whose pixel (0, 0, 0) is `number`, so a loaded image tells which file it was."""
  image = np.random.default_rng(number).integers(0, 256, shape).astype(np.uint8)
  image[0, 0, 0] = number
  return image


def class_folder(root, counts, shape=(6, 5, 1)):
  """Class subfolders holding `counts[name]` numbered PNGs each; returns {number: class}."""
  classes, number = {}, 0
  for name, count in counts.items():
    for _ in range(count):
      write_image(root / name / f'img_{number:03d}.png', numbered_image(number, shape))
      classes[number] = name
      number += 1
  return classes


def test_class_subfolders_give_labels_and_a_stratified_split(tmp_path):
  classes = class_folder(tmp_path, {'dog': 8, 'cat': 20})
  data = load_images(data_dir=tmp_path, test_fraction=0.25, split_seed=3)
  assert data.class_names == ('cat', 'dog') and data.num_classes == 2
  assert data.name == tmp_path.name and data.source == str(tmp_path)
  assert data.train.shape == (21, 6, 5, 1) and data.test.shape == (7, 6, 5, 1)
  numbers = {split: getattr(data, split)[:, 0, 0, 0].astype(int) for split in ('train', 'test')}
  # Every file once, in one split; each image with its class; 25% of each class held out.
  assert sorted(np.concatenate(list(numbers.values()))) == list(range(28))
  for split in ('train', 'test'):
    labels = getattr(data, f'{split}_labels')
    assert [data.class_names[k] for k in labels] == [classes[n] for n in numbers[split]]
    for number, image in zip(numbers[split], getattr(data, split)):
      np.testing.assert_array_equal(image, numbered_image(number))
  np.testing.assert_array_equal(np.bincount(data.test_labels), [5, 2])
  # The order is shuffled (not class by class), and set by `split_seed` alone.
  assert list(data.train_labels) != sorted(data.train_labels)
  again = load_images(data_dir=tmp_path, test_fraction=0.25, split_seed=3)
  np.testing.assert_array_equal(again.train, data.train)
  other = load_images(data_dir=tmp_path, test_fraction=0.25, split_seed=4)
  assert set(other.test[:, 0, 0, 0]) != set(data.test[:, 0, 0, 0])


def test_the_default_split_holds_out_a_tenth(tmp_path):
  class_folder(tmp_path, {'a': 10, 'b': 20})
  data = load_images(data_dir=tmp_path)
  assert image_folder.DEFAULT_TEST_FRACTION == 0.1 and image_folder.DEFAULT_SPLIT_SEED == 0
  np.testing.assert_array_equal(np.bincount(data.test_labels), [1, 2])
  same = load_images(data_dir=tmp_path, test_fraction=0.1, split_seed=0)
  np.testing.assert_array_equal(same.test, data.test)


def test_images_without_subfolders_have_no_labels(tmp_path):
  for number in range(5):
    write_image(tmp_path / f'{number}.png', numbered_image(number, (4, 4, 3)))
  (tmp_path / 'README.txt').write_text('other files are skipped')
  data = load_images('cifar10', data_dir=tmp_path, test_fraction=0.2)
  assert not data.has_labels and data.class_names is None
  assert data.train.shape == (4, 4, 4, 3) and data.test.shape == (1, 4, 4, 3)
  assert sorted(np.concatenate([data.train, data.test])[:, 0, 0, 0]) == list(range(5))


def test_jpeg_files_are_read(tmp_path):
  flat = np.full((8, 8, 3), 120, np.uint8)
  for number in range(3):
    write_image(tmp_path / 'a' / f'{number}.jpg', flat)
    write_image(tmp_path / 'b' / f'{number}.JPEG', flat)
  data = load_images(data_dir=tmp_path, test_fraction=0.3)
  assert data.image_shape == (8, 8, 3) and data.num_classes == 2
  assert np.abs(data.train.astype(int) - 120).max() <= 2


def test_max_examples_takes_the_first_images_of_each_split(tmp_path):
  class_folder(tmp_path, {'a': 6, 'b': 6})
  full = load_images(data_dir=tmp_path, test_fraction=0.5)
  part = load_images(data_dir=tmp_path, test_fraction=0.5, max_examples=2)
  np.testing.assert_array_equal(part.train, full.train[:2])
  np.testing.assert_array_equal(part.test_labels, full.test_labels[:2])


def test_mixed_channel_counts_are_an_error_unless_converted(tmp_path):
  grey = np.full((4, 4, 1), 50, np.uint8)
  colour = np.stack([np.full((4, 4), v, np.uint8) for v in (10, 100, 200)], axis=-1)
  for number in range(2):
    write_image(tmp_path / f'grey_{number}.png', grey)
    write_image(tmp_path / f'colour_{number}.png', colour)
  with pytest.raises(ValueError, match=(
      r'different numbers of channels \(1 channel\(s\): grey_.*3 channel\(s\): colour_.*'
      'channels=1.*channels=3')):
    load_images(data_dir=tmp_path, test_fraction=0.5)
  rgb = load_images(data_dir=tmp_path, test_fraction=0.5, channels=3)
  assert rgb.image_shape == (4, 4, 3)
  pixels = {tuple(image[0, 0]) for image in np.concatenate([rgb.train, rgb.test])}
  assert pixels == {(50, 50, 50), (10, 100, 200)}
  assert load_images(data_dir=tmp_path, test_fraction=0.5, channels=1).image_shape == (4, 4, 1)


def test_mixed_sizes_are_an_error_unless_resized(tmp_path):
  write_image(tmp_path / 'small.png', np.zeros((4, 4, 1), np.uint8))
  write_image(tmp_path / 'wide.png', np.zeros((4, 8, 1), np.uint8))
  with pytest.raises(ValueError, match=r'differ in size \(4x4: small.png; 4x8: wide.png\)'):
    load_images(data_dir=tmp_path, test_fraction=0.5)
  data = load_images(data_dir=tmp_path, test_fraction=0.5, image_size=(2, 2))
  assert data.image_shape == (2, 2, 1)


def test_crop_to_aspect_ratio_crops_instead_of_stretching(tmp_path):
  # A 4x8 image, black in its outer quarters, white in the middle 4x4 square.
  wide = np.zeros((4, 8, 1), np.uint8)
  wide[:, 2:6] = 255
  write_image(tmp_path / 'a.png', wide)
  write_image(tmp_path / 'b.png', wide)
  cropped = load_images(data_dir=tmp_path, test_fraction=0.5, image_size=(2, 2),
                        crop_to_aspect_ratio=True)
  assert np.all(cropped.train == 255)
  stretched = load_images(data_dir=tmp_path, test_fraction=0.5, image_size=(2, 2))
  assert stretched.train.min() < 255


def test_an_unreadable_file_is_named(tmp_path):
  class_folder(tmp_path, {'a': 3, 'b': 3})
  (tmp_path / 'b' / 'broken.png').write_bytes(b'\x89PNG but not really')
  with pytest.raises(ValueError, match=r'b/broken.png cannot be read as an image: .*format'):
    load_images(data_dir=tmp_path, test_fraction=0.5)


def test_images_at_the_top_and_in_subfolders_are_an_error(tmp_path):
  class_folder(tmp_path, {'a': 2})
  write_image(tmp_path / 'loose.png', numbered_image(9))
  with pytest.raises(ValueError, match='both at its top level .loose.png. and in subfolders'):
    load_images(data_dir=tmp_path)


@pytest.mark.parametrize('kwargs, message', [
    (dict(test_fraction=0.), r'test_fraction must be a number in \(0, 1\)'),
    (dict(test_fraction=1.), r'test_fraction must be a number in \(0, 1\)'),
    (dict(test_fraction=0.01), 'leaves 4 for training and 0 for testing'),
    (dict(test_fraction=0.9), 'leaves 0 for training and 4 for testing'),
    (dict(split_seed=0.5), 'split_seed must be an int'),
    (dict(channels=2), 'channels must be None, 1'),
])
def test_bad_split_and_channel_arguments(tmp_path, kwargs, message):
  class_folder(tmp_path, {'a': 2, 'b': 2})
  with pytest.raises(ValueError, match=message):
    load_images(data_dir=tmp_path, **kwargs)


def test_read_image_folder_refuses_a_missing_folder(tmp_path):
  with pytest.raises(FileNotFoundError, match='is not a folder'):
    image_folder.read_image_folder(tmp_path / 'absent')
