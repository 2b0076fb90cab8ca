"""Tests of tfp_realnvp/data/pipeline.py: `image_pipeline`, with and without labels."""

import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp.data import image_pipeline


def distinct_images(num_images, num_levels=256):
  """Images whose top-left pixel is their index, so a batch tells which images it holds."""
  images = np.random.default_rng(7).integers(0, num_levels, (num_images, 4, 6, 2))
  images = images.astype(np.uint8)
  images[:, 0, 0, 0] = np.arange(num_images)
  return images


def first_batches(dataset, count):
  return [batch.numpy() for batch in dataset.take(count)]


def indices_of(batch, num_levels=256):
  return np.floor(batch[:, 0, 0, 0] * num_levels).astype(int)


def test_pipeline_gives_dequantized_float_batches_in_order_when_evaluating():
  images = distinct_images(10, num_levels=17)
  dataset = image_pipeline(images, 17, 4, training=False, horizontal_flip=True)
  assert dataset.element_spec.shape == (4, 4, 6, 2)
  batches = first_batches(dataset, 10)
  assert len(batches) == 2
  x = np.concatenate(batches)
  assert x.dtype == np.float32 and x.min() >= 0 and x.max() < 1
  np.testing.assert_array_equal(np.floor(x * 17), images[:8])


def test_pipeline_visits_every_image_once_per_pass():
  images = distinct_images(12)
  batches = first_batches(image_pipeline(images, 256, 4, seed=3, repeat=2), 100)
  assert len(batches) == 6
  indices = [indices_of(b) for b in batches]
  first_pass, second_pass = np.concatenate(indices[:3]), np.concatenate(indices[3:])
  assert sorted(first_pass) == sorted(second_pass) == list(range(12))
  assert list(first_pass) != list(range(12)) and list(first_pass) != list(second_pass)


def test_pipeline_is_reproducible_from_the_seed():
  images = distinct_images(50)

  def batches(seed, global_seed):
    tf.random.set_seed(global_seed)
    return first_batches(image_pipeline(images, 256, 8, seed=seed, horizontal_flip=True), 8)

  reference = batches(seed=5, global_seed=1)
  for same, other in zip(reference, batches(seed=5, global_seed=2)):
    np.testing.assert_array_equal(same, other)
  assert not np.array_equal(reference[0], batches(seed=6, global_seed=1)[0])
  evaluation = [image_pipeline(images, 256, 8, training=False, seed=s) for s in (5, 5, 6)]
  first = [next(iter(dataset)).numpy() for dataset in evaluation]
  np.testing.assert_array_equal(first[0], first[1])
  assert not np.array_equal(first[0], first[2])
  np.testing.assert_array_equal(np.floor(first[0] * 256), np.floor(first[2] * 256))


def test_pipeline_flips_left_right_only_when_asked():
  images = np.zeros((64, 3, 5, 1), np.uint8)
  images[:, 1, 0, 0] = 255

  def bright_columns(**kwargs):
    batch = next(iter(image_pipeline(images, 256, 64, seed=2, **kwargs)))
    return np.argmax(batch.numpy()[:, 1, :, 0], axis=1)

  flipped = bright_columns(horizontal_flip=True)
  assert set(flipped) == {0, 4}
  assert 16 < np.sum(flipped == 4) < 48
  assert set(bright_columns()) == {0}
  assert set(bright_columns(horizontal_flip=True, training=False)) == {0}


def test_pipeline_moves_images_by_one_pixel_with_the_given_probability():
  images = np.zeros((400, 5, 7, 1), np.uint8)
  images[:, 2, 3, 0] = 255

  def bright_pixels(**kwargs):
    batch = next(iter(image_pipeline(images, 256, 400, seed=4, **kwargs))).numpy()
    flat = np.argmax(batch[..., 0].reshape(400, -1), axis=1)
    return [tuple(int(i) for i in divmod(k, 7)) for k in flat]

  moved = bright_pixels(random_shift=1.)
  counts = {p: moved.count(p) for p in set(moved)}
  assert set(counts) == {(1, 3), (3, 3), (2, 2), (2, 4)}      # up, down, left, right
  assert all(60 < c < 140 for c in counts.values())
  half = bright_pixels(random_shift=0.5)
  assert 150 < half.count((2, 3)) < 250
  assert set(bright_pixels()) == {(2, 3)}
  assert set(bright_pixels(random_shift=1., training=False)) == {(2, 3)}


def test_pipeline_shift_fills_the_uncovered_edge_with_level_zero_and_keeps_the_noise():
  images = np.full((64, 4, 4, 1), 9, np.uint8)
  plain = next(iter(image_pipeline(images, 17, 64, seed=1))).numpy()
  moved = next(iter(image_pipeline(images, 17, 64, seed=1, random_shift=1.))).numpy()
  levels = np.floor(moved * 17)[..., 0]
  zero_rows = (levels[:, 0, :] == 0).all(1) | (levels[:, -1, :] == 0).all(1)
  zero_cols = (levels[:, :, 0] == 0).all(1) | (levels[:, :, -1] == 0).all(1)
  assert np.all(zero_rows ^ zero_cols)
  assert np.sum(levels == 0) == 64 * 4 and np.sum(levels == 9) == 64 * 12
  np.testing.assert_allclose(plain - np.floor(plain * 17) / 17,
                             moved - np.floor(moved * 17) / 17, atol=1e-6)   # same noise


@pytest.mark.parametrize('probability', [-0.1, 1.5, float('nan')])
def test_pipeline_refuses_a_shift_probability_outside_0_1(probability):
  with pytest.raises(ValueError, match='random_shift is a probability in'):
    image_pipeline(np.zeros((8, 4, 4, 1), np.uint8), 256, 4, random_shift=probability)


def test_pipeline_repeats_and_keeps_the_remainder_as_asked():
  images = distinct_images(10)

  def count(**kwargs):
    return len(first_batches(image_pipeline(images, 256, 4, **kwargs), 50))

  assert count(training=False) == 2
  assert count(training=False, drop_remainder=False) == 3
  assert count(training=False, repeat=3) == 7
  assert count(repeat=2) == 5
  assert count() == 50
  last = first_batches(image_pipeline(
      images, 256, 4, training=False, drop_remainder=False, prefetch=False), 3)[-1]
  assert last.shape == (2, 4, 6, 2)


@pytest.mark.parametrize('training', [True, False])
def test_labels_follow_their_images_with_the_same_batches(training):
  images = distinct_images(30)
  images[:, 0, -1, 0] = images[:, 0, 0, 0]   # the index survives a left-right flip
  labels = (np.arange(30) * 7) % 5
  kwargs = dict(training=training, seed=4, horizontal_flip=True, repeat=2,
                drop_remainder=False)
  plain = list(image_pipeline(images, 256, 8, **kwargs).as_numpy_iterator())
  paired = list(image_pipeline(images, 256, 8, labels=labels, **kwargs).as_numpy_iterator())
  assert len(plain) == len(paired) == 8
  for batch, (same_batch, batch_labels) in zip(plain, paired):
    np.testing.assert_array_equal(batch, same_batch)
    assert batch_labels.dtype == np.int32
    np.testing.assert_array_equal(batch_labels, labels[indices_of(batch)])


def test_labels_of_an_evaluation_pipeline_are_in_stored_order():
  images = distinct_images(6)
  labels = np.array([3, 1, 4, 1, 5, 9])
  dataset = image_pipeline(images, 256, 4, labels=labels, training=False,
                           drop_remainder=False)
  assert dataset.element_spec[1].dtype == tf.int32
  pairs = list(dataset.as_numpy_iterator())
  np.testing.assert_array_equal(np.concatenate([y for _, y in pairs]), labels)
  np.testing.assert_array_equal(np.concatenate([indices_of(x) for x, _ in pairs]), range(6))


@pytest.mark.parametrize('images, kwargs, message', [
    (np.zeros((4, 3, 3), np.uint8), {}, 'must have rank 4'),
    (np.zeros((4, 3, 3, 1), np.float32), {}, 'must hold integers'),
    (np.full((4, 3, 3, 1), 17, np.uint8), {}, r'values in \[0, 16\]'),
    (np.zeros((4, 3, 3, 1), np.uint8), dict(batch_size=0), 'batch_size'),
    (np.zeros((4, 3, 3, 1), np.uint8), dict(batch_size=5, training=False), 'no batch'),
    (np.zeros((4, 3, 3, 1), np.uint8), dict(repeat=0), 'repeat'),
    (np.zeros((4, 3, 3, 1), np.uint8), dict(seed=1.5), 'seed'),
    (np.zeros((4, 3, 3, 1), np.uint8), dict(labels=[0, 1, 2]), r'labels must have shape \(4,\)'),
    (np.zeros((4, 3, 3, 1), np.uint8), dict(labels=[0., 1., 2., 3.]), 'labels must hold integer'),
    (np.zeros((4, 3, 3, 1), np.uint8), dict(labels=[0, 1, -2, 3]), 'labels must have values'),
])
def test_pipeline_rejects_bad_arguments(images, kwargs, message):
  kwargs = dict(dict(batch_size=2), **kwargs)
  with pytest.raises(ValueError, match=message):
    image_pipeline(images, 17, **kwargs)
