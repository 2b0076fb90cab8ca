"""examples/detect_ood.py end to end on a tiny training run, and its errors."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from sklearn import metrics as sk_metrics

from tfp_realnvp import ood
from tfp_realnvp.cli import detect_ood
from tfp_realnvp.data import dequantize
from tfp_realnvp.data import load_images

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(ROOT, 'examples', 'train_mnist.py')
DETECT = os.path.join(ROOT, 'examples', 'detect_ood.py')
IMAGE_SIZE = 16
NUM_IMAGES = 60
SETS = ('digits', 'noise', 'constant', 'vflip')
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def _env():
  paths = [ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
  return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), TF_CPP_MIN_LOG_LEVEL='2')


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  """A flow trained for 5 steps on 16x16 Fashion-MNIST, with its SavedModel."""
  run = tmp_path_factory.mktemp('tiny_run')
  done = subprocess.run(
      [sys.executable, TRAIN, '--dataset', 'fashion_mnist', '--image-size', str(IMAGE_SIZE),
       '--num-scales', '1', '--hidden-channels', '4', '--num-res-blocks', '1',
       '--epochs', '1', '--steps-per-epoch', '5', '--batch-size', '32',
       '--max-examples', '500', '--max-test-examples', '200', '--validation-examples', '100',
       '--num-samples', '4', '--quiet', '--output-dir', str(run)],
      env=_env(), capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
  return run


@pytest.fixture(scope='module')
def detected(tiny_run, tmp_path_factory):
  out = tmp_path_factory.mktemp('ood')
  code = detect_ood.main([
      str(tiny_run), '--output-dir', str(out), '--ood-sets', *SETS,
      '--max-examples', str(NUM_IMAGES), '--num-reference', '100',
      '--background-steps', '3', '--num-batches', '20'])
  assert code == 0
  with open(out / 'ood.json') as f:
    return out, json.load(f)


def test_report_holds_every_set_and_method(detected):
  out, report = detected
  methods = ['bits_per_dim', 'typicality', 'complexity', 'likelihood_ratio']
  assert report['methods_run'] == methods
  assert [(r['ood_set'], r['method']) for r in report['results']] == [
      (s, m) for s in SETS for m in methods]
  for record in report['results']:
    assert set(record) == {'ood_set', 'method', 'auroc', 'aupr', 'fpr95'}
    assert all(0. <= record[k] <= 1. for k in ('auroc', 'aupr', 'fpr95'))
  assert report['positive_class'] == 'out-of-distribution'
  assert report['run_steps'] == 5
  assert report['background']['steps'] == 3
  assert os.path.isfile(out / 'background_saved_model' / 'saved_model.pb')
  assert {(r['ood_set'], r['compressor']) for r in report['complexity_by_compressor']} == {
      (s, c) for s in SETS for c in ('png', 'jpeg2000')}
  assert {r['ood_set'] for r in report['typicality_batch_test']['results']} == set(SETS)
  for name in ('bits_per_dim_histograms.png', 'roc_curves.png'):
    with open(out / name, 'rb') as f:
      assert f.read(8) == PNG_MAGIC
  table = (out / 'ood.md').read_text()
  for record in report['results']:
    assert (f"| {record['ood_set']} | {record['method']} | {record['auroc']:.4f} | "
            f"{record['aupr']:.4f} | {record['fpr95']:.4f} |") in table


def test_report_metrics_match_an_independent_computation(tiny_run, detected):
  """Bits/dim recomputed with TensorFlow and scikit-learn give the same metrics."""
  _, report = detected
  model = tf.saved_model.load(str(tiny_run / 'saved_model'))
  data = load_images('fashion_mnist', image_size=(IMAGE_SIZE, IMAGE_SIZE), max_examples=500)
  shape = (IMAGE_SIZE, IMAGE_SIZE, 1)
  images = dict(noise=ood.datasets.noise_images(NUM_IMAGES, shape, 256, seed=0),
                vflip=data.test[:NUM_IMAGES, ::-1])

  def bits_per_dim(x):
    x = dequantize(x, 256, ood.likelihood.DEQUANTIZATION_SEED)
    return model.bits_per_dim(tf.constant(x)).numpy().astype(np.float64)

  in_bpd = bits_per_dim(data.test[:NUM_IMAGES])
  assert report['in_distribution']['mean_bits_per_dim'] == pytest.approx(in_bpd.mean(),
                                                                          rel=1e-5)
  records = {(r['ood_set'], r['method']): r for r in report['results']}
  for name, x in images.items():
    ood_bpd = bits_per_dim(x)
    labels = np.r_[np.zeros(NUM_IMAGES), np.ones(NUM_IMAGES)]
    scores = np.r_[in_bpd, ood_bpd]
    record = records[(name, 'bits_per_dim')]
    assert record['auroc'] == pytest.approx(sk_metrics.roc_auc_score(labels, scores),
                                            abs=1e-6)
    assert record['aupr'] == pytest.approx(
        sk_metrics.average_precision_score(labels, scores), abs=1e-6)
  # Five steps are enough to give noise lower likelihood than clothes (0.96 here).
  assert records[('noise', 'bits_per_dim')]['auroc'] > 0.8


def test_background_model_reuse_skips_and_local_sets(tiny_run, detected, tmp_path,
                                                     monkeypatch, capsys):
  out, _ = detected

  def offline(name, *args, **kwargs):
    raise RuntimeError(f'tensorflow_datasets could not load {name!r}; no network')
  monkeypatch.setattr(ood.datasets, 'tfds_images', offline)
  other = tmp_path / 'other_set.npz'
  rng = np.random.default_rng(0)
  np.savez(other, x_train=rng.integers(0, 256, (3, 28, 28), np.uint8),
           x_test=rng.integers(0, 256, (20, 28, 28), np.uint8))
  second = tmp_path / 'second'
  code = detect_ood.main([
      str(tiny_run), '--output-dir', str(second), '--ood-sets', 'mnist', 'constant',
      '--ood-data-dir', str(other), '--max-examples', '30', '--num-reference', '50',
      '--background-model', str(out / 'background_saved_model'), '--compressor', 'png'])
  assert code == 0
  report = json.loads((second / 'ood.json').read_text())
  assert list(report['ood_sets']) == ['constant', 'other_set']
  assert report['ood_sets']['other_set']['num_images'] == 20
  assert [s['ood_set'] for s in report['skipped']] == ['mnist']
  assert 'no network' in report['skipped'][0]['reason']
  assert 'skipping mnist' in capsys.readouterr().out
  assert report['methods_run'][-1] == 'likelihood_ratio'
  assert report['complexity_compressor'] == 'png'
  complexity = {r['ood_set']: r['auroc'] for r in report['results']
                if r['method'] == 'complexity'}
  png = {r['ood_set']: r['auroc'] for r in report['complexity_by_compressor']
         if r['compressor'] == 'png'}
  assert complexity == png
  assert not os.path.exists(second / 'background_saved_model')


def test_no_background_means_no_likelihood_ratio(tiny_run, tmp_path):
  code = detect_ood.main([str(tiny_run), '--output-dir', str(tmp_path), '--ood-sets',
                          'noise', '--max-examples', '20', '--background-steps', '0'])
  assert code == 0
  report = json.loads((tmp_path / 'ood.json').read_text())
  assert report['methods_run'] == ['bits_per_dim', 'typicality', 'complexity']
  assert report['background'] is None


def _error(argv, capsys):
  code = detect_ood.main(argv)
  err = capsys.readouterr().err
  assert code == 2
  lines = err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('detect_ood.py: error: '), err
  return lines[0]


def test_errors_are_one_line_with_exit_code_2(tiny_run, tmp_path, capsys):
  assert 'does not exist' in _error([str(tmp_path / 'nowhere')], capsys)
  assert 'config.json not found' in _error([str(tmp_path)], capsys)
  no_export = tmp_path / 'no_export'
  no_export.mkdir()
  shutil.copy(tiny_run / 'config.json', no_export / 'config.json')
  assert 'holds no SavedModel' in _error([str(no_export)], capsys)
  (no_export / 'config.json').write_text('{not json')
  assert 'not readable JSON' in _error([str(no_export)], capsys)
  assert "invalid choice: 'cifar'" in _error([str(tiny_run), '--ood-sets', 'cifar'], capsys)
  assert 'positive integer' in _error([str(tiny_run), '--max-examples', '0'], capsys)
  assert '--ood-data-dir' in _error(
      [str(tiny_run), '--ood-data-dir', str(tmp_path / 'missing.npz')], capsys)
  assert 'exclude each other' in _error(
      [str(tiny_run), '--background-model', str(tmp_path), '--background-steps', '4'],
      capsys)
  wrong_shape = tmp_path / 'wrong_shape'
  shutil.copytree(tiny_run / 'saved_model', wrong_shape / 'saved_model')
  config = json.loads((tiny_run / 'config.json').read_text())
  config['image_shape'] = [8, 8, 1]
  (wrong_shape / 'config.json').write_text(json.dumps(config))
  message = _error([str(wrong_shape), '--output-dir', str(tmp_path / 'out')], capsys)
  assert '(16, 16, 1)' in message and '(8, 8, 1)' in message


def test_help_and_the_example_script(tmp_path, capsys):
  assert detect_ood.main(['--help']) == 0
  assert '--background-steps' in capsys.readouterr().out
  done = subprocess.run([sys.executable, DETECT, str(tmp_path / 'nowhere')], env=_env(),
                        capture_output=True, text=True, timeout=300)
  assert done.returncode == 2
  assert done.stderr.strip().splitlines()[-1] == (
      f"detect_ood.py: error: run folder {tmp_path / 'nowhere'} does not exist")
