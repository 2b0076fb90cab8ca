"""Fixtures of the training tests: a one-device reference run of the tiny flow."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train_testlib  # noqa: E402

from tfp_realnvp.train import pick_strategy  # noqa: E402


@pytest.fixture(scope='session')
def reference_run():
  """`STEPS` float32 steps of the tiny flow on one CPU device.

  Returns (trainer, list of StepResult, variables dict before and after the
  steps).
  """
  trainer = train_testlib.make_trainer(pick_strategy(['/cpu:0']))
  initial = train_testlib.variables_dict(trainer)
  iterator = iter(trainer.distribute(train_testlib.dataset_fn))
  results = [trainer.train_step(next(iterator))
             for _ in range(train_testlib.STEPS)]
  return trainer, results, initial, train_testlib.variables_dict(trainer)
