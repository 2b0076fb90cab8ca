"""`Trainer.fit(max_seconds=...)`: the run ends at its deadline, and with
`decay_to_deadline` the learning-rate decay follows the clock to it."""

import math

import pytest
import train_testlib as lib

from tfp_realnvp.train import pick_strategy
from tfp_realnvp.train import trainer as trainer_module

PEAK = 1e-3
FLOOR = 0.01
SECONDS_PER_STEP = 10.


def _cosine(progress):
  return PEAK * (FLOOR + (1. - FLOOR) * 0.5 * (1. + math.cos(math.pi * progress)))


@pytest.fixture
def clocked(monkeypatch):
  """A tiny trainer whose steps each take 10 s of a fake clock; records each step's
  learning rate (the schedule at the iteration the step applies)."""
  clock = lib.FakeClock()
  monkeypatch.setattr(trainer_module, 'time', clock)

  def make(strategy=None, **config):
    trainer = lib.make_trainer(strategy, learning_rate=PEAK, final_fraction=FLOOR,
                               **config)
    return trainer, lib.timed_steps(trainer, clock, SECONDS_PER_STEP)

  return make


def test_max_seconds_ends_the_epoch_early_at_the_deadline(clocked):
  trainer, rates = clocked(decay='cosine', decay_steps=1000)
  history = trainer.fit(lib.dataset_fn, epochs=1, steps_per_epoch=100, max_seconds=35.,
                        progress='none')
  assert trainer.step == 4                 # the step that crosses 35 s is the last
  assert trainer.stopped_early and trainer.stop_reason == 'time limit'
  assert len(history) == 1 and history[0]['partial']
  # Without decay_to_deadline the decay follows the steps alone.
  assert rates == pytest.approx([_cosine(i / 1000.) for i in range(4)], rel=1e-5)


@pytest.mark.parametrize('devices', [['/cpu:0'], ['/cpu:0', '/cpu:1']])
def test_decay_to_deadline_reaches_the_floor_at_the_deadline(clocked, devices):
  trainer, rates = clocked(strategy=pick_strategy(devices), decay='cosine',
                           decay_steps=1000)
  trainer.fit(lib.dataset_fn, epochs=1, steps_per_epoch=4, max_seconds=40.,
              decay_to_deadline=True, progress='none')
  assert trainer.step == 4
  assert rates == pytest.approx([_cosine(p) for p in (0., 0.25, 0.5, 0.75)], rel=1e-5)
  assert trainer.learning_rate == pytest.approx(PEAK * FLOOR, rel=1e-5)
  # Every replica reads the same progress.
  copies = getattr(trainer.decay_progress, 'values', (trainer.decay_progress,))
  assert len(copies) == len(devices)
  assert [float(v.numpy()) for v in copies] == pytest.approx([1.] * len(devices))


def test_a_second_call_takes_the_decay_up_where_the_first_left_it(clocked):
  trainer, rates = clocked(decay='cosine', decay_steps=1000)
  trainer.fit(lib.dataset_fn, epochs=1, steps_per_epoch=2, max_seconds=40.,
              decay_to_deadline=True, progress='none')
  assert not trainer.stopped_early          # the steps ended it, halfway through the budget
  assert rates == pytest.approx([_cosine(0.), _cosine(0.25)], rel=1e-5)
  rates.clear()
  trainer.fit(lib.dataset_fn, epochs=3, steps_per_epoch=2, max_seconds=20.,
              decay_to_deadline=True, progress='none')
  assert trainer.step == 4 and trainer.stop_reason == 'time limit'
  assert rates == pytest.approx([_cosine(0.5), _cosine(0.75)], rel=1e-5)
  assert trainer.learning_rate == pytest.approx(PEAK * FLOOR, rel=1e-5)


def test_decay_to_deadline_lets_the_steps_end_the_decay_first(clocked):
  trainer, rates = clocked(decay='cosine', decay_steps=2)
  trainer.fit(lib.dataset_fn, epochs=1, steps_per_epoch=3, max_seconds=1000.,
              decay_to_deadline=True, progress='none')
  assert not trainer.stopped_early
  assert rates == pytest.approx([_cosine(p) for p in (0., 0.5, 1.)], rel=1e-5)


def test_exponential_decay_to_deadline(clocked):
  trainer, rates = clocked(decay='exponential', decay_steps=10**6)
  trainer.fit(lib.dataset_fn, epochs=1, steps_per_epoch=100, max_seconds=20.,
              decay_to_deadline=True, progress='none')
  assert rates == pytest.approx([PEAK, PEAK * FLOOR**0.5], rel=1e-4)


@pytest.mark.parametrize('config, max_seconds, match', [
    (dict(decay='cosine', decay_steps=10), None, 'max_seconds'),
    (dict(), 10., 'decay'),
])
def test_decay_to_deadline_needs_a_deadline_and_a_decay(config, max_seconds, match):
  trainer = lib.make_trainer(**config)
  with pytest.raises(ValueError, match=match):
    trainer.fit(lib.dataset_fn, epochs=1, steps_per_epoch=2, max_seconds=max_seconds,
                decay_to_deadline=True, progress='none')
  assert trainer.step == 0
