"""Tests of tfp_realnvp/data/idx.py: IDX files and folders in MNIST's layout."""

import numpy as np
import pytest
from data_testlib import idx_folder
from data_testlib import write_idx

from tfp_realnvp.data import idx


@pytest.mark.parametrize('compress', [False, True])
def test_read_idx_round_trips(tmp_path, compress):
  array = np.random.default_rng(0).integers(0, 256, (3, 4, 5)).astype(np.uint8)
  np.testing.assert_array_equal(idx.read_idx(write_idx(tmp_path / 'a', array, compress)), array)
  labels = np.arange(-3, 4, dtype='>i4')
  read = idx.read_idx(write_idx(tmp_path / 'b', labels, compress))
  np.testing.assert_array_equal(read, labels)
  assert read.dtype == np.int32


def test_read_idx_rejects_a_bad_magic_number(tmp_path):
  path = tmp_path / 'bad'
  path.write_bytes(b'\x12\x34\x08\x03' + bytes(100))
  with pytest.raises(ValueError, match='not an IDX file.*magic number 0x12340803'):
    idx.read_idx(path)


def test_read_idx_rejects_a_truncated_file(tmp_path):
  path = write_idx(tmp_path / 'short', np.zeros((4, 3, 3), np.uint8))
  path.write_bytes(path.read_bytes()[:-5])
  with pytest.raises(ValueError, match=r'truncated or corrupt.*\(4, 3, 3\)'):
    idx.read_idx(path)


def test_read_idx_rejects_a_corrupt_gzip_file(tmp_path):
  path = write_idx(tmp_path / 'x.gz', np.zeros((4, 3, 3), np.uint8), compress=True)
  path.write_bytes(path.read_bytes()[:20])
  with pytest.raises(ValueError, match='corrupt gzip'):
    idx.read_idx(path)


@pytest.mark.parametrize('compress', [False, True])
def test_read_idx_folder_reads_images_and_labels(tmp_path, compress):
  arrays = idx_folder(tmp_path, seed=1, compress=compress)
  train, test, train_labels, test_labels = idx.read_idx_folder(tmp_path)
  np.testing.assert_array_equal(train, arrays['train'][..., None])
  np.testing.assert_array_equal(test, arrays['test'][..., None])
  np.testing.assert_array_equal(train_labels, arrays['train_labels'])
  np.testing.assert_array_equal(test_labels, arrays['test_labels'])
  assert train.dtype == np.uint8


def test_read_idx_folder_without_label_files_has_no_labels(tmp_path):
  idx_folder(tmp_path, seed=2, labels=False)
  assert idx.read_idx_folder(tmp_path)[2:] == (None, None)


def test_read_idx_folder_accepts_dotted_names(tmp_path):
  images = np.random.default_rng(3).integers(0, 256, (3, 2, 2)).astype(np.uint8)
  labels = np.array([1, 0, 2], np.uint8)
  for prefix in ('train', 't10k'):
    write_idx(tmp_path / f'{prefix}-images.idx3-ubyte', images)
    write_idx(tmp_path / f'{prefix}-labels.idx1-ubyte', labels)
  np.testing.assert_array_equal(idx.read_idx_folder(tmp_path)[3], labels)


def test_read_idx_folder_wants_labels_for_both_splits(tmp_path):
  idx_folder(tmp_path, seed=4)
  (tmp_path / 't10k-labels-idx1-ubyte.gz').unlink()
  with pytest.raises(FileNotFoundError, match='train labels.*but no test labels'):
    idx.read_idx_folder(tmp_path)


def test_read_idx_folder_wants_one_label_per_image(tmp_path):
  idx_folder(tmp_path, seed=5)
  write_idx(tmp_path / 'train-labels-idx1-ubyte.gz', np.zeros(11, np.uint8), compress=True)
  with pytest.raises(ValueError, match='one integer label per train image, 12'):
    idx.read_idx_folder(tmp_path)


def test_read_idx_folder_names_the_missing_image_files(tmp_path):
  idx_folder(tmp_path, seed=6)
  (tmp_path / 't10k-images-idx3-ubyte.gz').unlink()
  with pytest.raises(FileNotFoundError, match='no test images.*t10k-images-idx3-ubyte'):
    idx.read_idx_folder(tmp_path)
