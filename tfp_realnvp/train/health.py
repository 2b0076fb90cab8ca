"""A run's health: when an epoch's score says the run has diverged.

Each epoch ends with a score in bits/dim: the validation bits/dim when the run has
validation data, else the epoch's mean training bits/dim. The run starts from the
untrained model's score (the validation bits/dim at step 0, or the first step's training
bits/dim). An epoch is unhealthy when its score is

- not finite, or
- more than `max_rise` bits/dim above the best score so far (1 by default: a healthy
  run's score moves by hundredths from one epoch to the next; a diverged one, by whole
  bits: a float16 run at a learning rate of 1e-2 went from 5 to thousands).

An unhealthy epoch sends the run back to its last good checkpoint (see
`tfp_realnvp.train.checkpoints`); a run that keeps diverging ends with
`RunDivergedError`.
"""

import dataclasses
import math

__all__ = ['EpochVerdict', 'HealthJudge', 'RunDivergedError', 'RunUnhealthyError']


class RunUnhealthyError(RuntimeError):
  """A run whose result cannot be trusted; `last_good_checkpoint` names what can."""

  def __init__(self, message, last_good_checkpoint=None):
    if last_good_checkpoint:
      message = f'{message} The last good checkpoint is {last_good_checkpoint}.'
    super().__init__(message)
    self.last_good_checkpoint = last_good_checkpoint


class RunDivergedError(RunUnhealthyError, FloatingPointError):
  """The run diverged and used up its rollbacks (or had nothing to roll back to)."""


@dataclasses.dataclass(frozen=True)
class EpochVerdict:
  """The judgement of one epoch's score."""
  healthy: bool
  improved: bool       # the best score so far (healthy epochs only)
  reason: str          # why it is unhealthy ('' when healthy)


class HealthJudge:
  """Judges epoch scores against the best so far; stateless apart from its arguments.

  Args:
    max_rise: bits/dim above the best score beyond which an epoch is unhealthy.
  """

  def __init__(self, max_rise=1.):
    if not max_rise > 0:
      raise ValueError(f'max_rise must be positive, got {max_rise}.')
    self.max_rise = float(max_rise)

  def judge(self, score, best, what='score'):
    """The verdict on `score` given the `best` score so far (inf: none yet).

    `what` names the score in the reason, e.g. 'validation bits/dim'.
    """
    score = float(score)
    if not math.isfinite(score):
      return EpochVerdict(False, False, f'its {what} are not finite ({score})')
    if math.isfinite(best) and score > best + self.max_rise:
      return EpochVerdict(
          False, False,
          f'its {what}, {score:.4f}, are more than {self.max_rise:g} above the best so '
          f'far, {best:.4f}')
    return EpochVerdict(True, score < best, '')
