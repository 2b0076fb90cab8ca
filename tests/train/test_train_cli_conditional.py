"""The training job with --conditional, end to end: class grids, test accuracy, labelled
SavedModel signatures, and a source without labels refused."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import train_testlib as lib

from tfp_realnvp.cli import train as cli_train
from tfp_realnvp.train import runs

PNG_MAGIC = b'\x89PNG'
FLAGS = ['--num-scales', '1', '--hidden-channels', '4', '--num-res-blocks', '0',
         '--epochs', '2', '--steps-per-epoch', '6', '--batch-size', '32',
         '--samples-per-class', '2', '--max-test-examples', '60', '--quiet']


@pytest.fixture(scope='module')
def conditional_run(tmp_path_factory):
  out = tmp_path_factory.mktemp('conditional_run')
  assert cli_train.main(['--dataset', 'digits', '--conditional', *FLAGS,
                         '--output-dir', str(out)]) == 0
  with open(out / 'metrics.json') as f:
    return out, json.load(f)


def test_metrics_hold_the_classifier_accuracy_per_epoch(conditional_run):
  _, metrics = conditional_run
  per_epoch = metrics['test_accuracy_per_epoch']
  assert len(per_epoch) == 2 and all(0. <= a <= 1. for a in per_epoch)
  assert 0. <= metrics['test_accuracy'] <= 1.
  assert all(np.isfinite(metrics['test_bits_per_dim']))


def test_each_epoch_draws_a_class_grid(conditional_run):
  out, _ = conditional_run
  for epoch in (1, 2):
    with open(out / 'samples' / f'classes_epoch_{epoch:03d}.png', 'rb') as f:
      assert f.read(4) == PNG_MAGIC


def test_the_saved_model_takes_labels_and_matches_the_checkpoint(conditional_run):
  out, _ = conditional_run
  model = tf.saved_model.load(str(out / 'saved_model'))
  x, y = lib.test_pairs(8)
  served = model.log_prob(x, y).numpy()
  assert served.shape == (8,) and np.all(np.isfinite(served))
  flow = runs.load_run(str(out), checkpoint='best').flow
  # log p(x | y) = log N(f(x; y); 0, I) + log |det df/dx|, the base being N(0, I).
  z = flow.inverse(x, conditional_input=y).numpy()
  log_det = flow.inverse_log_det_jacobian(x, 3, conditional_input=y).numpy()
  want = np.sum(-0.5 * z ** 2 - 0.5 * np.log(2 * np.pi), axis=(1, 2, 3)) + log_det
  np.testing.assert_allclose(served, want, rtol=1e-4, atol=1e-3)
  other = model.log_prob(x, (y + 1) % 10).numpy()
  assert np.abs(other - served).max() > 1e-3
  images = model.sample(tf.constant(4), tf.constant(3), tf.constant(0.7),
                        tf.constant(0, tf.int64)).numpy()
  assert images.shape == (4, 8, 8, 1) and images.min() >= 0. and images.max() <= 1.


def test_a_source_without_labels_is_refused(tmp_path, capsys):
  data = tmp_path / 'images.npz'
  rng = np.random.default_rng(0)
  np.savez(data, x_train=rng.integers(0, 256, (64, 8, 8), dtype=np.uint8),
           x_test=rng.integers(0, 256, (16, 8, 8), dtype=np.uint8))
  out = tmp_path / 'run'
  assert cli_train.main(['--data-dir', str(data), '--conditional', *FLAGS,
                         '--output-dir', str(out)]) == 2
  assert 'has no class labels' in capsys.readouterr().err
  assert not os.path.exists(out / 'checkpoints')
