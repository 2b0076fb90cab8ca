"""Tests of tfp_realnvp/data/image_data.py: `ImageData` validates its images and labels."""

import numpy as np
import pytest

from tfp_realnvp.data import ImageData

GOOD = np.zeros((2, 3, 3, 1), np.uint8)


def test_image_data_validates_its_images():
  with pytest.raises(ValueError, match='uint8 array of shape'):
    ImageData(GOOD.astype(np.int32), GOOD, 256, 'x', 'y')
  with pytest.raises(ValueError, match='differ in shape'):
    ImageData(GOOD, np.zeros((2, 4, 3, 1), np.uint8), 256, 'x', 'y')
  with pytest.raises(ValueError, match=r'values in \[0, 16\]'):
    ImageData(GOOD + 17, GOOD, 17, 'x', 'y')


def test_labels_are_stored_as_int32_with_defaults_for_classes():
  data = ImageData(GOOD, GOOD[:1], 256, 'x', 'y', train_labels=np.array([0, 2], np.uint8),
                   test_labels=np.array([1], np.int64))
  assert data.has_labels and data.train_labels.dtype == data.test_labels.dtype == np.int32
  np.testing.assert_array_equal(data.train_labels, [0, 2])
  assert data.num_classes == 3 and data.class_names == ('0', '1', '2')
  named = ImageData(GOOD, GOOD[:1], 256, 'x', 'y', train_labels=[0, 1], test_labels=[1],
                    class_names=['cat', 'dog', 'emu'])
  assert named.num_classes == 3 and named.class_names == ('cat', 'dog', 'emu')
  unlabelled = ImageData(GOOD, GOOD, 256, 'x', 'y')
  assert not unlabelled.has_labels and unlabelled.num_classes is None


@pytest.mark.parametrize('kwargs, message', [
    (dict(train_labels=[0, 1]), 'got train_labels but no test_labels'),
    (dict(test_labels=[0]), 'got test_labels but no train_labels'),
    (dict(num_classes=3), 'num_classes and class_names need train_labels'),
    (dict(train_labels=[0, 1], test_labels=[0.]), r'test_labels must hold integer'),
    (dict(train_labels=[True, False], test_labels=[0]), r'train_labels must hold integer'),
    (dict(train_labels=[0, 1, 1], test_labels=[0]), r'train_labels must have shape \(2,\)'),
    (dict(train_labels=[[0], [1]], test_labels=[0]), r'train_labels must have shape \(2,\)'),
    (dict(train_labels=[0, -1], test_labels=[0]), r'train_labels must have values in \[0, 0\]'),
    (dict(train_labels=[0, 3], test_labels=[0], num_classes=3),
     r'train_labels must have values in \[0, 2\]'),
    (dict(train_labels=[0, 1], test_labels=[0], num_classes=0), 'num_classes must be a positive'),
    (dict(train_labels=[0, 1], test_labels=[0], num_classes=3, class_names=['a', 'b']),
     'num_classes=3 but 2 class_names'),
    (dict(train_labels=[0, 1], test_labels=[0], class_names=['a', 'a']), 'must be distinct'),
])
def test_bad_labels_are_refused(kwargs, message):
  with pytest.raises(ValueError, match=message):
    ImageData(GOOD, GOOD[:1], 256, 'x', 'y', **kwargs)
