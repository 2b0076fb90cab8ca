"""examples/train_mnist.py end to end: SIGKILL mid-run, --resume, outputs,
examples/evaluate.py, and the SavedModel loaded by a TensorFlow-only program."""

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

import train_testlib as lib
from tfp_realnvp.data import image_pipeline
from tfp_realnvp.train import runs

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TRAIN = os.path.join(ROOT, 'examples', 'train_mnist.py')
EVALUATE = os.path.join(ROOT, 'examples', 'evaluate.py')
STEPS_PER_EPOCH = 4
INTERVAL = 2
KILL_AFTER_STEP = 6    # past the first epoch's end (evaluation, samples)
TIMEOUT = 420


def _env():
  paths = [ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(
      os.pathsep) if p]
  return dict(os.environ, PYTHONPATH=os.pathsep.join(paths),
              TF_CPP_MIN_LOG_LEVEL='2')


def _args(output_dir, epochs):
  return [sys.executable, TRAIN, '--dataset', 'digits', '--epochs', str(epochs),
          '--steps-per-epoch', str(STEPS_PER_EPOCH), '--batch-size', '16',
          '--num-scales', '1', '--hidden-channels', '4',
          '--num-res-blocks', '0', '--checkpoint-every', str(INTERVAL),
          '--num-samples', '16', '--quiet', '--output-dir', str(output_dir)]


def _latest_step(checkpoint_dir):
  state = os.path.join(checkpoint_dir, 'checkpoint')
  try:
    with open(state) as f:
      match = re.search(r'^model_checkpoint_path: "ckpt-(\d+)"', f.read(),
                        re.M)
  except OSError:
    return None
  return int(match.group(1)) if match else None


@pytest.fixture(scope='module')
def cli_run(tmp_path_factory):
  """Runs the CLI, SIGKILLs it mid-run, then resumes it to the end."""
  out = tmp_path_factory.mktemp('cli_run')
  checkpoints = out / 'checkpoints'
  killed_log = out / 'killed.log'
  with open(killed_log, 'w') as log:
    proc = subprocess.Popen(_args(out, epochs=50), env=_env(), stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + TIMEOUT
    try:
      while True:
        step = _latest_step(checkpoints)
        if step is not None and step >= KILL_AFTER_STEP:
          break
        assert proc.poll() is None, (
            f'the run ended before it could be killed:\n'
            f'{killed_log.read_text()[-3000:]}')
        assert time.time() < deadline, 'no checkpoint in time'
        time.sleep(0.05)
      os.kill(proc.pid, signal.SIGKILL)
    finally:
      if proc.poll() is None:
        proc.kill()
      proc.wait()
  assert proc.returncode == -signal.SIGKILL
  # Every checkpoint the killed run left loads (read before the resumed run
  # rotates them out).
  state = tf.train.get_checkpoint_state(str(checkpoints))
  saved = {}
  for path in state.all_model_checkpoint_paths:
    reader = tf.train.load_checkpoint(path)
    keys = reader.get_variable_to_shape_map()
    iterations = [k for k in keys if k.startswith('optimizer/')
                  and 'iteration' in k]
    saved[int(path.rsplit('-', 1)[1])] = (
        int(reader.get_tensor('step/.ATTRIBUTES/VARIABLE_VALUE')),
        int(reader.get_tensor(iterations[0])) if iterations else None)
  latest = _latest_step(checkpoints)
  epochs = latest // STEPS_PER_EPOCH + 2
  resumed = subprocess.run(_args(out, epochs) + ['--resume'], env=_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=TIMEOUT, check=False)
  (out / 'resumed.log').write_text(resumed.stdout)
  assert resumed.returncode == 0, resumed.stdout[-3000:]
  return dict(out=out, killed_log=killed_log.read_text(), saved=saved,
              latest=latest, epochs=epochs, resumed_log=resumed.stdout)


@pytest.mark.slow
def test_sigkill_leaves_loadable_checkpoints_and_resume_continues(cli_run):
  latest = cli_run['latest']
  # Every checkpoint the killed run listed loaded, with the step of its name
  # and as many optimizer updates (no step was skipped).
  assert latest in cli_run['saved']
  for step, (saved_step, iterations) in cli_run['saved'].items():
    assert saved_step == step and iterations == step
  # The run resumes from the last checkpoint it completed (the one it last
  # announced, or one it finished writing just before the kill reached the
  # log line): at most one checkpoint interval of work is lost.
  announced = [int(s) for s in re.findall(r'saved checkpoint \S*ckpt-(\d+)',
                                          cli_run['killed_log'])]
  assert announced and 0 <= latest - announced[-1] <= INTERVAL
  assert latest >= KILL_AFTER_STEP
  log = cli_run['resumed_log']
  assert re.search(rf'restored checkpoint \S*ckpt-{latest}: step {latest}, '
                   rf'\d+ epoch\(s\) done, optimizer iterations {latest}', log)
  assert 'dataset: digits' in log
  final = cli_run['epochs'] * STEPS_PER_EPOCH
  assert f'ckpt-{final} (step {final}' in log


@pytest.mark.slow
def test_cli_writes_metrics_samples_curves_and_tensorboard(cli_run):
  out, epochs = cli_run['out'], cli_run['epochs']
  metrics = json.loads((out / 'metrics.json').read_text())
  assert metrics['dataset'] == 'digits' and metrics['num_levels'] == 17
  assert metrics['epoch'] == list(range(1, epochs + 1))
  assert metrics['final_step'] == epochs * STEPS_PER_EPOCH
  for key in ('train_bits_per_dim', 'test_bits_per_dim'):
    values = metrics[key]
    assert len(values) == epochs and np.all(np.isfinite(values))
    assert 0. < min(values) and max(values) < 8.
  assert metrics['images_per_second'] > 0
  assert metrics['final_test_bits_per_dim'] == metrics['test_bits_per_dim'][-1]
  for epoch in range(1, epochs + 1):
    assert (out / 'samples' / f'epoch_{epoch:03d}.png').stat().st_size > 0
  assert (out / 'bits_per_dim.png').stat().st_size > 0
  assert (out / 'saved_model' / 'saved_model.pb').exists()
  tags = {}
  for path in (out / 'tensorboard').iterdir():
    for record in tf.data.TFRecordDataset(str(path)):
      event = tf.compat.v1.Event.FromString(record.numpy())
      for value in event.summary.value:
        tags.setdefault(value.tag, set()).add(event.step)
        plugin = value.metadata.plugin_data.plugin_name
        if plugin:
          assert plugin in ('scalars', 'images')
  every_epoch = set(range(1, epochs + 1))
  assert tags['bits_per_dim/test'] == every_epoch
  assert tags['bits_per_dim/train'] == every_epoch
  assert tags['samples_T0.7'] == every_epoch


@pytest.fixture(scope='module')
def evaluation(cli_run):
  spec = importlib.util.spec_from_file_location('evaluate_example', EVALUATE)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  out = cli_run['out']
  return module.main([str(out), '--temperatures', '0.5', '1',
                      '--num-samples', '16'])


@pytest.mark.slow
def test_evaluate_scores_the_checkpoint_and_samples(cli_run, evaluation):
  out = cli_run['out']
  metrics = json.loads((out / 'metrics.json').read_text())
  assert evaluation['step'] == metrics['final_step']
  assert evaluation['num_test_examples'] == 297
  np.testing.assert_allclose(evaluation['test_bits_per_dim'],
                             metrics['final_test_bits_per_dim'], rtol=1e-5)
  written = json.loads((out / 'eval' / 'eval.json').read_text())
  assert written['test_bits_per_dim'] == evaluation['test_bits_per_dim']
  for name in ('samples_T0.5.png', 'samples_T1.png', 'temperatures.png'):
    assert (out / 'eval' / name).stat().st_size > 0


_LOADER = textwrap.dedent('''
    import json, sys
    import numpy as np
    import tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    x = np.load(sys.argv[2])
    bpd = model.bits_per_dim(x).numpy()
    log_prob = model.signatures['log_prob'](x=tf.constant(x[:4]))['log_prob']
    args = (tf.constant(8), tf.constant(0.7), tf.constant(3, tf.int64))
    a, b = model.sample(*args).numpy(), model.sample(*args).numpy()
    signature = model.signatures['sample'](
        n=tf.constant(8), temperature=tf.constant(0.7),
        seed=tf.constant(3, tf.int64))['images'].numpy()
    print(json.dumps(dict(
        bpd=float(bpd.mean()), log_prob=log_prob.numpy().tolist(),
        sample_shape=list(a.shape), repeatable=bool(np.array_equal(a, b)),
        signature_matches=bool(np.array_equal(a, signature)),
        sample_min=float(a.min()), sample_max=float(a.max()),
        event_shape=model.event_shape.numpy().tolist(),
        num_levels=int(model.num_levels.numpy()),
        modules=sorted(m for m in sys.modules
                       if m.split('.')[0] in ('tfp_realnvp',
                                              'tensorflow_probability')))))
''')


@pytest.mark.slow
def test_saved_model_works_in_a_program_without_tfp_realnvp(
    cli_run, evaluation, tmp_path):
  images = lib.digits()
  x = np.concatenate(list(image_pipeline(
      images.test, images.num_levels, 297, training=False,
      seed=runs.EVAL_SEED, drop_remainder=False).as_numpy_iterator()))
  np.save(tmp_path / 'x.npy', x)
  script = tmp_path / 'load.py'
  script.write_text(_LOADER)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  env.pop('PYTHONPATH', None)
  done = subprocess.run(
      [sys.executable, str(script), str(cli_run['out'] / 'saved_model'),
       str(tmp_path / 'x.npy')], env=env, cwd=str(tmp_path),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      timeout=TIMEOUT, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  result = json.loads(done.stdout.strip().splitlines()[-1])
  assert result['modules'] == []
  assert result['event_shape'] == [8, 8, 1] and result['num_levels'] == 17
  # The same test images and noise as evaluate.py: the same bits/dim.
  np.testing.assert_allclose(result['bpd'], evaluation['test_bits_per_dim'],
                             rtol=1e-5)
  assert np.all(np.isfinite(result['log_prob']))
  assert result['sample_shape'] == [8, 8, 8, 1]
  assert result['repeatable'] and result['signature_matches']
  assert 0. <= result['sample_min'] and result['sample_max'] <= 1.


def test_load_dataset_falls_back_to_digits(tmp_path):
  messages = []
  images = runs.load_dataset('fashion_mnist', data_dir=str(tmp_path / 'none'),
                             log=messages.append)
  assert images.name == 'digits' and images.num_levels == 17
  assert messages and 'falling back' in messages[0]
  with pytest.raises(FileNotFoundError):
    runs.load_dataset('fashion_mnist', data_dir=str(tmp_path / 'none'),
                      fallback=False)
