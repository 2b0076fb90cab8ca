"""The files of a training run: its config, metrics, data split, and its trained flow.

A run folder (`examples/train_mnist.py --output-dir RUN`) holds

```none
RUN/config.json          dataset, data split, architecture and training settings
RUN/checkpoints/         checkpoints (see tfp_realnvp.train.checkpoints): the rotation,
                         good/ (last healthy) and best/ (lowest validation bits/dim)
RUN/metrics.json         train/validation/test bits/dim per epoch, the best checkpoint
RUN/samples/epoch_NNN.png (classes_epoch_NNN.png: one row per class, conditional runs),
RUN/bits_per_dim.png, RUN/tensorboard/, RUN/train.log
RUN/saved_model/         the SavedModel export of the best checkpoint
RUN/run.lock             while a process works in the folder (see run_lock)
```

`load_run(RUN)` rebuilds the trained flow from these files alone:

```python
run = load_run('runs/fm')                 # the newest checkpoint that loads
run = load_run('runs/fm', checkpoint='best')
bpd = bits_per_dim(run.distribution.log_prob(x), run.event_shape, run.num_levels)
```

A class-conditional run (`--conditional`) records `conditional: true`, `num_classes`,
`class_names` and `class_prior` (the class frequencies of its training split, the prior
of its generative classifier) in `config.json`; `load_run` rebuilds its conditional flow,
and `LoadedRun.classifier()` gives the generative classifier.

The validation split: `split_validation` holds out `num_validation` training images
(default `default_num_validation`: a tenth of the training set, at most 2000), chosen by a
permutation drawn from `VALIDATION_SEED` (0), whatever the run's `--seed`, so that runs
with different seeds are scored on the same images. The test split is never trained on
nor used for choices.
"""

import dataclasses
import datetime
import json
import logging
import math
import os
import zlib

import numpy as np
import tensorflow as tf

from tfp_realnvp.classifier import GenerativeClassifier
from tfp_realnvp.data import load_images
from tfp_realnvp.train import checkpoints as checkpoints_lib
from tfp_realnvp.train.recipe import make_distribution
from tfp_realnvp.train.recipe import make_flow
from tfp_realnvp.train.run_lock import LOCK_NAME

__all__ = [
    'ARCHITECTURE_KEYS', 'CHECKPOINT_DIR', 'CONFIG_NAME', 'EVAL_SEED', 'FALLBACK_DATASET',
    'LoadedRun', 'METRICS_NAME', 'SAVED_MODEL_DIR', 'VALIDATION_SEED',
    'default_num_validation', 'flow_fn_from_config', 'flow_kwargs_from_config',
    'load_dataset', 'load_run', 'move_run_aside', 'read_json', 'split_validation',
    'validation_indices', 'write_json',
]

logger = logging.getLogger('tfp_realnvp.train')

CONFIG_NAME = 'config.json'
METRICS_NAME = 'metrics.json'
CHECKPOINT_DIR = 'checkpoints'
SAVED_MODEL_DIR = 'saved_model'
# Settings a resumed run must share with the run it continues.
ARCHITECTURE_KEYS = ('dataset', 'image_shape', 'num_levels', 'num_scales',
                     'hidden_channels', 'num_res_blocks', 'batch_size', 'num_train',
                     'num_validation', 'conditional', 'num_classes', 'act_norm',
                     'invertible_1x1_conv')
# Dequantization seed of every validation and test evaluation, so that epochs compare.
EVAL_SEED = 1234
# Seed of the permutation that picks the validation images.
VALIDATION_SEED = 0
MAX_VALIDATION = 2000
FALLBACK_DATASET = 'digits'


def _finite_or_none(value):
  """`value` with every non-finite float replaced by None (JSON null)."""
  if isinstance(value, dict):
    return {k: _finite_or_none(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_finite_or_none(v) for v in value]
  if isinstance(value, (float, np.floating)):
    return float(value) if math.isfinite(value) else None
  if isinstance(value, np.integer):
    return int(value)
  if isinstance(value, np.bool_):
    return bool(value)
  return value


def write_json(path, value):
  """Writes strict JSON atomically (a temporary file, then a rename).

  NaN and infinities become `null` (JSON has no NaN); numpy scalars become numbers.
  """
  tmp = f'{path}.tmp'
  with open(tmp, 'w') as f:
    json.dump(_finite_or_none(value), f, indent=2, sort_keys=True, allow_nan=False)
    f.write('\n')
  os.replace(tmp, path)


def read_json(path, default=None):
  """The JSON value in `path`, or `default` when the file does not exist.

  Raises:
    ValueError: the file is not valid JSON (naming it).
  """
  if not os.path.exists(path):
    return default
  with open(path) as f:
    try:
      return json.load(f)
    except ValueError as err:
      raise ValueError(f'{path} is not valid JSON: {err}') from err


def flow_kwargs_from_config(config):
  """The keyword arguments of `make_flow` that `config.json` records (besides the shape).

  Keys absent from the configs of older runs take the values those runs had: no
  labels, batch norm, no ActNorm, no 1x1 convolutions, no dropout.
  """
  act_norm = bool(config.get('act_norm', False))
  kwargs = dict(num_scales=config['num_scales'], hidden_channels=config['hidden_channels'],
                num_res_blocks=config['num_res_blocks'],
                dropout_rate=float(config.get('dropout', 0.)), batch_norm=not act_norm,
                act_norm=act_norm,
                invertible_1x1_conv=bool(config.get('invertible_1x1_conv', False)))
  if config.get('conditional'):
    kwargs['num_classes'] = int(config['num_classes'])
  return kwargs


def flow_fn_from_config(config, mixed_precision=None):
  """A zero-argument function building the run's flow from `config.json`'s settings.

  `mixed_precision` (default: the run's) sets the dtype of the s/t networks; the
  variables are float32 either way, so any choice restores the run's checkpoints.
  """
  shape = tuple(config['image_shape'])
  if mixed_precision is None:
    mixed_precision = config.get('mixed_precision')
  kwargs = flow_kwargs_from_config(config)

  def flow_fn():
    return make_flow(shape, mixed_precision=mixed_precision, **kwargs)
  return flow_fn


def load_dataset(name, data_dir=None, image_size=None, max_examples=None,
                 fallback=True, log=print):
  """`load_images`, falling back to scikit-learn's digits when nothing was asked for.

  With `fallback` and no `data_dir`, a dataset that cannot be loaded (not installed, no
  network for tensorflow-datasets) is replaced by `'digits'` and `log` says so. A
  `data_dir` that cannot be read is always an error: the user asked for those files.

  Returns:
    The `ImageData`.

  Raises:
    ValueError, OSError, RuntimeError: from `load_images` (a corrupt gzip file is
      reported as a `ValueError` naming `data_dir`).
  """
  try:
    return load_images(name, data_dir=data_dir, image_size=image_size,
                       max_examples=max_examples)
  except zlib.error as err:
    raise ValueError(f'{data_dir}: a corrupt gzip file ({err})') from err
  except (RuntimeError, FileNotFoundError, ImportError, OSError) as err:
    if not fallback or data_dir is not None or name == FALLBACK_DATASET:
      raise
    first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
    log(f'could not load {name} ({first_line}); falling back to '
        f"scikit-learn's digits (8x8, 17 levels). For Fashion-MNIST: "
        f'apt-get install -y dataset-fashion-mnist')
    return load_images(FALLBACK_DATASET, max_examples=max_examples)


def default_num_validation(num_train):
  """A tenth of the training images, at most `MAX_VALIDATION` (2000)."""
  return min(MAX_VALIDATION, int(num_train) // 10)


def validation_indices(num_train, num_validation, seed=VALIDATION_SEED):
  """`(train_indices, validation_indices)` of `split_validation`, both sorted."""
  num_validation = int(num_validation)
  if not 0 <= num_validation < num_train:
    raise ValueError(f'num_validation must be in [0, {num_train - 1}] for '
                     f'{num_train} training images, got {num_validation}.')
  held_out = np.random.default_rng(seed).permutation(num_train)[:num_validation]
  keep = np.ones(num_train, bool)
  keep[held_out] = False
  return np.nonzero(keep)[0], np.sort(held_out)


def split_validation(images, num_validation, seed=VALIDATION_SEED):
  """Splits `images` (N, H, W, C) into `(train, validation)` arrays.

  The validation images are the first `num_validation` of a permutation drawn from
  `seed`; the training images keep their order. The same arguments give the same split.
  Split labels (or any array of one row per image) alike with `validation_indices`.
  """
  train, validation = validation_indices(len(images), num_validation, seed)
  return images[train], images[validation]


def move_run_aside(run_dir):
  """Moves everything in `run_dir` but its lock file to `RUN.replaced-<time>/`.

  Returns the new folder, or None when there was nothing to move.
  """
  entries = [e for e in os.listdir(run_dir) if e != LOCK_NAME]
  if not entries:
    return None
  stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
  base = f'{os.path.normpath(run_dir)}.replaced-{stamp}'
  target, suffix = base, 1
  while os.path.exists(target):
    suffix += 1
    target = f'{base}-{suffix}'
  os.makedirs(target)
  for entry in entries:
    os.rename(os.path.join(run_dir, entry), os.path.join(target, entry))
  return target


@dataclasses.dataclass
class LoadedRun:
  """A trained flow rebuilt from a run folder (see `load_run`).

  Attributes:
    run_dir: the run folder.
    config: its `config.json`.
    flow: the flow, with the checkpoint's values (inference: call without `training`).
    distribution: `make_distribution(flow, event_shape)`.
    checkpoint: the checkpoint restored.
    step: the training step of that checkpoint.
    skipped: `SkippedCheckpoint`s passed over because they did not load.
  """
  run_dir: str
  config: dict
  flow: object
  distribution: object
  checkpoint: str
  step: int
  skipped: tuple

  @property
  def event_shape(self):
    return tuple(self.config['image_shape'])

  @property
  def num_levels(self):
    return int(self.config['num_levels'])

  @property
  def num_classes(self):
    """K of a class-conditional run, None otherwise."""
    return int(self.config['num_classes']) if self.config.get('conditional') else None

  @property
  def class_names(self):
    """The class names of a class-conditional run (default '0', '1', ...), or None."""
    if self.num_classes is None:
      return None
    names = self.config.get('class_names')
    return tuple(names) if names else tuple(str(k) for k in range(self.num_classes))

  @property
  def class_prior(self):
    """`p(y)` of a class-conditional run: its training frequencies (uniform if absent)."""
    if self.num_classes is None:
      return None
    prior = self.config.get('class_prior')
    return (np.asarray(prior, np.float64) if prior is not None
            else np.full([self.num_classes], 1. / self.num_classes))

  def classifier(self, **kwargs):
    """The generative classifier of a class-conditional run (prior: `class_prior`).

    Raises:
      ValueError: the run is not class-conditional.
    """
    if self.num_classes is None:
      raise ValueError(f'{self.run_dir} is not a class-conditional run (train it with '
                       f'--conditional).')
    return GenerativeClassifier(self.distribution, class_prior=self.class_prior, **kwargs)


def load_run(run_dir, checkpoint='latest'):
  """Rebuilds a run's trained flow (float32 networks) and its config, without a Trainer.

  Args:
    run_dir: the `--output-dir` of `examples/train_mnist.py`.
    checkpoint: 'latest' (the newest checkpoint that loads; the ones skipped are
      logged and listed), 'best' (lowest validation bits/dim), 'good' (last healthy),
      or a checkpoint path.

  Returns:
    A `LoadedRun`.

  Raises:
    FileNotFoundError: no `config.json`, or no checkpoint.
    CheckpointLoadError, NoLoadableCheckpointError: the checkpoint(s) do not load.
  """
  run_dir = os.fspath(run_dir)
  config_path = os.path.join(run_dir, CONFIG_NAME)
  config = read_json(config_path)
  if config is None:
    raise FileNotFoundError(f'{config_path} not found: is {run_dir} the --output-dir '
                            f'of examples/train_mnist.py?')
  flow = flow_fn_from_config(config, mixed_precision='float32')()
  step = tf.Variable(0, dtype=tf.int64)
  state = tf.train.Checkpoint(flow=flow, step=step)
  directory = os.path.join(run_dir, CHECKPOINT_DIR)
  skipped = ()
  if checkpoint == 'latest':
    result = checkpoints_lib.restore_newest(state, directory, partial=True)
    path, skipped = result.path, result.skipped
    if path is None:
      raise FileNotFoundError(f'no checkpoint in {directory}')
  else:
    if checkpoint in checkpoints_lib.SLOTS:
      path = tf.train.latest_checkpoint(os.path.join(directory, checkpoint))
      if path is None:
        raise FileNotFoundError(f'no {checkpoint} checkpoint in {directory}/{checkpoint}')
    else:
      path = os.fspath(checkpoint)
    checkpoints_lib.restore_checkpoint(state, path, partial=True)
  return LoadedRun(run_dir=run_dir, config=config, flow=flow,
                   distribution=make_distribution(flow, config['image_shape']),
                   checkpoint=path, step=int(step.numpy()), skipped=tuple(skipped))
