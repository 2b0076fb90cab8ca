"""examples/train_vector_images.py: a quick run learns, samples, and falls back."""

import json
import math

import numpy as np
import pytest
from example_loader import PNG_MAGIC
from example_loader import load_example


@pytest.fixture(scope='module')
def example():
  return load_example('train_vector_images')


def test_quick_run_learns_and_draws(example, tmp_path):
  results = example.main(['--quick', '--steps', '200', '--output-dir', str(tmp_path)])
  assert results['dataset'] == 'digits' and results['image_shape'] == [8, 8, 1]
  uniform = math.log2(17)  # bits/dim of a uniform density over 17 grey levels
  history = results['history']['test_bits_per_dim']
  assert all(math.isfinite(b) for b in history)
  # After 200 steps the test bits/dim sit well below uniform (about 2.4 vs 4.09).
  assert results['test_bits_per_dim'] < uniform - 1.0, results
  assert history[-1] < history[0]
  assert results['samples_finite']
  for name in ('samples.png', 'temperatures.png', 'data.png', 'bits_per_dim.png'):
    assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC, name
  saved = json.loads((tmp_path / 'results.json').read_text())
  assert saved['test_bits_per_dim'] == results['test_bits_per_dim']


def test_falls_back_when_kmnist_cannot_download(example, monkeypatch):
  calls = []

  def fake_load_images(name, data_dir=None, image_size=None, max_examples=None):
    calls.append((name, image_size))
    if name == 'kmnist':
      raise RuntimeError("tensorflow_datasets could not load 'kmnist'; the download failed")
    return f'loaded {name}'

  monkeypatch.setattr(example, 'load_images', fake_load_images)
  args = example.parse_args(['--dataset', 'auto'])
  data, failures = example.load_data(args)
  assert data == 'loaded fashion_mnist'
  assert calls == [('kmnist', (16, 16)), ('fashion_mnist', (16, 16))]
  assert len(failures) == 1 and failures[0].startswith('kmnist:')


def test_logit_flow_density_is_of_pixels(example):
  """With --logit the flow's log_prob includes the logit step's log-det."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  args = example.parse_args(['--quick', '--num-couplings', '2'])
  chain, flow, dist = example.build(args, (4, 4, 1))
  x = tf.constant(np.random.default_rng(0).uniform(0.01, 0.99, (5, 16)).astype(np.float32))
  # A fresh flow is the logit map followed by an identity chain: log_prob is
  # log N(logit(a + (1 - 2a) x)) + log|d logit(a + (1 - 2a) x) / dx|.
  a = 0.05
  p = a + (1 - 2 * a) * x.numpy().astype(np.float64)
  y = np.log(p) - np.log1p(-p)
  expected = (-0.5 * y ** 2 - 0.5 * math.log(2 * math.pi)
              + math.log(1 - 2 * a) - np.log(p) - np.log1p(-p)).sum(-1)
  np.testing.assert_allclose(dist.log_prob(x).numpy(), expected, rtol=1e-4, atol=5e-3)
  assert len(chain.couplings) == 2
