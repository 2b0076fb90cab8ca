"""Learning rate with optional linear warm-up, decay and a run-time factor."""

import math

import keras
import tensorflow as tf

__all__ = ['WarmupDecay', 'DECAYS']

DECAYS = ('none', 'cosine', 'exponential')


class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
  """`lr(step) = factor * learning_rate * warmup(step) * decay(step)`.

  ```none
  warmup(step) = min(1, (step + 1) / warmup_steps)          (1 if warmup_steps = 0)
  p            = max((step - warmup_steps) / decay_steps, progress)   (at least 0)
  decay(step)  = 1                                          decay='none'
               = r + (1 - r) * (1 + cos(pi * min(p, 1))) / 2  decay='cosine', r = final_fraction
               = r ** p                                     decay='exponential'
  ```

  `progress` (0 unless given) lets a decay end by another clock than the step: the
  trainer sets it to the fraction of a wall-clock budget spent (`Trainer.fit(...,
  decay_to_deadline=True)`), so that the rate reaches its floor at the deadline when
  that comes before the decay's last step.

  `factor` is a `tf.Variable` (1 at the start) that the trainer lowers when
  it rolls back after a non-finite loss; it is saved in the checkpoints, so a
  resumed run keeps the lowered rate. `step` is the optimizer's iteration
  count (applied updates).

  Args:
    learning_rate: the peak learning rate.
    warmup_steps: steps of linear warm-up from `learning_rate / warmup_steps`.
    decay: one of `DECAYS`.
    decay_steps: length of the decay after the warm-up (required unless
      `decay='none'`).
    final_fraction: r above: the cosine's floor, or the exponential's factor
      per `decay_steps`.
    factor: optional `tf.Variable` multiplying the rate.
    progress: optional scalar float `tf.Variable`: a lower bound on the fraction of
      the decay done (ignored with `decay='none'`).
  """

  def __init__(self, learning_rate=1e-3, warmup_steps=0, decay='none',
               decay_steps=None, final_fraction=0.01, factor=None, progress=None):
    if learning_rate <= 0:
      raise ValueError(f'learning_rate must be positive, got {learning_rate}.')
    if warmup_steps < 0:
      raise ValueError(f'warmup_steps must be >= 0, got {warmup_steps}.')
    if decay not in DECAYS:
      raise ValueError(f'decay must be one of {DECAYS}, got {decay!r}.')
    if decay != 'none' and (decay_steps is None or decay_steps < 1):
      raise ValueError(f'decay={decay!r} needs decay_steps >= 1, got '
                       f'{decay_steps}.')
    if not 0. < final_fraction <= 1.:
      raise ValueError(f'final_fraction must be in (0, 1], got {final_fraction}.')
    self.learning_rate = float(learning_rate)
    self.warmup_steps = int(warmup_steps)
    self.decay = decay
    self.decay_steps = None if decay_steps is None else int(decay_steps)
    self.final_fraction = float(final_fraction)
    self.factor = factor
    self.progress = progress

  def decay_fraction(self, step):
    """p above: the fraction of the decay done at `step` (a float32 tensor; needs a decay)."""
    step = tf.cast(tf.convert_to_tensor(step), tf.float32)
    after = tf.maximum(step - self.warmup_steps, 0.) / self.decay_steps
    if self.progress is not None:
      after = tf.maximum(after, tf.cast(self.progress, tf.float32))
    return after

  def __call__(self, step):
    step = tf.cast(tf.convert_to_tensor(step), tf.float32)
    lr = tf.constant(self.learning_rate, tf.float32)
    if self.warmup_steps:
      lr *= tf.minimum(1., (step + 1.) / self.warmup_steps)
    if self.decay != 'none':
      after = self.decay_fraction(step)
      r = self.final_fraction
      if self.decay == 'cosine':
        p = tf.minimum(after, 1.)
        lr *= r + (1. - r) * 0.5 * (1. + tf.cos(math.pi * p))
      else:
        lr *= tf.pow(r, after)
    if self.factor is not None:
      lr *= tf.cast(self.factor, tf.float32)
    return lr

  def get_config(self):
    return dict(learning_rate=self.learning_rate, warmup_steps=self.warmup_steps,
                decay=self.decay, decay_steps=self.decay_steps,
                final_fraction=self.final_fraction)
