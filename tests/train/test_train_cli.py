"""examples/train_mnist.py end to end: SIGKILL mid-run, --resume, outputs (validation,
best checkpoint, TensorBoard, progress lines), the evaluation CLI, and the SavedModel
loaded by a TensorFlow-only program."""

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
from tensorboard.backend.event_processing import event_accumulator

from tfp_realnvp.bits import bits_per_dim
from tfp_realnvp.cli import evaluate as cli_evaluate
from tfp_realnvp.data import image_pipeline
from tfp_realnvp.train import runs

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TRAIN = os.path.join(ROOT, 'examples', 'train_mnist.py')
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
          '--num-samples', '16', '--output-dir', str(output_dir)]


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
    proc = subprocess.Popen(_args(out, epochs=50) + ['--quiet'], env=_env(), stdout=log,
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
  # Every checkpoint the killed run left loads (read before the resumed run rotates
  # them out). A kill in the middle of a rotation may leave the state file listing the
  # checkpoint it was deleting: its index is gone, and resuming skips it.
  state = tf.train.get_checkpoint_state(str(checkpoints))
  saved = {}
  for path in state.all_model_checkpoint_paths:
    if not os.path.exists(path + '.index') and path != state.model_checkpoint_path:
      continue
    reader = tf.train.load_checkpoint(path)
    keys = reader.get_variable_to_shape_map()
    iterations = [k for k in keys if k.startswith('optimizer/')
                  and 'iteration' in k]
    saved[int(path.rsplit('-', 1)[1])] = (
        int(reader.get_tensor('step/.ATTRIBUTES/VARIABLE_VALUE')),
        int(reader.get_tensor(iterations[0])) if iterations else None)
  latest = _latest_step(checkpoints)
  epochs = latest // STEPS_PER_EPOCH + 2
  resumed = subprocess.run(_args(out, epochs) + ['--resume', '--log-every', '2'],
                           env=_env(),
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


def _strict_json(path):
  return json.loads(path.read_text(),
                    parse_constant=lambda name: pytest.fail(f'{name} in {path}'))


@pytest.mark.slow
def test_cli_writes_metrics_samples_curves_and_tensorboard(cli_run):
  out, epochs = cli_run['out'], cli_run['epochs']
  metrics = _strict_json(out / 'metrics.json')
  assert metrics['dataset'] == 'digits' and metrics['num_levels'] == 17
  assert metrics['status'] == 'done'
  assert metrics['epoch'] == list(range(1, epochs + 1))
  assert metrics['final_step'] == epochs * STEPS_PER_EPOCH
  for key in ('train_bits_per_dim', 'validation_bits_per_dim', 'test_bits_per_dim'):
    values = metrics[key]
    assert len(values) == epochs and np.all(np.isfinite(values)), key
    assert 0. < min(values) and max(values) < 8.
  assert metrics['images_per_second'] > 0
  assert metrics['final_test_bits_per_dim'] == metrics['test_bits_per_dim'][-1]
  # The validation split (a tenth of the 1500 training digits) picks the best epoch;
  # the SavedModel is taken from its checkpoint, kept apart from the rotation.
  config = _strict_json(out / 'config.json')
  assert (config['num_train'], config['num_validation']) == (1350, 150)
  best = metrics['best_epoch']
  validation = metrics['validation_bits_per_dim']
  assert validation[best - 1] == min(validation)
  assert metrics['best_validation_bits_per_dim'] == pytest.approx(validation[best - 1])
  assert metrics['best_test_bits_per_dim'] == metrics['test_bits_per_dim'][best - 1]
  step = metrics['step'][best - 1]
  assert metrics['best_checkpoint'] == os.path.join('checkpoints', 'best', f'ckpt-{step}')
  assert metrics['saved_model_checkpoint'] == metrics['best_checkpoint']
  assert (out / 'checkpoints' / 'best' / f'ckpt-{step}.index').exists()
  for epoch in range(1, epochs + 1):
    assert (out / 'samples' / f'epoch_{epoch:03d}.png').stat().st_size > 0
  assert (out / 'bits_per_dim.png').stat().st_size > 0
  assert (out / 'saved_model' / 'saved_model.pb').exists()
  assert not (out / 'run.lock').exists()
  # TensorBoard's own loader finds the scalars and the sample images of every epoch.
  events = event_accumulator.EventAccumulator(str(out / 'tensorboard'),
                                              size_guidance={'tensors': 0})
  events.Reload()
  every_epoch = list(range(1, epochs + 1))
  for tag in ('bits_per_dim/train', 'bits_per_dim/validation', 'bits_per_dim/test',
              'learning_rate', 'samples_T0.7'):
    assert sorted({e.step for e in events.Tensors(tag)}) == every_epoch, tag
  assert set(events.PluginTagToContent('scalars')) >= {'bits_per_dim/test',
                                                       'bits_per_dim/validation'}
  assert 'samples_T0.7' in events.PluginTagToContent('images')
  last = {e.step: e for e in events.Tensors('bits_per_dim/test')}[epochs]
  assert float(tf.make_ndarray(last.tensor_proto)) == pytest.approx(
      metrics['test_bits_per_dim'][-1], rel=1e-6)
  width, height, png = tf.make_ndarray(events.Tensors('samples_T0.7')[-1].tensor_proto)
  assert tf.io.decode_png(png).shape == (int(height), int(width), 1)


@pytest.mark.slow
def test_progress_lines_in_a_log_file(cli_run):
  log = cli_run['resumed_log']
  assert not re.search(r'[\x1b\r\b]', log)        # no escapes, no redraws
  assert re.search(r'^epoch \d+/\d+, step 2/4: bits/dim [\d.]+', log, re.M)
  assert re.search(r'^epoch \d+/\d+ done: train [\d.]+ bits/dim, validation [\d.]+ '
                   r'bits/dim', log, re.M)


@pytest.fixture(scope='module')
def evaluation(cli_run):
  out = cli_run['out']
  assert cli_evaluate.main([str(out), '--temperatures', '0.5', '1',
                            '--num-samples', '16']) == 0
  return _strict_json(out / 'eval' / 'eval.json')


@pytest.mark.slow
def test_evaluate_scores_the_checkpoint_and_samples(cli_run, evaluation):
  out = cli_run['out']
  metrics = json.loads((out / 'metrics.json').read_text())
  assert evaluation['step'] == metrics['final_step']
  assert evaluation['num_test_examples'] == 297
  assert evaluation['skipped'] == []
  np.testing.assert_allclose(evaluation['test_bits_per_dim'],
                             metrics['final_test_bits_per_dim'], rtol=1e-5)
  for name in ('samples_T0.5.png', 'samples_T1.png', 'temperatures.png'):
    assert (out / 'eval' / name).stat().st_size > 0
  # load_run rebuilds the best epoch's flow from the folder alone.
  run = runs.load_run(out, checkpoint='best')
  assert run.checkpoint == str(out / metrics['best_checkpoint'])
  assert run.step == metrics['step'][metrics['best_epoch'] - 1]
  assert (run.event_shape, run.num_levels) == ((8, 8, 1), 17)
  images = lib.digits()
  test = image_pipeline(images.test, images.num_levels, 297, training=False,
                        seed=runs.EVAL_SEED, drop_remainder=False)
  log_prob = np.concatenate([run.distribution.log_prob(x).numpy() for x in test])
  np.testing.assert_allclose(
      float(bits_per_dim(np.mean(log_prob.astype(np.float64)), (8, 8, 1), 17)),
      metrics['best_test_bits_per_dim'], rtol=1e-5)


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
  # The same test images and noise as the per-epoch evaluation: the bits/dim of the
  # best epoch, whose checkpoint was exported.
  metrics = _strict_json(cli_run['out'] / 'metrics.json')
  np.testing.assert_allclose(result['bpd'], metrics['best_test_bits_per_dim'], rtol=1e-5)
  assert np.all(np.isfinite(result['log_prob']))
  assert result['sample_shape'] == [8, 8, 8, 1]
  assert result['repeatable'] and result['signature_matches']
  assert 0. <= result['sample_min'] and result['sample_max'] <= 1.
