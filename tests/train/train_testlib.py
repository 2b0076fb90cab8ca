"""A tiny flow and data shared by the training tests and their subprocesses."""

import keras
import numpy as np

from tfp_realnvp.data import image_pipeline
from tfp_realnvp.data import load_images
from tfp_realnvp.train import TrainConfig
from tfp_realnvp.train import Trainer
from tfp_realnvp.train import make_flow

EVENT_SHAPE = (8, 8, 1)
BATCH = 16
STEPS = 3
SEED = 7
# One scale (4 checkerboard couplings, each with a batch norm), s/t nets with
# no residual block (input conv, batch norm, output conv): tracing the
# training step dominates the tests' time and grows with every variable.
FLOW_KWARGS = dict(num_scales=1, hidden_channels=4, num_res_blocks=0)

_DIGITS = []


def digits():
  if not _DIGITS:
    _DIGITS.append(load_images('digits'))
  return _DIGITS[0]


def dataset_fn():
  images = digits()
  return image_pipeline(images.train, images.num_levels, BATCH, seed=SEED)


def make_trainer(strategy=None, checkpoint_dir=None, mixed_precision=None,
                 **config):
  """The tiny trainer: same initial weights for the same arguments."""
  keras.utils.set_random_seed(SEED)
  config.setdefault('global_batch_size', BATCH)
  return Trainer(
      lambda: make_flow(EVENT_SHAPE, mixed_precision=mixed_precision,
                        **FLOW_KWARGS),
      EVENT_SHAPE, TrainConfig(mixed_precision=mixed_precision, **config),
      num_levels=digits().num_levels, strategy=strategy,
      checkpoint_dir=checkpoint_dir)


def train_tiny(strategy=None, checkpoint_dir=None, steps=STEPS, **config):
  """`fit` for `steps` steps (one epoch); returns (trainer, history)."""
  config.setdefault('checkpoint_every', 2)
  trainer = make_trainer(strategy, checkpoint_dir=checkpoint_dir, **config)
  history = trainer.fit(dataset_fn, epochs=1, steps_per_epoch=steps,
                        progress='none')
  return trainer, history


def variables_dict(trainer):
  """Every flow variable (incl. batch-norm statistics) by position."""
  return {f'v{i:04d}': np.array(v.numpy())
          for i, v in enumerate(trainer.flow.variables)}


def perturbed_trainer(scale=0.05, seed=0, **kwargs):
  """The tiny trainer with its trainable weights moved off their initial values.

  Zero-initialised output layers make every coupling the identity at first; a check of
  the trained model's functions on the identity could not tell them apart.
  """
  trainer = make_trainer(**kwargs)
  rng = np.random.default_rng(seed)
  for v in trainer.trainable_variables:
    v.assign(v.numpy() + scale * rng.standard_normal(v.shape).astype(np.float32))
  return trainer


def test_images(count=32):
  """`count` dequantized digits test images, float32 in [0, 1)."""
  images = digits()
  return next(iter(image_pipeline(images.test[:count], images.num_levels, count,
                                  training=False, seed=1))).numpy()


NUM_CLASSES = 10


def labelled_dataset_fn():
  """`(images, labels)` batches of the digits (the same images as `dataset_fn`)."""
  images = digits()
  return image_pipeline(images.train, images.num_levels, BATCH, seed=SEED,
                        labels=images.train_labels)


def make_conditional_trainer(strategy=None, checkpoint_dir=None, **flow_kwargs):
  """The tiny trainer of a class-conditional flow (10 digit classes)."""
  keras.utils.set_random_seed(SEED)
  kwargs = dict(FLOW_KWARGS, num_classes=NUM_CLASSES, **flow_kwargs)
  return Trainer(lambda: make_flow(EVENT_SHAPE, **kwargs), EVENT_SHAPE,
                 TrainConfig(global_batch_size=BATCH), num_levels=digits().num_levels,
                 strategy=strategy, checkpoint_dir=checkpoint_dir)


def perturb(trainer, scale=0.05, seed=0):
  """Moves the trainable weights off their initial values (see `perturbed_trainer`)."""
  rng = np.random.default_rng(seed)
  for v in trainer.trainable_variables:
    v.assign(v.numpy() + scale * rng.standard_normal(v.shape).astype(np.float32))
  return trainer


def test_pairs(count=32):
  """`count` dequantized digits test images and their labels, as numpy."""
  images = digits()
  x, y = next(iter(image_pipeline(images.test[:count], images.num_levels, count,
                                  labels=images.test_labels[:count], training=False,
                                  seed=1)))
  return x.numpy(), y.numpy()


class FakeClock:
  """Stands in for the `time` module of `tfp_realnvp.train.trainer`: every reading is
  `now`, which only `timed_steps` moves."""

  def __init__(self):
    self.now = 1000.

  def monotonic(self):
    return self.now

  perf_counter = time = monotonic


def timed_steps(trainer, clock, seconds_per_step):
  """Makes each training step of `trainer` take `seconds_per_step` of `clock`.

  Returns the list into which each step's learning rate (the schedule at the iteration
  that the step applies) is recorded.
  """
  rates = []
  train_step = trainer.train_step

  def timed_step(batch):
    rates.append(trainer.learning_rate)
    result = train_step(batch)
    clock.now += seconds_per_step
    return result

  trainer.train_step = timed_step
  return rates
