"""The SavedModel export checks its inputs and itself; the trainer's inference edges."""

import os

import numpy as np
import pytest
import tensorflow as tf
import train_testlib as lib

from tfp_realnvp.train import UnhealthyExportError


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  trainer = lib.perturbed_trainer()
  path = str(tmp_path_factory.mktemp('export') / 'saved_model')
  x = lib.test_images()
  assert trainer.export(path, check_images=x) == path
  return trainer, tf.saved_model.load(path), x


def test_saved_model_matches_the_trainer_and_clips_its_samples(exported):
  trainer, model, x = exported
  np.testing.assert_allclose(model.log_prob(x).numpy(), trainer.log_prob(x).numpy(),
                             rtol=1e-5)
  images = model.sample(tf.constant(6), tf.constant(0.8), tf.constant(3, tf.int64))
  raw = trainer.sample(6, 0.8, seed=3, clip=False)
  np.testing.assert_allclose(images.numpy(), np.clip(raw, 0., 1.), atol=1e-5)
  assert images.numpy().min() >= 0. and images.numpy().max() <= 1.
  signature = model.signatures['sample'](n=tf.constant(6), temperature=tf.constant(0.8),
                                         seed=tf.constant(3, tf.int64))['images']
  np.testing.assert_array_equal(signature.numpy(), images.numpy())


@pytest.mark.parametrize('what, match', [
    ('below_zero', r'pixels must lie in \[0, 1\].*below 0'),
    ('uint8', r'scale integer images such as uint8 0\.\.255'),
    ('nan', 'NaN or infinite'),
    ('shape', r'x must have shape \(N, 8, 8, 1\)'),
    ('rank', r'x must have shape \(N, 8, 8, 1\)'),
])
def test_saved_model_rejects_bad_images(exported, what, match):
  _, model, x = exported
  bad = {'below_zero': x - 0.03,
         'uint8': np.round(x * 255).astype(np.uint8),
         'nan': np.where(x > 0.5, np.nan, x).astype(np.float32),
         'shape': x[:, :4],
         'rank': x[0]}[what]
  with pytest.raises(tf.errors.InvalidArgumentError, match=match):
    model.log_prob(bad)
  with pytest.raises(tf.errors.InvalidArgumentError, match=match):
    model.bits_per_dim(bad)


def test_empty_batches_and_zero_samples_give_empty_results(exported):
  trainer, model, x = exported
  assert model.log_prob(x[:0]).shape == (0,)
  assert model.bits_per_dim(x[:0]).shape == (0,)
  assert model.sample(tf.constant(0), tf.constant(1.),
                      tf.constant(0, tf.int64)).shape == (0, 8, 8, 1)
  with pytest.raises(tf.errors.InvalidArgumentError, match='n must be >= 0'):
    model.sample(tf.constant(-1), tf.constant(1.), tf.constant(0, tf.int64))
  with pytest.raises(tf.errors.InvalidArgumentError, match='temperature must be >= 0'):
    model.sample(tf.constant(2), tf.constant(-1.), tf.constant(0, tf.int64))
  assert trainer.log_prob(x[:0]).shape == (0,)
  assert trainer.sample(0).shape == (0, 8, 8, 1)


def test_a_broken_model_is_not_exported(tmp_path):
  trainer = lib.perturbed_trainer()
  path = str(tmp_path / 'saved_model')
  # Finite weights whose log-densities overflow (a diverged run) ...
  for coupling in trainer.flow.couplings:
    coupling.scale.assign(tf.fill(coupling.scale.shape, 1e30))
  with pytest.raises(UnhealthyExportError, match='non-finite log_prob for 32 of 32'):
    trainer.export(path, check_images=lib.test_images())
  # ... and a NaN weight.
  variable = trainer.trainable_variables[0]
  variable.assign(tf.fill(variable.shape, np.nan))
  with pytest.raises(UnhealthyExportError, match='non-finite variable'):
    trainer.export(path, check_images=lib.test_images())
  assert os.listdir(tmp_path) == []
