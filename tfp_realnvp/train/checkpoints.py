"""Checkpoints of a training run: save, restore the newest that loads, keep the good ones.

What a user can rely on (the run folder of `examples/train_mnist.py`; `Trainer` and the
Keras `CheckpointCallback` behave the same way):

**Checkpoints** (`tf.train.CheckpointManager`, `RUN/checkpoints/`) hold the flow (weights
and batch-norm running statistics), the optimizer, the step (which is also the data
position), the epoch, the learning-rate factor and the run's best score so far. They are
written at step 0, every `--checkpoint-every` steps (100) and at each epoch's end; the 3
newest are kept. Apart from that rotation, `checkpoints/good/` keeps the newest checkpoint
whose evaluation was finite and healthy, and `checkpoints/best/` the one with the lowest
validation bits/dim, from which the SavedModel is exported. A crash, even SIGKILL, loses
at most one checkpoint interval: TensorFlow writes a checkpoint's index last and the
`checkpoint` state file atomically. A damaged checkpoint (files missing, truncated,
failing their checksum) costs only itself: `--resume` and `examples/evaluate.py` load the
newest checkpoint that loads and name each one they skipped and why; when none loads they
stop with exit code 2 instead of starting again from step 0. A diverging run never
overwrites its last good state: a step with a non-finite loss or gradient is skipped
(weights, optimizer and batch-norm statistics untouched); three in a row, a non-finite
variable, or an epoch whose validation bits/dim are not finite or more than 1 bit/dim
above the best so far send the run back to `checkpoints/good/` with half the learning
rate; after 5 such rollbacks the run stops with exit code 1, names its last good
checkpoint and exports nothing. The export is checked (finite `log_prob` on real test
images, finite samples) before anything is written. `--overwrite` moves the old run to
`RUN.replaced-<time>/` instead of deleting it, after every argument and the data have
been checked; a lock file (`RUN/run.lock`, with PID and host) keeps a second process out
of a run folder in use.

The pieces:

- `CheckpointStore`: the rotation of one run plus its kept slots (`'good'`, `'best'`):
  `save` refuses non-finite values, `keep` copies the current state into a slot,
  `restore_newest` loads the newest checkpoint that loads.
- `find_checkpoints`, `restore_checkpoint`, `restore_newest`: the same on any
  `tf.train.Checkpoint` (e.g. only the flow, to evaluate a run).
"""

import dataclasses
import glob
import logging
import os
import re

import numpy as np
import tensorflow as tf

__all__ = [
    'CHECKPOINT_NAME',
    'SLOTS',
    'CheckpointLoadError',
    'CheckpointStore',
    'NoLoadableCheckpointError',
    'NonFiniteStateError',
    'RestoreResult',
    'SkippedCheckpoint',
    'checkpoint_number',
    'find_checkpoints',
    'restore_checkpoint',
    'restore_newest',
]

logger = logging.getLogger('tfp_realnvp.train')

CHECKPOINT_NAME = 'ckpt'
# Checkpoints kept apart from the rotation, each in a sub-folder of its name:
# 'good': the newest checkpoint whose evaluation was finite and healthy (rollbacks go
# there); 'best': the lowest validation bits/dim (the export comes from it).
SLOTS = ('good', 'best')
_NUMBER = re.compile(rf'{CHECKPOINT_NAME}-(\d+)$')


class CheckpointLoadError(RuntimeError):
  """A checkpoint that does not load; `path` and `reason` say which and why."""

  def __init__(self, path, reason):
    super().__init__(f'checkpoint {path} does not load: {reason}')
    self.path = path
    self.reason = reason


class NoLoadableCheckpointError(RuntimeError):
  """A folder holds checkpoints, but none of them loads."""


class NonFiniteStateError(FloatingPointError):
  """A variable to be saved is not finite (nothing was written)."""


@dataclasses.dataclass(frozen=True)
class SkippedCheckpoint:
  """A checkpoint that `restore_newest` passed over, and why."""
  path: str
  reason: str


@dataclasses.dataclass(frozen=True)
class RestoreResult:
  """What `restore_newest` loaded (`path`, None when there was nothing) and skipped."""
  path: str
  skipped: tuple


def checkpoint_number(path):
  """The N of `.../ckpt-N` (-1 when the name has no number)."""
  match = _NUMBER.search(os.path.basename(os.fspath(path)))
  return int(match.group(1)) if match else -1


def _prefixes_in(directory):
  """Checkpoint prefixes in `directory`: from its state file and from its files."""
  prefixes = set()
  try:
    state = tf.train.get_checkpoint_state(directory)
  except (tf.errors.OpError, ValueError) as err:   # a state file that does not parse
    logger.warning('cannot read %s/checkpoint (%s): looking at the files instead',
                   directory, _first_line(err))
    state = None
  if state is not None:
    prefixes.update(p for p in list(state.all_model_checkpoint_paths)
                    + [state.model_checkpoint_path] if p)
  pattern = os.path.join(glob.escape(directory), f'{CHECKPOINT_NAME}-*')
  for name in glob.glob(pattern + '.index') + glob.glob(pattern + '.data-*'):
    prefixes.add(re.sub(r'\.(index|data-\d+-of-\d+)$', '', name))
  # A run's checkpoints live in its folder, wherever the state file says it was.
  return {os.path.join(directory, os.path.basename(p)) for p in prefixes
          if checkpoint_number(p) >= 0}


def find_checkpoints(directory, slots=SLOTS):
  """Every checkpoint of a run folder's `checkpoints/`, newest (highest step) first.

  Lists the rotation's checkpoints (those the state file names and those whose files
  are present, complete or not) and, at equal steps after them, those of the kept
  `slots` (sub-folders). Returns prefixes such as `.../checkpoints/ckpt-200`.
  """
  if directory is None or not os.path.isdir(directory):
    return []
  found = [(p, 0) for p in _prefixes_in(directory)]
  for rank, slot in enumerate(slots, start=1):
    found += [(p, rank) for p in _prefixes_in(os.path.join(directory, slot))]
  found.sort(key=lambda item: (-checkpoint_number(item[0]), item[1]))
  seen, ordered = set(), []
  for path, _ in found:
    if path not in seen:
      seen.add(path)
      ordered.append(path)
  return ordered


def _missing_files(path):
  """Why the files of checkpoint `path` are incomplete, or None."""
  if not os.path.exists(path + '.index'):
    return f'its index file {os.path.basename(path)}.index is missing'
  data = glob.glob(glob.escape(path) + '.data-*')
  if not data:
    return f'its data file {os.path.basename(path)}.data-00000-of-00001 is missing'
  return None


def _first_line(err):
  text = str(err).strip().splitlines()
  return f'{type(err).__name__}: {text[0] if text else ""}'.rstrip(': ')


def restore_checkpoint(checkpoint, path, partial=False):
  """Restores `checkpoint` (a `tf.train.Checkpoint`) from `path`, or raises.

  Every object of `checkpoint` must be in the file (`partial=True`: the file may hold
  more, e.g. an optimizer that an evaluation does not need).

  Raises:
    CheckpointLoadError: naming the path and the reason (missing files, a truncated or
      corrupt file, objects that do not match).
  """
  path = os.fspath(path)
  missing = _missing_files(path)
  if missing:
    raise CheckpointLoadError(path, missing)
  try:
    status = checkpoint.restore(path)
    if partial:
      status.expect_partial()
    status.assert_existing_objects_matched()
  except (tf.errors.OpError, ValueError, AssertionError, IndexError, OSError,
          KeyError) as err:
    raise CheckpointLoadError(path, _first_line(err)) from err
  return path


def restore_newest(checkpoint, directory, partial=False, slots=SLOTS, log=None):
  """Restores the newest checkpoint of `directory` that loads.

  Tries `find_checkpoints(directory, slots)` newest first; each one that does not load
  is reported through `log` (default: a warning of the `tfp_realnvp.train` logger).

  Returns:
    A `RestoreResult`: the path restored (None when there is no checkpoint at all) and
    the `SkippedCheckpoint`s.

  Raises:
    NoLoadableCheckpointError: when there are checkpoints but none loads.
  """
  log = log or logger.warning
  skipped = []
  candidates = find_checkpoints(directory, slots)
  for path in candidates:
    try:
      restore_checkpoint(checkpoint, path, partial=partial)
    except CheckpointLoadError as err:
      skipped.append(SkippedCheckpoint(path, err.reason))
      log(f'skipped checkpoint {path}: {err.reason}')
      continue
    return RestoreResult(path, tuple(skipped))
  if candidates:
    details = '; '.join(f'{s.path}: {s.reason}' for s in skipped)
    raise NoLoadableCheckpointError(
        f'none of the {len(candidates)} checkpoint(s) in {directory} loads ({details}).')
  return RestoreResult(None, ())


def _non_finite(variables):
  """The name of the first floating variable holding a NaN or an infinity, or None."""
  for v in variables:
    if v.dtype.is_floating and not np.all(np.isfinite(v.numpy())):
      return getattr(v, 'path', None) or v.name
  return None


class CheckpointStore:
  """The checkpoints of one run: a rotation plus kept slots, all of `checkpoint`.

  ```python
  store = CheckpointStore(tf.train.Checkpoint(flow=flow, optimizer=optimizer),
                          'run/checkpoints', max_to_keep=3,
                          checked_variables=flow.variables)
  store.save(step)                 # NonFiniteStateError if a value is NaN/inf
  store.keep('good', step)         # out of the rotation: checkpoints/good/ckpt-<step>
  store.restore_newest()           # the newest that loads, skipped ones reported
  store.restore(store.slot_checkpoint('good'))   # a rollback
  ```

  Args:
    checkpoint: the `tf.train.Checkpoint` to write and read.
    directory: the run's checkpoint folder.
    max_to_keep: checkpoints kept in the rotation.
    checked_variables: variables that must be finite for `save` and `keep` to write
      (default: none checked).
    write_directory: where this process writes and reads (default `directory`); the
      non-chief workers of a `MultiWorkerMirroredStrategy` write a folder of their own.
  """

  def __init__(self, checkpoint, directory, max_to_keep=3, checked_variables=(),
               write_directory=None):
    self.checkpoint = checkpoint
    self.directory = os.fspath(directory)
    self.write_directory = os.fspath(write_directory or directory)
    self.checked_variables = list(checked_variables)
    self.manager = tf.train.CheckpointManager(
        checkpoint, self.write_directory, max_to_keep=max_to_keep,
        checkpoint_name=CHECKPOINT_NAME)
    self._slots = {
        slot: tf.train.CheckpointManager(
            checkpoint, os.path.join(self.write_directory, slot), max_to_keep=1,
            checkpoint_name=CHECKPOINT_NAME)
        for slot in SLOTS}

  @property
  def checkpoints(self):
    """The rotation's checkpoints, oldest first."""
    return list(self.manager.checkpoints)

  @property
  def latest_checkpoint(self):
    return self.manager.latest_checkpoint

  def has_checkpoints(self):
    """True when the folder holds any checkpoint file (loadable or not)."""
    return bool(find_checkpoints(self.write_directory))

  def slot_checkpoint(self, slot):
    """The checkpoint kept in `slot` ('good' or 'best'), or None."""
    return self._slot(slot).latest_checkpoint

  def _slot(self, slot):
    if slot not in self._slots:
      raise ValueError(f'slot must be one of {SLOTS}, got {slot!r}.')
    return self._slots[slot]

  def _check_finite(self, number):
    name = _non_finite(self.checked_variables)
    if name is not None:
      raise NonFiniteStateError(f'non-finite variable {name} at step {number}: not saved')

  def save(self, number):
    """Writes a checkpoint of the current state, `ckpt-<number>`, into the rotation.

    Raises:
      NonFiniteStateError: a checked variable is not finite (nothing is written).
    """
    self._check_finite(number)
    return self.manager.save(checkpoint_number=int(number))

  def keep(self, slot, number):
    """Writes the current state into `slot`, replacing what it held; returns the path."""
    self._check_finite(number)
    return self._slot(slot).save(checkpoint_number=int(number))

  def restore(self, path, partial=False):
    """Restores `path`; raises `CheckpointLoadError` when it does not load."""
    return restore_checkpoint(self.checkpoint, path, partial=partial)

  def restore_newest(self, partial=False):
    """`restore_newest` on this store's folder; see there."""
    return restore_newest(self.checkpoint, self.write_directory, partial=partial)
