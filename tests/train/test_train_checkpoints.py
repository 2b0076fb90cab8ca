"""Checkpoints restore everything; damaged ones are skipped; diverging runs go back to a
good checkpoint and end with an error naming it."""

import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import train_testlib as lib

from tfp_realnvp.data import image_pipeline
from tfp_realnvp.train import checkpoints
from tfp_realnvp.train import runs
from tfp_realnvp.train.health import HealthJudge
from tfp_realnvp.train.health import RunDivergedError


def _optimizer_values(trainer):
  return [np.array(v.numpy()) for v in trainer.optimizer.variables]


def _checkpoint_values(path):
  reader = tf.train.load_checkpoint(path)
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  """3 steps of the tiny flow, checkpoints at steps 0, 2 and 3 (the epoch's end)."""
  directory = str(tmp_path_factory.mktemp('tiny_run') / 'checkpoints')
  run, _ = lib.train_tiny(checkpoint_dir=directory, steps=3, checkpoint_every=2)
  return run, directory


def test_restore_continues_exactly_where_the_run_was(tiny_run):
  run, _ = tiny_run
  steps = sorted(int(p.rsplit('-', 1)[1]) for p in run.manager.checkpoints)
  assert steps == [0, 2, 3]
  assert run.good_checkpoint.endswith(os.path.join('good', 'ckpt-3'))

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
  fresh.fit(lib.dataset_fn, epochs=1, steps_per_epoch=3, progress='none')
  assert fresh.step == 3
  resumed = lib.variables_dict(fresh)
  for key in expected:
    np.testing.assert_allclose(resumed[key], expected[key], rtol=1e-6,
                               atol=1e-7, err_msg=key)
  for got, want in zip(_optimizer_values(fresh), _optimizer_values(run)):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


def _damage(prefix, how):
  data = prefix + '.data-00000-of-00001'
  if how == 'missing':
    os.remove(prefix + '.index')
    os.remove(data)
  elif how == 'truncated_data':
    with open(data, 'r+b') as f:
      f.truncate(os.path.getsize(data) // 2)
  elif how == 'truncated_index':
    with open(prefix + '.index', 'r+b') as f:
      f.truncate(os.path.getsize(prefix + '.index') // 2)
  elif how == 'flipped_data':
    raw = bytearray(open(data, 'rb').read())
    for i in range(0, len(raw), 7):
      raw[i] ^= 0xFF
    open(data, 'wb').write(bytes(raw))


@pytest.mark.parametrize('how', ['missing', 'truncated_data', 'truncated_index',
                                 'flipped_data'])
def test_resume_and_evaluation_skip_damaged_checkpoints(tiny_run, tmp_path, how, caplog):
  caplog.set_level(logging.WARNING, logger='tfp_realnvp')
  directory = str(tmp_path / 'checkpoints')
  shutil.copytree(tiny_run[1], directory)
  # The newest step's checkpoint is damaged in the rotation and in the good slot.
  for prefix in (os.path.join(directory, 'ckpt-3'),
                 os.path.join(directory, 'good', 'ckpt-3')):
    _damage(prefix, how)
  trainer = lib.make_trainer(checkpoint_dir=directory)
  assert trainer.restore() == 2
  assert trainer.restored_from == os.path.join(directory, 'ckpt-2')
  assert int(trainer.optimizer.iterations.numpy()) == 2
  skipped = {s.path: s.reason for s in trainer.skipped_checkpoints}
  assert set(skipped) == {os.path.join(directory, 'ckpt-3'),
                          os.path.join(directory, 'good', 'ckpt-3')}
  if how == 'missing':
    assert all('index file ckpt-3.index is missing' in r for r in skipped.values())
  assert 'skipped checkpoint' in caplog.text and 'ckpt-3' in caplog.text
  # Evaluation (load_run's restore of the flow alone) takes the same one.
  flow = lib.make_trainer().flow
  result = checkpoints.restore_newest(tf.train.Checkpoint(flow=flow), directory,
                                      partial=True)
  assert result.path == os.path.join(directory, 'ckpt-2') and len(result.skipped) == 2
  np.testing.assert_array_equal(flow.variables[0].numpy(),
                                trainer.flow.variables[0].numpy())


def test_no_loadable_checkpoint_never_restarts_from_step_zero(tiny_run, tmp_path):
  directory = str(tmp_path / 'checkpoints')
  shutil.copytree(tiny_run[1], directory)
  for prefix in checkpoints.find_checkpoints(directory):
    _damage(prefix, 'truncated_data')
  files = sorted(os.listdir(directory))
  trainer = lib.make_trainer(checkpoint_dir=directory)
  with pytest.raises(checkpoints.NoLoadableCheckpointError, match='none of the 4 checkpoint'):
    trainer.fit(lib.dataset_fn, epochs=1, steps_per_epoch=2, resume=True,
                progress='none')
  with pytest.raises(ValueError, match='holds checkpoints of an earlier run'):
    lib.make_trainer(checkpoint_dir=directory).fit(lib.dataset_fn, epochs=1,
                                                   steps_per_epoch=2, progress='none')
  assert sorted(os.listdir(directory)) == files and trainer.step == 0


def _poisoned(bad_batches, always=False):
  """A dataset_fn whose first dataset (every one with `always`) has NaN batches.

  `bad_batches`: a set of batch indices, or an int k: every batch from k on.
  """
  calls = []

  def dataset_fn():
    calls.append(len(calls))
    dataset = lib.dataset_fn()
    if len(calls) > 1 and not always:
      return dataset
    if isinstance(bad_batches, int):
      is_bad = lambda index: index >= bad_batches  # noqa: E731
    else:
      bad = tf.constant(sorted(bad_batches), tf.int64)
      is_bad = lambda index: tf.reduce_any(tf.equal(index, bad))  # noqa: E731

    def poison(index, x):
      return tf.where(is_bad(index), tf.fill(tf.shape(x), np.nan), x)
    return dataset.enumerate().map(poison)
  return dataset_fn, calls


def test_non_finite_steps_are_skipped_then_rolled_back_to_the_good_checkpoint(
    tmp_path, caplog):
  caplog.set_level(logging.INFO, logger='tfp_realnvp')
  trainer = lib.make_trainer(checkpoint_dir=str(tmp_path / 'ckpt'),
                             checkpoint_every=2, max_bad_steps=2, max_to_keep=10)
  # Batch 3 alone: skipped. Batches 5 and 6 in a row: back to the last good checkpoint,
  # the end of epoch 1 (step 4), not the newer ckpt-6, with half the learning rate; the
  # data then come back clean.
  dataset_fn, calls = _poisoned({3, 5, 6})
  history = trainer.fit(dataset_fn, epochs=2, steps_per_epoch=4, progress='none')
  log = caplog.text
  assert 'non-finite batch' in log and 'skipped the update' in log
  assert f'went back to {os.path.join(str(tmp_path), "ckpt", "good", "ckpt-4")}' in log
  assert 'lowered the learning rate' in log
  assert len(calls) == 2
  assert trainer.step == 8
  # Applied: batches 0, 1, 2 before ckpt-4; after the rollback, steps 4 to 7 again.
  assert int(trainer.optimizer.iterations.numpy()) == 7
  assert float(trainer.lr_factor.numpy()) == 0.5
  assert trainer.learning_rate == pytest.approx(5e-4)
  assert history[0]['skipped_steps'] == 1
  assert all(np.isfinite(h['train_bits_per_dim']) for h in history)
  # No checkpoint holds a non-finite value (but the best score, inf before any).
  assert trainer.manager.checkpoints
  for path in trainer.manager.checkpoints + [trainer.good_checkpoint]:
    for key, value in _checkpoint_values(path).items():
      if np.issubdtype(np.asarray(value).dtype, np.floating) and 'best_score' not in key:
        assert np.all(np.isfinite(value)), (path, key)

  # A skipped step leaves weights, optimizer and batch-norm statistics alone.
  before = lib.variables_dict(trainer)
  optimizer_before = _optimizer_values(trainer)
  x = next(iter(lib.dataset_fn())).numpy()
  x[0, 0, 0, 0] = np.nan
  batches = iter(trainer.distribute(
      lambda: tf.data.Dataset.from_tensors(x).repeat()))
  result = trainer.train_step(next(batches))
  assert not result.applied and not result.loss_finite and not result.batch_finite
  after = lib.variables_dict(trainer)
  for key in before:
    np.testing.assert_array_equal(after[key], before[key], err_msg=key)
  for got, want in zip(_optimizer_values(trainer), optimizer_before):
    np.testing.assert_array_equal(got, want)

  # Pixels outside [0, 1] are a data error, not a numerical one.
  x[0, 0, 0, 0] = 1.5
  batches = iter(trainer.distribute(
      lambda: tf.data.Dataset.from_tensors(x).repeat()))
  with pytest.raises(tf.errors.InvalidArgumentError, match=r'must lie in \[0, 1\]'):
    trainer.train_step(next(batches))

  # A non-finite weight is never saved.
  saved = list(trainer.manager.checkpoints)
  trainer.trainable_variables[0].assign(
      tf.fill(trainer.trainable_variables[0].shape, np.nan))
  with pytest.raises(FloatingPointError, match='not saved'):
    trainer.save(epoch=2)
  assert list(trainer.manager.checkpoints) == saved


def test_a_run_that_keeps_diverging_stops_naming_its_good_checkpoint(tmp_path, caplog):
  caplog.set_level(logging.INFO, logger='tfp_realnvp')
  directory = str(tmp_path / 'ckpt')
  trainer = lib.make_trainer(checkpoint_dir=directory, checkpoint_every=1, max_to_keep=1,
                             max_bad_steps=1, max_rollbacks=2)
  # Three clean steps (epoch 1 and one step of epoch 2), then every batch is NaN,
  # whatever the restart.
  dataset_fn, _ = _poisoned(3, always=True)
  with pytest.raises(RunDivergedError) as error:
    trainer.fit(dataset_fn, epochs=3, steps_per_epoch=2, progress='none')
  good = os.path.join(directory, 'good', 'ckpt-2')
  assert error.value.last_good_checkpoint == good
  assert f'The last good checkpoint is {good}.' in str(error.value)
  assert 'already rolled back 2 times' in str(error.value)
  assert caplog.text.count(f'went back to {good}') == 2
  assert float(trainer.lr_factor.numpy()) == 0.25
  # The rotation (max_to_keep=1) moved past step 2; the good checkpoint stayed, loads.
  assert trainer.manager.checkpoints == [os.path.join(directory, 'ckpt-3')]
  assert not os.path.exists(os.path.join(directory, 'ckpt-2.index'))
  fresh = lib.make_trainer()
  assert fresh.restore(good) == 2
  assert all(np.all(np.isfinite(v.numpy())) for v in fresh.flow.variables)


def test_unhealthy_validation_rolls_back_and_the_best_checkpoint_is_kept(tmp_path, caplog):
  caplog.set_level(logging.INFO, logger='tfp_realnvp')
  images = lib.digits()
  calls = []

  def validation_fn():
    # Step 0 and epoch 1 are scored on real images; from epoch 2 on, NaN.
    calls.append(1)
    validation = runs.split_validation(images.train, 64)[1]
    batches = image_pipeline(validation, images.num_levels, 64, training=False, seed=1)
    return batches if len(calls) <= 2 else batches.map(lambda b: b * np.nan)

  directory = str(tmp_path / 'ckpt')
  trainer = lib.make_trainer(checkpoint_dir=directory, checkpoint_every=None,
                             max_rollbacks=1)
  seen = []
  with pytest.raises(RunDivergedError) as error:
    trainer.fit(lib.dataset_fn, epochs=3, steps_per_epoch=2, validation_fn=validation_fn,
                on_epoch_end=lambda epoch, logs: seen.append(dict(logs)), progress='none')
  assert 'epoch 2 is unhealthy: its validation bits/dim are not finite' in caplog.text
  good = os.path.join(directory, 'good', 'ckpt-2')
  assert error.value.last_good_checkpoint == good
  assert len(calls) == 4           # step 0, epoch 1, epoch 2 twice
  assert [logs['epoch'] for logs in seen] == [1]     # unhealthy epochs are not reported
  assert seen[0]['best'] and np.isfinite(seen[0]['validation_bits_per_dim'])
  assert trainer.best_checkpoint == os.path.join(directory, 'best', 'ckpt-2')
  assert int(trainer.best_epoch.numpy()) == 1
  assert float(trainer.best_score.numpy()) == pytest.approx(
      seen[0]['validation_bits_per_dim'])
  # Early stopping counts the epochs since the best one.
  trainer.config.patience = 2
  assert not trainer._patience_exhausted(2)  # pylint: disable=protected-access
  assert trainer._patience_exhausted(3)  # pylint: disable=protected-access


def test_health_judge():
  judge = HealthJudge(max_rise=1.)
  assert judge.judge(5., float('inf')).healthy and judge.judge(5., float('inf')).improved
  assert judge.judge(4.9, 5.).improved
  verdict = judge.judge(5.9, 5.)
  assert verdict.healthy and not verdict.improved
  verdict = judge.judge(8218., 5.)      # a float16 run that blew up
  assert not verdict.healthy and 'more than 1 above the best so far' in verdict.reason
  assert judge.judge(float('nan'), 5., 'validation bits/dim').reason == (
      'its validation bits/dim are not finite (nan)')
  for bad in (float('nan'), float('inf')):
    assert not judge.judge(bad, 5.).healthy
  with pytest.raises(ValueError, match='max_rise'):
    HealthJudge(0.)


def test_checkpoint_store_keeps_slots_out_of_the_rotation(tmp_path):
  value = tf.Variable([1., 2.])
  store = checkpoints.CheckpointStore(tf.train.Checkpoint(value=value), tmp_path,
                                      max_to_keep=2, checked_variables=[value])
  store.save(0)
  good = store.keep('good', 0)
  for step in range(1, 5):
    value.assign([step, step])
    store.save(step)
  assert [checkpoints.checkpoint_number(p) for p in store.checkpoints] == [3, 4]
  assert good == str(tmp_path / 'good' / 'ckpt-0') and os.path.exists(good + '.index')
  assert [checkpoints.checkpoint_number(p)
          for p in checkpoints.find_checkpoints(str(tmp_path))] == [4, 3, 0]
  store.restore(store.slot_checkpoint('good'))
  np.testing.assert_array_equal(value.numpy(), [1., 2.])
  value.assign([np.nan, 0.])
  with pytest.raises(checkpoints.NonFiniteStateError, match='not saved'):
    store.save(5)
  with pytest.raises(checkpoints.NonFiniteStateError):
    store.keep('best', 5)
  assert [checkpoints.checkpoint_number(p) for p in store.checkpoints] == [3, 4]
  assert store.slot_checkpoint('best') is None
  with pytest.raises(checkpoints.CheckpointLoadError, match='ckpt-9.index is missing'):
    store.restore(str(tmp_path / 'ckpt-9'))
