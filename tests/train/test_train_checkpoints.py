"""Checkpoints restore everything; non-finite steps are skipped or rolled back."""

import logging

import numpy as np
import pytest
import tensorflow as tf

import train_testlib as lib


def _optimizer_values(trainer):
  return [np.array(v.numpy()) for v in trainer.optimizer.variables]


def _checkpoint_values(path):
  reader = tf.train.load_checkpoint(path)
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}


def test_restore_continues_exactly_where_the_run_was(tmp_path):
  directory = str(tmp_path / 'checkpoints')
  run, _ = lib.train_tiny(checkpoint_dir=directory, steps=3,
                          checkpoint_every=2)
  steps = sorted(int(p.rsplit('-', 1)[1]) for p in run.manager.checkpoints)
  assert steps == [0, 2, 3]

  fresh = lib.make_trainer()
  before = lib.variables_dict(fresh)
  assert fresh.restore(run.manager.latest_checkpoint) == 3
  restored, expected = lib.variables_dict(fresh), lib.variables_dict(run)
  for key in expected:        # trainable weights and batch-norm statistics
    np.testing.assert_array_equal(restored[key], expected[key], err_msg=key)
  stats = [i for i, v in enumerate(fresh.flow.variables) if not v.trainable]
  assert stats and any(
      not np.array_equal(before[f'v{i:04d}'], restored[f'v{i:04d}'])
      for i in stats)
  for got, want in zip(_optimizer_values(fresh), _optimizer_values(run)):
    np.testing.assert_array_equal(got, want)
  assert int(fresh.optimizer.iterations.numpy()) == 3

  # From step 2, one more step on the same data reproduces step 3.
  fresh.restore([p for p in run.manager.checkpoints if p.endswith('-2')][0])
  assert fresh.step == 2 and int(fresh.optimizer.iterations.numpy()) == 2
  fresh.fit(lib.dataset_fn, epochs=1, steps_per_epoch=3, verbose=0)
  assert fresh.step == 3
  resumed = lib.variables_dict(fresh)
  for key in expected:
    np.testing.assert_allclose(resumed[key], expected[key], rtol=1e-6,
                               atol=1e-7, err_msg=key)
  for got, want in zip(_optimizer_values(fresh), _optimizer_values(run)):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


def _poisoned(bad_batches):
  """A dataset_fn whose first dataset has NaN batches at `bad_batches`."""
  calls = []

  def dataset_fn():
    calls.append(len(calls))
    dataset = lib.dataset_fn()
    if len(calls) > 1:
      return dataset
    bad = tf.constant(sorted(bad_batches), tf.int64)

    def poison(index, x):
      return tf.where(tf.reduce_any(tf.equal(index, bad)),
                      tf.fill(tf.shape(x), np.nan), x)
    return dataset.enumerate().map(poison)
  return dataset_fn, calls


def test_non_finite_steps_are_skipped_then_rolled_back(tmp_path, caplog):
  caplog.set_level(logging.INFO, logger='tfp_realnvp')
  trainer = lib.make_trainer(checkpoint_dir=str(tmp_path / 'ckpt'),
                             checkpoint_every=2, max_bad_steps=2,
                             max_to_keep=10)
  # Batch 3 alone: skipped. Batches 5 and 6 in a row: back to the checkpoint
  # of step 6 with half the learning rate; the data then come back clean.
  dataset_fn, calls = _poisoned({3, 5, 6})
  history = trainer.fit(dataset_fn, epochs=2, steps_per_epoch=4, verbose=0)
  log = caplog.text
  assert 'non-finite loss' in log and 'skipped the update' in log
  assert 'went back to' in log and 'ckpt-6' in log
  assert 'lowered the learning rate' in log
  assert len(calls) == 2
  assert trainer.step == 8
  # Applied: batches 0, 1, 2, 4 before the rollback, 6 and 7 after it.
  assert int(trainer.optimizer.iterations.numpy()) == 6
  assert float(trainer.lr_factor.numpy()) == 0.5
  assert trainer.learning_rate == pytest.approx(5e-4)
  assert history[0]['skipped_steps'] == 1
  assert all(np.isfinite(h['train_bits_per_dim']) for h in history)
  # No checkpoint holds a non-finite value.
  assert trainer.manager.checkpoints
  for path in trainer.manager.checkpoints:
    for key, value in _checkpoint_values(path).items():
      if np.issubdtype(np.asarray(value).dtype, np.floating):
        assert np.all(np.isfinite(value)), (path, key)

  # A skipped step leaves weights, optimizer and batch-norm statistics alone.
  before = lib.variables_dict(trainer)
  optimizer_before = _optimizer_values(trainer)
  x = next(iter(lib.dataset_fn())).numpy()
  x[0, 0, 0, 0] = np.nan
  batches = iter(trainer.distribute(
      lambda: tf.data.Dataset.from_tensors(x).repeat()))
  result = trainer.train_step(next(batches))
  assert not result.applied and not result.loss_finite
  after = lib.variables_dict(trainer)
  for key in before:
    np.testing.assert_array_equal(after[key], before[key], err_msg=key)
  for got, want in zip(_optimizer_values(trainer), optimizer_before):
    np.testing.assert_array_equal(got, want)

  # A non-finite weight is never saved.
  saved = list(trainer.manager.checkpoints)
  trainer.trainable_variables[0].assign(
      tf.fill(trainer.trainable_variables[0].shape, np.nan))
  with pytest.raises(FloatingPointError, match='not saved'):
    trainer.save(epoch=2)
  assert list(trainer.manager.checkpoints) == saved
