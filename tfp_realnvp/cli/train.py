"""Train a multi-scale Real NVP on images: Fashion-MNIST by default, offline.

Data: with neither `--dataset` nor `--data-dir`, Fashion-MNIST from Debian's
`dataset-fashion-mnist` folder (`apt-get install -y dataset-fashion-mnist`), or, when it
is not installed, scikit-learn's 8x8 digits (the run says so). A source you name
(`--dataset mnist|kmnist|cifar10|celeb_a|fashion_mnist|digits`, `--data-dir` a folder of
IDX files or a `.npz`) is used or the run stops with an error: it never falls back. A
validation split is carved from the training images (`--validation-examples`, default a
tenth, at most 2000, chosen by a fixed permutation, seed 0); the test split is only
scored.

The strategy suits the machine (several GPUs: MirroredStrategy, one GPU: that device,
none: the CPU, `TF_CONFIG` set: MultiWorkerMirroredStrategy); the global batch
`--batch-size` is split over the replicas.

Per epoch: the validation and test bits/dim (inference mode, fixed dequantization
seed), `OUTPUT_DIR/samples/epoch_NNN.png` at `--temperature`, TensorBoard scalars and
images in `OUTPUT_DIR/tensorboard` (`tensorboard --logdir OUTPUT_DIR/tensorboard`) and
`OUTPUT_DIR/metrics.json`. The checkpoint with the lowest validation bits/dim is kept
(`checkpoints/best/`); `--patience N` stops the run after N epochs without a better one.
At the end: `OUTPUT_DIR/bits_per_dim.png` and the SavedModel `OUTPUT_DIR/saved_model` of
the best checkpoint (`log_prob`, `bits_per_dim`, `sample`; loads with TensorFlow alone).
Then `examples/evaluate.py OUTPUT_DIR` scores a checkpoint or the export and samples at
chosen temperatures.

Class-conditional flows (`--conditional`): the flow models `p(x | y)` for the source's class
labels (IDX label files, `y_train`/`y_test` of a `.npz`, tensorflow-datasets, the digits'
targets, the sub-folders of an image folder; a source without labels is an error). Each
epoch also writes `OUTPUT_DIR/samples/classes_epoch_NNN.png` (one row of
`--samples-per-class` samples per class, instead of `epoch_NNN.png`); `test_bits_per_dim`
in `metrics.json` is then the conditional `-log p(x | y)` of the test images with their
labels, and `test_accuracy_per_epoch` the accuracy of the generative classifier
`argmax_y log p(x | y) + log p(y)` on the test images (one dequantization, the prior
`p(y)` the class frequencies of the training split, recorded as `class_prior` in
`config.json`); it costs `num_classes` evaluations per test image (`--max-test-examples`
limits them). `test_accuracy` is that of the model the run exports (the best checkpoint,
else the last state; after `--recompute-batch-norm` when given). The SavedModel then has
`log_prob(x, label)`, `bits_per_dim(x, label)` and `sample(n, label, temperature, seed)`.

Glow's layers (Kingma & Dhariwal 2018, https://arxiv.org/abs/1807.03039): `--act-norm`
puts an ActNorm after every coupling instead of the invertible batch norm (started from
the first training batch of a fresh run), `--invertible-1x1-conv` a learned 1x1
convolution before every coupling. `--recompute-batch-norm N` recomputes, after training,
the running averages of every batch norm over N training batches (stored order, no
flips) under the final weights, before the final evaluation and the export; the
validation bits/dim before and after go into `metrics.json` (`recompute_batch_norm`).

Small image sets (a few thousand images) overfit within a few hundred steps; two
regularisers are off by default: `--random-shift P` moves each training image by one
pixel with probability P, `--dropout R` drops activations inside the s/t networks'
residual blocks in training steps (evaluation, sampling and the export never drop).

Checkpoints go to `OUTPUT_DIR/checkpoints` every `--checkpoint-every` steps and at each
epoch's end; `--resume` continues the run in OUTPUT_DIR from its newest checkpoint that
loads, `--overwrite` moves an earlier run aside (`OUTPUT_DIR.replaced-<time>`) and
starts afresh, and `--time-limit MINUTES` ends the training early (with the same
end-of-epoch evaluation, checkpoint and export); with `--decay`, the decay then also
follows the clock and ends at the time limit if that comes before the run's last step (a
resumed run takes its decay up from its step and spends the rest over its own limit). A
diverging run goes back to its last good checkpoint with half the learning rate, at most
5 times; then it stops with exit code 1 and names that checkpoint. Bad flags, unreadable
data and a run folder in use or in the way stop it before anything is written, with exit
code 2 and one line naming the flag or file (`--debug` adds the traceback).

```
python examples/train_mnist.py                         # a few minutes on 2 CPU cores
python examples/train_mnist.py --resume --epochs 6     # continue the same run
python examples/train_mnist.py --epochs 20 --steps-per-epoch 0 \\
    --hidden-channels 32 --num-res-blocks 4 --jit      # full epochs, larger nets
bash examples/cifar10_paper.sh                         # the paper's CIFAR-10 setup
```
"""

import argparse
import contextlib
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tfp_realnvp import viz
from tfp_realnvp.classifier import GenerativeClassifier
from tfp_realnvp.classifier import class_frequencies
from tfp_realnvp.cli import common
from tfp_realnvp.data import IMAGE_DATASET_NAMES
from tfp_realnvp.data import image_pipeline
from tfp_realnvp.train import progress as progress_lib
from tfp_realnvp.train import recipe
from tfp_realnvp.train import runs
from tfp_realnvp.train.checkpoints import CheckpointLoadError
from tfp_realnvp.train.checkpoints import NoLoadableCheckpointError
from tfp_realnvp.train.checkpoints import find_checkpoints
from tfp_realnvp.train.config import TrainConfig
from tfp_realnvp.train.health import RunUnhealthyError
from tfp_realnvp.train.run_lock import RunLock
from tfp_realnvp.train.run_lock import RunLockedError
from tfp_realnvp.train.strategy import describe_strategy
from tfp_realnvp.train.strategy import is_chief
from tfp_realnvp.train.strategy import pick_strategy
from tfp_realnvp.train.trainer import Trainer

__all__ = ['CONDITIONAL_PER_EPOCH_KEYS', 'PER_EPOCH_KEYS', 'build_parser', 'main']

PROGRAM = 'tfp-realnvp-train'
DEFAULT_DATASET = 'fashion_mnist'
DEFAULT_OUTPUT_DIR = os.path.join('runs', 'train_mnist')
# The lists of metrics.json, one entry per epoch.
PER_EPOCH_KEYS = ('epoch', 'step', 'train_bits_per_dim', 'validation_bits_per_dim',
                  'test_bits_per_dim', 'images_per_second_per_epoch', 'seconds',
                  'learning_rate', 'skipped_steps', 'samples')
# The lists that class-conditional runs add.
CONDITIONAL_PER_EPOCH_KEYS = ('test_accuracy_per_epoch',)


def build_parser():
  """The flags of the training job (every value is checked when parsed)."""
  parser = argparse.ArgumentParser(
      prog=PROGRAM, description=__doc__.split('\n\n', maxsplit=1)[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  data = parser.add_argument_group('data')
  data.add_argument('--dataset', default=None, choices=IMAGE_DATASET_NAMES,
                    help=f'default {DEFAULT_DATASET}, falling back to digits when it is '
                         f'not installed and no --data-dir is given')
  data.add_argument('--data-dir', default=None,
                    help='folder of IDX files or a .npz (see load_images)')
  data.add_argument('--image-size', type=common.positive_int, default=None,
                    help='resize images to this square side')
  data.add_argument('--max-examples', type=common.positive_int, default=None,
                    help='keep only this many images per split')
  data.add_argument('--validation-examples', type=common.count, default=None,
                    help='training images held out for validation; None: a tenth, at '
                         'most 2000; 0: none')
  data.add_argument('--max-test-examples', type=common.positive_int, default=None,
                    help='test images scored per epoch (default: all)')
  data.add_argument('--horizontal-flip', action='store_true',
                    help='random left-right flips (natural images)')
  data.add_argument('--random-shift', type=common.probability, default=0.,
                    help='probability of moving a training image by one pixel (a '
                         'regulariser for small datasets; 0: never)')
  model = parser.add_argument_group('model')
  model.add_argument('--num-scales', type=common.positive_int, default=2)
  model.add_argument('--hidden-channels', type=common.positive_int, default=16)
  model.add_argument('--num-res-blocks', type=common.count, default=2)
  model.add_argument('--dropout', type=common.dropout_rate, default=0.,
                     help='dropout inside the residual blocks of the s/t networks in '
                          'training (a regulariser for small datasets; 0: none)')
  model.add_argument('--conditional', action='store_true',
                     help="a class-conditional flow p(x | y) of the source's labels, with a "
                          'generative classifier (test_accuracy in metrics.json)')
  model.add_argument('--act-norm', action='store_true',
                     help="Glow's ActNorm after every coupling instead of the invertible "
                          'batch norm')
  model.add_argument('--invertible-1x1-conv', action='store_true',
                     help="Glow's invertible 1x1 convolution (LU form) before every "
                          'coupling')
  opt = parser.add_argument_group('training')
  opt.add_argument('--epochs', type=common.positive_int, default=3)
  opt.add_argument('--steps-per-epoch', type=common.count, default=100,
                   help='global steps per epoch; 0: one pass over the training images')
  opt.add_argument('--batch-size', type=common.positive_int, default=recipe.BATCH_SIZE,
                   help='global batch, split over the replicas')
  opt.add_argument('--lr', type=common.positive_float, default=recipe.LEARNING_RATE)
  opt.add_argument('--warmup-steps', type=common.count, default=0)
  opt.add_argument('--decay', choices=('none', 'cosine', 'exponential'), default='none',
                   help='learning-rate decay over the run\'s steps after the warm-up, or '
                        'over --time-limit when that ends the run first')
  opt.add_argument('--l2', type=common.non_negative_float, default=recipe.L2_SCALE,
                   help='L2 penalty on the s-scale parameters')
  opt.add_argument('--clip-norm', type=common.non_negative_float,
                   default=recipe.CLIP_NORM, help='global gradient-norm clip; 0: none')
  opt.add_argument('--jit', action='store_true', help='XLA-compile the step')
  opt.add_argument('--mixed-precision', default='none',
                   choices=('none', 'bfloat16', 'float16'),
                   help='dtype of the s/t networks (couplings stay float32)')
  opt.add_argument('--seed', type=common.count, default=0)
  opt.add_argument('--time-limit', type=common.positive_float, default=None,
                   help='minutes of training after which the run ends its epoch early '
                        '(evaluation, samples, checkpoint, export)')
  opt.add_argument('--patience', type=common.positive_int, default=None,
                   help='stop after this many epochs without a better validation '
                        'bits/dim; None: never')
  opt.add_argument('--recompute-batch-norm', type=common.count, default=0,
                   metavar='BATCHES',
                   help='after training, recompute every batch-norm running average over '
                        'this many training batches (stored order, no flips) before the '
                        'final evaluation and the export; 0: off (the default, until its '
                        'effect is measured)')
  out = parser.add_argument_group('output')
  common.add_common_flags(out, DEFAULT_OUTPUT_DIR, 'the run folder')
  again = out.add_mutually_exclusive_group()
  again.add_argument('--resume', action='store_true',
                     help='continue from the newest checkpoint in OUTPUT_DIR that loads')
  again.add_argument('--overwrite', action='store_true',
                     help='start afresh in an OUTPUT_DIR that holds a run (the old run '
                          'is moved to OUTPUT_DIR.replaced-<time>)')
  out.add_argument('--checkpoint-every', type=common.count, default=100,
                   help='steps between checkpoints (also at each epoch end); 0: epoch '
                        'ends only')
  out.add_argument('--temperature', type=common.non_negative_float, default=0.7,
                   help='sampling temperature of the per-epoch sample grids')
  out.add_argument('--num-samples', type=common.positive_int, default=64,
                   help='images in each sample grid')
  out.add_argument('--samples-per-class', type=common.positive_int, default=8,
                   help='samples in each row of the class grids (--conditional)')
  out.add_argument('--eval-batch-size', type=common.positive_int, default=500)
  out.add_argument('--no-export', action='store_true', help='skip the SavedModel export')
  out.add_argument('--progress', default='auto', choices=progress_lib.MODES,
                   help='auto: a progress bar on a terminal, plain lines otherwise')
  out.add_argument('--log-every', type=common.positive_int, default=50,
                   help='steps between two progress lines (when not on a terminal)')
  out.add_argument('--quiet', action='store_true', help='no progress output')
  return parser


def main(argv=None):
  """Runs the training job; returns the exit code (0, 1 failed run, 2 usage error)."""
  return common.run_main(
      PROGRAM, build_parser(), _train, argv,
      expected=(RunLockedError, NoLoadableCheckpointError, CheckpointLoadError))


# -- before the run folder is touched ----------------------------------------------------
def _load_images(args, log):
  requested = args.dataset or DEFAULT_DATASET
  fallback = args.dataset is None and args.data_dir is None
  size = (args.image_size, args.image_size) if args.image_size else None
  flag = (f'--data-dir {args.data_dir}' if args.data_dir else f'--dataset {requested}')
  try:
    images = runs.load_dataset(requested, data_dir=args.data_dir, image_size=size,
                               max_examples=args.max_examples, fallback=fallback,
                               log=log.warning)
  except (ValueError, OSError, RuntimeError, ImportError) as err:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    raise common.CLIError(f'{flag}: cannot load the images: {first}') from err
  if len(images.test) == 0:
    raise common.CLIError(f'{flag}: the test split of {images.source} is empty.')
  if args.conditional and not images.has_labels:
    raise common.CLIError(
        f'--conditional: {flag} ({images.source}) has no class labels (IDX label files, '
        f'y_train/y_test in a .npz, a tensorflow-datasets set with labels, or one '
        f'sub-folder per class); train without --conditional.')
  return images


class _Split:
  """The run's images: training, validation (carved from training) and test."""

  def __init__(self, args, images):
    num_train = len(images.train)
    num_validation = (runs.default_num_validation(num_train)
                      if args.validation_examples is None else args.validation_examples)
    if num_train - num_validation < args.batch_size:
      raise common.CLIError(
          f'--batch-size {args.batch_size} is larger than the {num_train - num_validation}'
          f' training images ({num_train} minus {num_validation} for validation, see '
          f'--validation-examples).')
    train, validation = runs.validation_indices(num_train, num_validation)
    self.train, self.validation = images.train[train], images.train[validation]
    self.test = images.test[:args.max_test_examples]
    self.num_levels = images.num_levels
    self.eval_batch_size = args.eval_batch_size
    self.conditional = bool(args.conditional)
    self.num_classes = images.num_classes if self.conditional else None
    self.class_names = images.class_names if self.conditional else None
    self.labels = {}
    if self.conditional:
      self.labels = {'train': images.train_labels[train],
                     'validation': images.train_labels[validation],
                     'test': images.test_labels[:args.max_test_examples]}
      self.class_prior = class_frequencies(self.labels['train'], self.num_classes)
    self._test_pixels = None

  def train_batches(self, batch_size, seed, horizontal_flip=False, random_shift=0.,
                    training=True):
    """The training pipeline (`training=False`: one pass in stored order, no flips or
    shifts)."""
    return image_pipeline(self.train, self.num_levels, batch_size,
                          labels=self.labels.get('train'), training=training, seed=seed,
                          horizontal_flip=horizontal_flip, random_shift=random_shift)

  def eval_batches(self, split):
    """`split`'s batches ('validation' or 'test'), with labels for a conditional run."""
    images = getattr(self, split)
    return image_pipeline(images, self.num_levels, min(self.eval_batch_size, len(images)),
                          labels=self.labels.get(split), training=False,
                          seed=runs.EVAL_SEED, drop_remainder=False)

  def test_pixels(self):
    """The dequantized test images of `eval_batches('test')`, as one array."""
    if self._test_pixels is None:
      self._test_pixels = np.concatenate(
          [batch[0].numpy() for batch in self.eval_batches('test')])
    return self._test_pixels


def _run_config(args, images, split):
  return dict(
      dataset=images.name, source=images.source, num_levels=images.num_levels,
      image_shape=list(images.image_shape), num_train=len(split.train),
      num_validation=len(split.validation), validation_seed=runs.VALIDATION_SEED,
      num_test=len(split.test), num_scales=args.num_scales,
      hidden_channels=args.hidden_channels, num_res_blocks=args.num_res_blocks,
      dropout=args.dropout, batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup_steps,
      decay=args.decay, l2=args.l2, clip_norm=args.clip_norm, jit=args.jit,
      mixed_precision=(None if args.mixed_precision == 'none' else args.mixed_precision),
      seed=args.seed, horizontal_flip=args.horizontal_flip, random_shift=args.random_shift,
      data_dir=args.data_dir,
      image_size=args.image_size, max_examples=args.max_examples,
      patience=args.patience, eval_seed=runs.EVAL_SEED,
      conditional=split.conditional, num_classes=split.num_classes,
      class_names=None if split.class_names is None else list(split.class_names),
      class_prior=(split.class_prior.tolist() if split.conditional else None),
      act_norm=args.act_norm, invertible_1x1_conv=args.invertible_1x1_conv,
      recompute_batch_norm=args.recompute_batch_norm)


def _build_trainer(args, config, strategy, steps_per_epoch):
  """The trainer (it builds the flow; nothing is read or written on disk)."""
  try:
    train_config = TrainConfig(
        global_batch_size=args.batch_size, learning_rate=args.lr, l2_scale=args.l2,
        clip_norm=args.clip_norm or None, warmup_steps=args.warmup_steps,
        decay=args.decay,
        decay_steps=max(1, args.epochs * steps_per_epoch - args.warmup_steps),
        mixed_precision=config['mixed_precision'], jit_compile=args.jit,
        checkpoint_every=args.checkpoint_every or None, patience=args.patience)
  except ValueError as err:
    raise common.CLIError(str(err)) from err
  replicas = strategy.num_replicas_in_sync
  if args.batch_size % replicas:
    raise common.CLIError(f'--batch-size {args.batch_size} does not split evenly over '
                          f'{replicas} replicas; use a multiple of {replicas}.')
  try:
    return Trainer(runs.flow_fn_from_config(config), tuple(config['image_shape']),
                   train_config, num_levels=config['num_levels'], strategy=strategy,
                   checkpoint_dir=os.path.join(args.output_dir, runs.CHECKPOINT_DIR))
  except ValueError as err:
    raise common.CLIError(
        f'--num-scales {args.num_scales}, --hidden-channels {args.hidden_channels}, '
        f'--num-res-blocks {args.num_res_blocks} do not fit '
        f'{tuple(config["image_shape"])} images: {err}') from err



# -- the run folder -----------------------------------------------------------------------
def _check_resume_config(saved, current, path):
  changed = {k: (saved.get(k), current.get(k)) for k in runs.ARCHITECTURE_KEYS
             if k in saved and saved.get(k) != current.get(k)}
  if changed:
    details = ', '.join(f'{k}: {a} -> {b}' for k, (a, b) in changed.items())
    raise common.CLIError(f'--resume: these settings differ from the saved run in {path} '
                          f'({details}); use the same ones or a new --output-dir.')


def _prepare_run_folder(args, trainer, config, chief, log):
  """Resumes, refuses, or moves an earlier run aside; then writes config.json."""
  checkpoint_dir = os.path.join(args.output_dir, runs.CHECKPOINT_DIR)
  config_path = os.path.join(args.output_dir, runs.CONFIG_NAME)
  if args.resume:
    try:
      saved = runs.read_json(config_path)
    except ValueError as err:
      raise common.CLIError(f'--resume: {err}') from err
    if saved is not None:
      _check_resume_config(saved, config, config_path)
    try:
      restored = trainer.restore()
    except NoLoadableCheckpointError as err:
      raise common.CLIError(f'--resume: {err} Pass --overwrite to start afresh (the '
                            f'old run is moved aside).') from err
    if restored is None:
      log.info('--resume: no checkpoint in %s: starting from step 0', checkpoint_dir)
    elif trainer.skipped_checkpoints:
      log.warning('--resume: restored %s after skipping %d checkpoint(s) that do not '
                  'load', trainer.restored_from, len(trainer.skipped_checkpoints))
  elif find_checkpoints(checkpoint_dir) and not args.overwrite:
    raise common.CLIError(f'{checkpoint_dir} holds checkpoints of an earlier run: pass '
                          f'--resume to continue it, --overwrite to start afresh (the '
                          f'old run is moved aside), or another --output-dir.')
  elif args.overwrite and chief:
    moved = runs.move_run_aside(args.output_dir)
    if moved:
      log.warning('--overwrite: moved the earlier run to %s (delete it when you no '
                  'longer need it)', moved)
  if chief:
    runs.write_json(config_path, config)
    common.add_log_file(os.path.join(args.output_dir, 'train.log'))


# -- the run ------------------------------------------------------------------------------
class _Run:
  """The training run once its folder is ready: per-epoch outputs, the end, the export."""

  def __init__(self, args, trainer, images, split, config, strategy, chief, log):
    self.args, self.trainer, self.images, self.split = args, trainer, images, split
    self.config, self.strategy, self.chief, self.log = config, strategy, chief, log
    self.out = args.output_dir
    self.metrics_path = os.path.join(self.out, runs.METRICS_NAME)
    self.per_epoch_keys = PER_EPOCH_KEYS + (CONDITIONAL_PER_EPOCH_KEYS if split.conditional
                                            else ())
    self.metrics = dict(
        dataset=images.name, source=images.source, num_levels=images.num_levels,
        image_shape=list(images.image_shape), strategy=describe_strategy(strategy),
        replicas=strategy.num_replicas_in_sync, config=config, status='running',
        conditional=split.conditional, **{key: [] for key in self.per_epoch_keys})
    if args.resume:
      previous = runs.read_json(self.metrics_path) or {}
      for key in self.per_epoch_keys:
        self.metrics[key] = list(previous.get(key, []))
    self.writer = (tf.summary.create_file_writer(os.path.join(self.out, 'tensorboard'))
                   if chief else None)

  def _record_epoch(self, epoch, values):
    # A resumed or rolled-back run replaces the entries of the epochs it repeats.
    keep = [i for i, e in enumerate(self.metrics['epoch']) if e < epoch]
    for key in self.per_epoch_keys:
      column = self.metrics[key]
      self.metrics[key] = [column[i] if i < len(column) else None for i in keep]
      self.metrics[key].append(values.get(key))
    runs.write_json(self.metrics_path, self.metrics)

  def _write_summaries(self, epoch, logs, test_bpd, samples, test_accuracy):
    with self.writer.as_default(step=epoch):
      for name, value in (('bits_per_dim/train', logs['train_bits_per_dim']),
                          ('bits_per_dim/validation', logs['validation_bits_per_dim']),
                          ('bits_per_dim/test', test_bpd),
                          ('test_accuracy', test_accuracy),
                          ('images_per_second', logs['images_per_second']),
                          ('learning_rate', logs['learning_rate'])):
        if value is not None and np.isfinite(value):
          tf.summary.scalar(name, value)
      if self.split.conditional:
        grid = viz.tile_images(samples, num_rows=self.split.num_classes, pad=1)
        tf.summary.image(f'classes_T{self.args.temperature:g}', grid[None])
      else:
        grid = viz.tile_images(samples, pad=1)
        tf.summary.image(f'samples_T{self.args.temperature:g}', grid[None])
    self.writer.flush()

  def test_accuracy(self):
    """The generative classifier's accuracy on the test split (conditional runs)."""
    split, trainer = self.split, self.trainer
    classifier = GenerativeClassifier(
        lambda x, labels: trainer.log_prob(x, labels, what='the generative classifier'),
        num_classes=split.num_classes, class_prior=split.class_prior,
        batch_size=max(1, split.eval_batch_size // split.num_classes))
    return classifier.accuracy(split.test_pixels(), split.labels['test'])

  def class_grid(self, path, title):
    """Samples of every class at --temperature, one row per class; returns them."""
    args, split = self.args, self.split
    per_class = args.samples_per_class
    labels = np.repeat(np.arange(split.num_classes), per_class)
    samples = self.trainer.sample(len(labels), args.temperature, seed=args.seed,
                                  labels=labels)
    rows = samples.reshape((split.num_classes, per_class) + samples.shape[1:])
    viz.class_grid(rows, split.class_names, title=title, path=path)
    return samples

  def on_epoch_end(self, epoch, logs):
    if not self.chief:
      return
    tic = time.time()
    args = self.args
    test_bpd = self.trainer.evaluate(self.split.eval_batches('test'))
    title = f'{self.images.name}, epoch {epoch}, T = {args.temperature:g}'
    test_accuracy = None
    if self.split.conditional:
      test_accuracy = self.test_accuracy()
      path = os.path.join(self.out, 'samples', f'classes_epoch_{epoch:03d}.png')
      samples = self.class_grid(path, title)
    else:
      samples = self.trainer.sample(args.num_samples, args.temperature, seed=args.seed)
      path = os.path.join(self.out, 'samples', f'epoch_{epoch:03d}.png')
      viz.image_grid(samples, title=title, path=path)
    self._write_summaries(epoch, logs, test_bpd, samples, test_accuracy)
    self._record_epoch(epoch, dict(
        epoch=epoch, step=logs['step'], train_bits_per_dim=logs['train_bits_per_dim'],
        validation_bits_per_dim=logs['validation_bits_per_dim'],
        test_bits_per_dim=test_bpd, images_per_second_per_epoch=logs['images_per_second'],
        seconds=logs['seconds'], learning_rate=logs['learning_rate'],
        skipped_steps=logs['skipped_steps'], test_accuracy_per_epoch=test_accuracy,
        samples=os.path.relpath(path, self.out)))
    validation = logs['validation_bits_per_dim']
    self.log.info('epoch %d%s: train %.4f, validation %s, test %.4f bits/dim%s%s, %.1f '
                  'images/s (evaluation and samples %.1f s)', epoch,
                  ' (ended early by --time-limit)' if logs['partial'] else '',
                  logs['train_bits_per_dim'],
                  'n/a' if validation is None else f'{validation:.4f}', test_bpd,
                  '' if test_accuracy is None else f', test accuracy {test_accuracy:.4f}',
                  ' (best so far)' if logs['best'] else '', logs['images_per_second'],
                  time.time() - tic)

  def _summarize_best(self):
    trainer, metrics = self.trainer, self.metrics
    best_epoch = int(trainer.best_epoch.numpy())
    best = trainer.best_checkpoint
    metrics['best_checkpoint'] = None if best is None else os.path.relpath(best, self.out)
    metrics['best_epoch'] = best_epoch if best is not None else None
    metrics['best_validation_bits_per_dim'] = (float(trainer.best_score.numpy())
                                               if best is not None else None)
    test = dict(zip(metrics['epoch'], metrics['test_bits_per_dim']))
    metrics['best_test_bits_per_dim'] = test.get(best_epoch) if best is not None else None
    if self.split.conditional:
      accuracy = dict(zip(metrics['epoch'], metrics['test_accuracy_per_epoch']))
      metrics['best_test_accuracy'] = accuracy.get(best_epoch) if best is not None else None
    good = trainer.good_checkpoint
    metrics['last_good_checkpoint'] = None if good is None else os.path.relpath(
        good, self.out)

  def _fail(self, status, err):
    self.metrics['status'] = status
    self.metrics['error'] = str(err)
    self._summarize_best()
    runs.write_json(self.metrics_path, self.metrics)
    raise common.CLIError(str(err), common.EXIT_FAILED) from err

  def validation_fn(self):
    if not len(self.split.validation):
      return None
    return lambda: self.split.eval_batches('validation')

  def run(self, steps_per_epoch):
    args, trainer = self.args, self.trainer
    start = time.time()
    validation_fn = self.validation_fn()
    try:
      history = trainer.fit(
          lambda: self.split.train_batches(args.batch_size, args.seed,
                                           horizontal_flip=args.horizontal_flip,
                                           random_shift=args.random_shift),
          epochs=args.epochs, steps_per_epoch=steps_per_epoch,
          validation_fn=validation_fn, on_epoch_end=self.on_epoch_end,
          max_seconds=None if args.time_limit is None else 60. * args.time_limit,
          decay_to_deadline=args.time_limit is not None and args.decay != 'none',
          progress='none' if args.quiet else args.progress, log_every=args.log_every)
    except RunUnhealthyError as err:
      if not self.chief:
        raise
      self._fail('diverged', err)
    if not self.chief:
      return common.EXIT_OK
    return self._finish(history, start)

  def _finish(self, history, start):
    args, trainer, metrics = self.args, self.trainer, self.metrics
    rates = [h['images_per_second'] for h in history if np.isfinite(h['images_per_second'])]
    metrics['images_per_second'] = (float(np.mean(rates)) if rates
                                    else metrics.get('images_per_second'))
    metrics['wall_seconds'] = time.time() - start
    metrics['final_step'] = trainer.step
    metrics['time_limit_reached'] = trainer.stop_reason == 'time limit'
    metrics['early_stopped'] = trainer.stop_reason == 'early stopping'
    if metrics['test_bits_per_dim']:
      metrics['final_test_bits_per_dim'] = metrics['test_bits_per_dim'][-1]
    if self.split.conditional and metrics['test_accuracy_per_epoch']:
      metrics['final_test_accuracy'] = metrics['test_accuracy_per_epoch'][-1]
    self._summarize_best()
    viz.bits_per_dim_curves(metrics, path=os.path.join(self.out, 'bits_per_dim.png'),
                            title=f'Real NVP on {self.images.name}')
    final = metrics.get('final_test_bits_per_dim')
    if final is None or not np.isfinite(final):
      self._fail('unhealthy', RunUnhealthyError(
          f'the final test bits/dim are not finite ({final}).',
          last_good_checkpoint=trainer.good_checkpoint))
    recomputed = bool(args.recompute_batch_norm)
    if recomputed:
      self._recompute_batch_norm()
    if self.split.conditional:
      self._final_accuracy(recomputed)
    if not args.no_export:
      self._export(recomputed)
    metrics['status'] = 'done'
    runs.write_json(self.metrics_path, metrics)
    best = metrics.get('best_test_bits_per_dim')
    accuracy = metrics.get('test_accuracy')
    self.log.info('done: %s, %d steps, test %.4f bits/dim (last epoch)%s%s, %s images/s; '
                  'outputs in %s', self.images.name, trainer.step, final,
                  '' if best is None else f', {best:.4f} at the best checkpoint',
                  '' if accuracy is None else f', test accuracy {accuracy:.4f}',
                  'n/a' if metrics['images_per_second'] is None
                  else f"{metrics['images_per_second']:.1f}", self.out)
    return common.EXIT_OK

  def _delivered_index(self):
    """The index in the per-epoch lists of the model the run delivers (the best
    checkpoint, else the last epoch), or None when it is not there (the untrained model
    was the best)."""
    metrics = self.metrics
    epoch = (metrics['best_epoch'] if self.trainer.best_checkpoint is not None
             else metrics['epoch'][-1])
    return metrics['epoch'].index(epoch) if epoch in metrics['epoch'] else None

  def _final_accuracy(self, recomputed):
    """`test_accuracy`: the accuracy of the model the run delivers (see the module doc)."""
    metrics = self.metrics
    if recomputed:
      metrics['test_accuracy'] = metrics['recompute_batch_norm']['test_accuracy_after']
      return
    index = self._delivered_index()
    if index is not None:
      metrics['test_accuracy'] = metrics['test_accuracy_per_epoch'][index]
      return
    self.trainer.restore(self.trainer.best_checkpoint)
    metrics['test_accuracy'] = self.test_accuracy()

  def _recompute_batch_norm(self):
    """The delivered model (best checkpoint, else the last state) with its batch-norm
    running averages recomputed over training batches; before/after in metrics.json."""
    args, trainer, metrics, split = self.args, self.trainer, self.metrics, self.split
    source = trainer.best_checkpoint
    if source is not None:
      trainer.restore(source)
    validation_fn = self.validation_fn()
    before = None if validation_fn is None else trainer.evaluate(validation_fn())
    index = self._delivered_index()
    if index is None:
      test_before = trainer.evaluate(split.eval_batches('test'))
      accuracy_before = self.test_accuracy() if split.conditional else None
    else:
      test_before = metrics['test_bits_per_dim'][index]
      accuracy_before = (metrics['test_accuracy_per_epoch'][index] if split.conditional
                         else None)
    tic = time.time()
    try:
      used = trainer.recompute_batch_norm_statistics(
          split.train_batches(args.batch_size, args.seed, training=False),
          max_batches=args.recompute_batch_norm)
    except ValueError as err:
      self._fail('failed', ValueError(f'--recompute-batch-norm: {err}'))
    after = None if validation_fn is None else trainer.evaluate(validation_fn())
    record = dict(
        batches=used, examples=used * args.batch_size,
        checkpoint=None if source is None else os.path.relpath(source, self.out),
        validation_bits_per_dim_before=before, validation_bits_per_dim_after=after,
        test_bits_per_dim_before=test_before,
        test_bits_per_dim_after=trainer.evaluate(split.eval_batches('test')))
    if split.conditional:
      record['test_accuracy_before'] = accuracy_before
      record['test_accuracy_after'] = self.test_accuracy()
    metrics['recompute_batch_norm'] = record
    runs.write_json(self.metrics_path, metrics)
    self.log.info(
        '--recompute-batch-norm: running averages of %s recomputed over %d training '
        'batches (%.1f s): validation %s -> %s, test %.4f -> %.4f bits/dim',
        record['checkpoint'] or 'the last state', used, time.time() - tic,
        _bpd(before), _bpd(after), record['test_bits_per_dim_before'],
        record['test_bits_per_dim_after'])
    if before is not None and after is not None and after > before:
      self.log.warning('--recompute-batch-norm: the validation bits/dim rose (%.4f -> '
                       '%.4f); the export keeps the recomputed statistics.', before, after)

  def _export(self, recomputed):
    trainer, metrics = self.trainer, self.metrics
    # With recomputed statistics the trainer holds the model to export already.
    source = None if recomputed else trainer.best_checkpoint
    check_batch = next(iter(self.split.eval_batches('test')))
    check_images, check_labels = ((check_batch[0].numpy(), check_batch[1].numpy())
                                  if self.split.conditional
                                  else (check_batch.numpy(), None))
    path = os.path.join(self.out, runs.SAVED_MODEL_DIR)
    try:
      trainer.export(path, checkpoint=source, check_images=check_images,
                     check_labels=check_labels)
    except RunUnhealthyError as err:
      self._fail('unhealthy', RunUnhealthyError(
          str(err), last_good_checkpoint=trainer.good_checkpoint))
    metrics['saved_model'] = os.path.relpath(path, self.out)
    delivered = trainer.best_checkpoint
    metrics['saved_model_checkpoint'] = (None if delivered is None
                                         else os.path.relpath(delivered, self.out))
    metrics['saved_model_batch_norm_recomputed'] = recomputed
    self.log.info('exported %s%s to the SavedModel %s', delivered or 'the final state',
                  ' (batch-norm statistics recomputed)' if recomputed else '', path)


def _describe_options(args, split):
  options = []
  if split.conditional:
    options.append(f'class-conditional ({split.num_classes} classes)')
  if args.act_norm:
    options.append('ActNorm')
  if args.invertible_1x1_conv:
    options.append('invertible 1x1 convolutions')
  if args.dropout:
    options.append(f'dropout {args.dropout:g}')
  return ''.join(f', {option}' for option in options)


def _bpd(value):
  return 'n/a' if value is None else f'{value:.4f}'


def _train(args):
  log = common.setup_logging()
  # Before anything touches the devices (MultiWorkerMirroredStrategy).
  strategy = pick_strategy()
  chief = is_chief(strategy)
  keras.utils.set_random_seed(args.seed)
  images = _load_images(args, log)
  requested = args.dataset or DEFAULT_DATASET
  log.info('dataset: %s from %s (train %s, test %s, %d levels)%s', images.name,
           images.source, images.train.shape, images.test.shape, images.num_levels,
           '' if images.name == requested else f' instead of {requested}')
  split = _Split(args, images)
  if split.conditional:
    absent = [split.class_names[k] for k in np.nonzero(split.class_prior == 0)[0]]
    if absent:
      log.warning('--conditional: no training image of class(es) %s: the classifier '
                  'never predicts them', ', '.join(absent))
  config = _run_config(args, images, split)
  steps_per_epoch = args.steps_per_epoch or len(split.train) // args.batch_size
  trainer = _build_trainer(args, config, strategy, steps_per_epoch)
  num_params = sum(int(np.prod(v.shape)) for v in trainer.trainable_variables)
  log.info('strategy: %s', describe_strategy(strategy))
  log.info('Real NVP: %d scales, %d couplings, %d parameters%s; %d steps per epoch of %d '
           'images; %d training, %d validation, %d test images', args.num_scales,
           len(trainer.flow.couplings), num_params, _describe_options(args, split),
           steps_per_epoch, args.batch_size, len(split.train), len(split.validation),
           len(split.test))
  lock = RunLock(args.output_dir) if chief else contextlib.nullcontext()
  with lock:
    if chief and lock.stale_owner is not None:
      log.warning('%s', lock.describe_stale_owner())
    _prepare_run_folder(args, trainer, config, chief, log)
    run = _Run(args, trainer, images, split, config, strategy, chief, log)
    return run.run(steps_per_epoch)

if __name__ == '__main__':
  sys.exit(main())
