"""The CLIs under faults: bad flags and data stop them before anything is written (exit
2, one line naming the flag or file); an earlier run is never lost; a run folder has one
owner; a diverging run fails (exit 1) naming its last good checkpoint."""

import json
import multiprocessing
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tfp_realnvp.cli import evaluate as cli_evaluate
from tfp_realnvp.cli import train as cli_train
from tfp_realnvp.data import image_pipeline
from tfp_realnvp.train.run_lock import RunLock

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = ['--dataset', 'digits', '--epochs', '1', '--steps-per-epoch', '2',
        '--batch-size', '16', '--num-scales', '1', '--hidden-channels', '4',
        '--num-res-blocks', '0', '--num-samples', '4', '--quiet']


def _error_line(capsys):
  err = capsys.readouterr().err.strip().splitlines()
  assert err, 'no error message'
  assert not any('Traceback' in line for line in err)
  return err[-1]


@pytest.mark.parametrize('flags, flag', [
    (['--eval-batch-size', '0'], '--eval-batch-size'),
    (['--max-test-examples', '0'], '--max-test-examples'),
    (['--num-samples', '0'], '--num-samples'),
    (['--batch-size', '0', '--steps-per-epoch', '0'], '--batch-size'),
    (['--steps-per-epoch', '-1'], '--steps-per-epoch'),
    (['--lr', 'nan'], '--lr'),
    (['--temperature', '-0.5'], '--temperature'),
    (['--time-limit', '0'], '--time-limit'),
    (['--num-scales', 'two'], '--num-scales'),
    (['--resume', '--overwrite'], '--overwrite'),
    (['--random-shift', '1.5'], '--random-shift'),
    (['--dropout', '1'], '--dropout'),
])
def test_bad_flags_stop_before_anything_is_loaded_or_written(tmp_path, capsys, flags,
                                                              flag):
  out = tmp_path / 'run'
  assert cli_train.main(TINY + flags + ['--output-dir', str(out)]) == 2
  assert flag in _error_line(capsys)
  assert not out.exists()


def test_random_shift_reaches_the_training_pipeline_only(tmp_path, monkeypatch):
  calls = []

  def recording_pipeline(*args, **kwargs):
    calls.append((kwargs['training'], kwargs.get('random_shift', 0.)))
    return image_pipeline(*args, **kwargs)

  monkeypatch.setattr(cli_train, 'image_pipeline', recording_pipeline)
  out = tmp_path / 'run'
  assert cli_train.main(TINY + ['--random-shift', '0.25', '--output-dir', str(out)]) == 0
  assert (True, 0.25) in calls
  assert {shift for training, shift in calls if not training} == {0.}
  assert json.loads((out / 'config.json').read_text())['random_shift'] == 0.25


def test_dropout_reaches_every_residual_block_and_the_config(tmp_path, monkeypatch):
  from tfp_realnvp.nets import ResidualBlock  # pylint: disable=g-import-not-at-top
  from tfp_realnvp.train import runs  # pylint: disable=g-import-not-at-top
  flows = []
  make_flow = runs.make_flow

  def recording_make_flow(*args, **kwargs):
    flows.append(make_flow(*args, **kwargs))
    return flows[-1]

  monkeypatch.setattr(runs, 'make_flow', recording_make_flow)
  out = tmp_path / 'run'
  assert cli_train.main(TINY + ['--num-res-blocks', '1', '--dropout', '0.25',
                                '--output-dir', str(out)]) == 0
  config = json.loads((out / 'config.json').read_text())
  assert config['dropout'] == 0.25
  assert runs.flow_kwargs_from_config(config)['dropout_rate'] == 0.25
  blocks = [layer for flow in flows for net in flow.networks for layer in net.layers
            if isinstance(layer, ResidualBlock)]
  assert blocks and {block.dropout_rate for block in blocks} == {0.25}


@pytest.mark.parametrize('flags, to_deadline', [
    (['--decay', 'cosine', '--time-limit', '10'], True),
    (['--time-limit', '10'], False),
    (['--decay', 'cosine'], False),
])
def test_decay_follows_the_time_limit(tmp_path, monkeypatch, flags, to_deadline):
  calls = []
  fit = cli_train.Trainer.fit

  def recording_fit(self, *args, **kwargs):
    calls.append((kwargs['max_seconds'], kwargs['decay_to_deadline']))
    return fit(self, *args, **kwargs)

  monkeypatch.setattr(cli_train.Trainer, 'fit', recording_fit)
  assert cli_train.main(TINY + flags + ['--output-dir', str(tmp_path / 'run')]) == 0
  assert calls == [(600. if '--time-limit' in flags else None, to_deadline)]


def _write_idx_gz(folder, corrupt=False):
  import gzip  # pylint: disable=g-import-not-at-top
  header = bytes([0, 0, 8, 3]) + np.array([40, 8, 8], '>u4').tobytes()
  raw = bytearray(gzip.compress(header + bytes(40 * 64)))
  if corrupt:
    for i in range(30, len(raw) - 10, 11):
      raw[i] ^= 0x5A
  for name in ('train-images-idx3-ubyte.gz', 't10k-images-idx3-ubyte.gz'):
    (folder / name).write_bytes(bytes(raw))


@pytest.mark.parametrize('source, message', [
    ('empty_folder', '/data holds no'),
    ('corrupt_gzip', 'corrupt gzip'),
    ('empty_test_split', 'the test split of'),
    ('too_few_images', '--batch-size 64 is larger than the'),
])
def test_unreadable_data_is_an_error_never_a_fallback(tmp_path, capsys, source, message):
  data = tmp_path / 'data'
  data.mkdir()
  flags = ['--data-dir', str(data), '--dataset', 'mnist']
  if source == 'corrupt_gzip':
    _write_idx_gz(data, corrupt=True)
  elif source == 'empty_test_split':
    data = data / 'images.npz'
    np.savez(data, x_train=np.zeros((40, 8, 8), np.uint8),
             x_test=np.zeros((0, 8, 8), np.uint8))
    flags = ['--data-dir', str(data), '--dataset', 'mnist']
  elif source == 'too_few_images':
    _write_idx_gz(data)
    flags += ['--batch-size', '64']
  out = tmp_path / 'run'
  argv = TINY + flags + ['--output-dir', str(out)]     # the last --batch-size counts
  assert cli_train.main(argv) == 2
  line = _error_line(capsys)
  assert message in line
  if source != 'too_few_images':
    assert str(data) in line and line.startswith('tfp-realnvp-train: error: --data-dir')
  assert not out.exists()
  assert cli_train.main(argv + ['--debug']) == 2
  assert 'Traceback' in capsys.readouterr().err


def _fake_run(folder, number=3):
  """A run folder with a config and one checkpoint whose files do not load."""
  checkpoints = folder / 'checkpoints'
  checkpoints.mkdir(parents=True)
  (checkpoints / f'ckpt-{number}.index').write_bytes(b'not a checkpoint index')
  (checkpoints / f'ckpt-{number}.data-00000-of-00001').write_bytes(b'\0' * 64)
  (folder / 'config.json').write_text(json.dumps({'note': 'the earlier run'}))
  return {p.relative_to(folder): p.read_bytes() for p in folder.rglob('*') if p.is_file()}


def _files(folder):
  return {p.relative_to(folder): p.read_bytes() for p in folder.rglob('*') if p.is_file()}


@pytest.mark.parametrize('flags, message', [
    (['--overwrite', '--num-scales', '5'], '--num-scales 5'),
    ([], 'holds checkpoints of an earlier run: pass --resume'),
    (['--resume'], 'none of the 1 checkpoint(s)'),
])
def test_an_earlier_run_is_never_lost(tmp_path, capsys, flags, message):
  out = tmp_path / 'run'
  before = _fake_run(out)
  assert cli_train.main(TINY + flags + ['--output-dir', str(out)]) == 2
  assert message in _error_line(capsys)
  assert _files(out) == before
  assert os.listdir(tmp_path) == ['run']


def _hold_lock(run_dir, ready, release):
  with RunLock(run_dir):
    ready.set()
    release.wait(120)


def test_a_run_folder_in_use_is_refused(tmp_path, capsys):
  out = tmp_path / 'run'
  context = multiprocessing.get_context('fork')
  ready, release = context.Event(), context.Event()
  holder = context.Process(target=_hold_lock, args=(str(out), ready, release))
  holder.start()
  try:
    assert ready.wait(60)
    assert cli_train.main(TINY + ['--output-dir', str(out)]) == 2
    line = _error_line(capsys)
    assert f'is in use by process {holder.pid}' in line
    assert sorted(os.listdir(out)) == ['run.lock']
  finally:
    release.set()
    holder.join(60)


def test_overwrite_moves_the_old_run_aside_and_a_diverging_run_fails(tmp_path, capsys):
  out = tmp_path / 'run'
  before = _fake_run(out)
  # A stale lock from a killed process is taken over and reported.
  (out / 'run.lock').write_text(json.dumps(dict(pid=999999, host='gone-host')))
  code = cli_train.main(TINY + ['--overwrite', '--lr', '1e30', '--epochs', '2',
                                '--output-dir', str(out)])
  captured = capsys.readouterr()
  assert code == 1, captured.err[-2000:]
  assert 'stale lock, taken over' in captured.out
  moved = [p for p in tmp_path.iterdir() if p.name.startswith('run.replaced-')]
  assert len(moved) == 1 and _files(moved[0]) == before
  assert 'moved the earlier run to' in captured.out
  # lr = 1e30 blows the weights up after every rollback: the run gives up, names its
  # last good checkpoint (the untrained model's, kept out of the rotation), exports
  # nothing and records why in valid JSON.
  error = captured.err.strip().splitlines()[-1]
  assert error.startswith('tfp-realnvp-train: error: ')
  good = os.path.join(str(out), 'checkpoints', 'good', 'ckpt-0')
  assert f'The last good checkpoint is {good}.' in error
  assert 'already rolled back 5 times' in error and 'Traceback' not in captured.err
  assert os.path.exists(good + '.index')
  assert not (out / 'saved_model').exists() and not (out / 'run.lock').exists()
  metrics = json.loads((out / 'metrics.json').read_text(),
                       parse_constant=lambda name: pytest.fail(f'{name} in JSON'))
  assert metrics['status'] == 'diverged'
  assert metrics['last_good_checkpoint'] == os.path.join('checkpoints', 'good', 'ckpt-0')


def test_the_scripts_exit_with_code_2_and_one_line(tmp_path):
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [str(ROOT)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]),
             TF_CPP_MIN_LOG_LEVEL='2')
  done = subprocess.run(
      [sys.executable, str(ROOT / 'examples' / 'train_mnist.py'), '--data-dir',
       str(tmp_path / 'missing'), '--output-dir', str(tmp_path / 'run')],
      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300,
      check=False)
  assert done.returncode == 2, done.stderr[-2000:]
  assert 'Traceback' not in done.stderr
  assert done.stderr.strip().splitlines()[-1] == (
      f'tfp-realnvp-train: error: --data-dir {tmp_path / "missing"}: cannot load the '
      f'images: data_dir {tmp_path / "missing"} does not exist.')
  assert not (tmp_path / 'run').exists()


def test_evaluate_errors_name_the_run(tmp_path, capsys):
  assert cli_evaluate.main([str(tmp_path)]) == 2
  assert f'{tmp_path / "config.json"} not found' in _error_line(capsys)
  _fake_run(tmp_path / 'run')
  (tmp_path / 'run' / 'config.json').write_text(json.dumps(dict(
      dataset='digits', image_shape=[8, 8, 1], num_levels=17, num_scales=1,
      hidden_channels=4, num_res_blocks=0)))
  assert cli_evaluate.main([str(tmp_path / 'run')]) == 2
  line = _error_line(capsys)
  assert 'none of the 1 checkpoint(s)' in line and 'ckpt-3' in line
  assert cli_evaluate.main([str(tmp_path / 'run'), '--checkpoint', 'best']) == 2
  assert 'no best checkpoint' in _error_line(capsys)
  assert cli_evaluate.main([str(tmp_path / 'run'), '--num-samples', '0']) == 2
  assert '--num-samples' in _error_line(capsys)
