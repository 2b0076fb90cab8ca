"""Which `tf.distribute` strategy to train with, and who writes the files."""

import json
import os
import tempfile

import tensorflow as tf

from tfp_realnvp import _compat

__all__ = ['pick_strategy', 'single_device_strategy', 'describe_strategy',
           'is_chief', 'worker_id', 'worker_write_dir']


def pick_strategy(devices=None):
  """Returns the `tf.distribute.Strategy` that suits this machine.

  In this order:

  1. `devices` given: `MirroredStrategy(devices)` for several devices (e.g.
     `['/cpu:0', '/cpu:1']` for logical CPUs), `OneDeviceStrategy` for one.
  2. `TF_CONFIG` set in the environment: `MultiWorkerMirroredStrategy`, one
     process per worker, each on its local GPUs (or its CPU). It must be
     created before TensorFlow touches its devices, so this check comes first.
  3. Several GPUs: `MirroredStrategy` over them.
  4. One GPU: `OneDeviceStrategy('/gpu:0')`.
  5. No GPU: `OneDeviceStrategy('/cpu:0')`.

  The global batch is split evenly over `strategy.num_replicas_in_sync`
  replicas (see `Trainer.distribute`).

  Args:
    devices: optional list of device names.

  Returns:
    A `tf.distribute.Strategy`.
  """
  if devices:
    devices = list(devices)
    if len(devices) == 1:
      return tf.distribute.OneDeviceStrategy(devices[0])
    return _mirrored(devices)
  if os.environ.get('TF_CONFIG'):
    return tf.distribute.MultiWorkerMirroredStrategy()
  gpus = tf.config.list_logical_devices('GPU')
  if len(gpus) > 1:
    return _mirrored([d.name for d in gpus])
  if len(gpus) == 1:
    return tf.distribute.OneDeviceStrategy(gpus[0].name)
  return tf.distribute.OneDeviceStrategy('/cpu:0')


def _mirrored(devices):
  """A `MirroredStrategy` whose collectives do not collide with earlier ones.

  TensorFlow numbers the collective operations of a `MirroredStrategy` from a
  class-wide base, so a second strategy in the same process (a notebook cell
  run again, a test suite) reuses the first one's keys, and its reductions
  fail with "Shape mismatch in the collective instance ...". TensorFlow's own
  tests move the base between strategies (`strategy_combinations.py`); so
  does this.
  """
  _compat.bump_mirrored_collective_keys()
  return tf.distribute.MirroredStrategy(devices)


def single_device_strategy():
  """`OneDeviceStrategy` on the first GPU, or on the CPU (for evaluation)."""
  gpus = tf.config.list_logical_devices('GPU')
  return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else '/cpu:0')


def _task(strategy):
  resolver = getattr(strategy, 'cluster_resolver', None)
  if resolver is None or not resolver.task_type:
    return None, 0
  return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy):
  """True for the process that writes checkpoints, logs and exports."""
  task_type, task_id = _task(strategy)
  if task_type is None:
    return True
  if task_type == 'chief':
    return True
  if task_type == 'worker':
    spec = json.loads(os.environ.get('TF_CONFIG', '{}')).get('cluster', {})
    return 'chief' not in spec and task_id == 0
  return False


def worker_id(strategy):
  """`(task_type, task_id)` of this process (`(None, 0)` outside a cluster)."""
  return _task(strategy)


def worker_write_dir(strategy, directory):
  """Where this process writes `directory`'s files.

  The chief writes to `directory`; the other workers of a
  `MultiWorkerMirroredStrategy` must save too (saving is collective) but into
  a folder of their own, `directory/.workers/<type>_<id>`, which they also
  restore from when a run rolls back.
  """
  if is_chief(strategy):
    return directory
  task_type, task_id = _task(strategy)
  if directory is None:
    return tempfile.mkdtemp(prefix=f'{task_type}_{task_id}_')
  return os.path.join(directory, '.workers', f'{task_type}_{task_id}')


def describe_strategy(strategy):
  """A one-line description, e.g. `MirroredStrategy, 2 replicas (/cpu:0, /cpu:1)`."""
  name = type(strategy).__name__
  extended = strategy.extended
  devices = getattr(extended, 'worker_devices', None) or ()
  text = f'{name}, {strategy.num_replicas_in_sync} replica(s)'
  if devices:
    text += ' (' + ', '.join(str(d) for d in devices) + ')'
  task_type, task_id = _task(strategy)
  if task_type is not None:
    text += f', task {task_type}:{task_id}'
  return text
