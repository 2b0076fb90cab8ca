"""The learning-rate schedule and the trainer's settings checks."""

import math

import pytest
import tensorflow as tf

from tfp_realnvp.train import TrainConfig
from tfp_realnvp.train import WarmupDecay


def _lr(schedule, step):
  return float(schedule(tf.constant(step)))


def test_warmup_then_cosine_decay_with_factor():
  factor = tf.Variable(1.)
  schedule = WarmupDecay(1e-3, warmup_steps=10, decay='cosine',
                         decay_steps=100, final_fraction=0.1, factor=factor)
  assert _lr(schedule, 0) == pytest.approx(1e-4)
  assert _lr(schedule, 9) == pytest.approx(1e-3)
  assert _lr(schedule, 10) == pytest.approx(1e-3)
  assert _lr(schedule, 60) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
  assert _lr(schedule, 110) == pytest.approx(1e-4)
  assert _lr(schedule, 500) == pytest.approx(1e-4)
  factor.assign(0.5)
  assert _lr(schedule, 500) == pytest.approx(5e-5)


def test_exponential_decay_and_constant():
  schedule = WarmupDecay(1e-3, decay='exponential', decay_steps=100,
                         final_fraction=0.5)
  assert _lr(schedule, 0) == pytest.approx(1e-3)
  assert _lr(schedule, 100) == pytest.approx(5e-4)
  assert _lr(schedule, 200) == pytest.approx(2.5e-4)
  assert _lr(WarmupDecay(2e-3), 12345) == pytest.approx(2e-3)
  assert math.isfinite(_lr(schedule, 10**6))


@pytest.mark.parametrize('kwargs, match', [
    (dict(decay='cosine'), 'decay_steps'),
    (dict(decay='linear'), 'decay'),
    (dict(mixed_precision='float8'), 'mixed_precision'),
    (dict(clip_norm=0.), 'clip_norm'),
    (dict(global_batch_size=0), 'global_batch_size'),
    (dict(rollback_lr_factor=2.), 'rollback_lr_factor'),
])
def test_bad_settings_raise(kwargs, match):
  with pytest.raises(ValueError, match=match):
    TrainConfig(**kwargs)
