"""Score a trained Real NVP on the test set and sample it at chosen temperatures.

Loads the run's newest checkpoint that loads (default; the ones skipped are named with
the reason), `--checkpoint best` (the lowest validation bits/dim, which the SavedModel
holds), `--checkpoint good`, a checkpoint path, or the SavedModel export
(`--saved-model`); computes the test bits/dim in inference mode (running batch-norm
statistics, nothing updated; the same fixed dequantization seed as the per-epoch
evaluations of the training job), and writes to `--output-dir` (default `RUN_DIR/eval`):

- `eval.json`: test bits/dim, the number of test images, what was loaded;
- `samples_T<T>.png` for each temperature, and `temperatures.png` (one row per
  temperature from the same base noise). Samples are clipped to [0, 1].

A class-conditional run (`--conditional`) is scored with the test labels (the conditional
bits/dim of `-log p(x | y)`) and by its generative classifier, `argmax_y log p(x | y) +
log p(y)` with the run's `class_prior` (`test_accuracy` in `eval.json`); its samples cycle
through the classes, and `classes_T<T>.png` shows one row of `--samples-per-class`
samples per class at each temperature.

```
python examples/evaluate.py runs/train_mnist
python examples/evaluate.py runs/train_mnist --saved-model --temperatures 0.5 0.8 1
python examples/evaluate.py runs/train_mnist --checkpoint runs/train_mnist/checkpoints/ckpt-200
```
"""

import argparse
import os
import sys

import numpy as np
import tensorflow as tf

from tfp_realnvp import viz
from tfp_realnvp.bits import bits_per_dim
from tfp_realnvp.classifier import GenerativeClassifier
from tfp_realnvp.cli import common
from tfp_realnvp.data import image_pipeline
from tfp_realnvp.latents import sample_latents
from tfp_realnvp.train import runs
from tfp_realnvp.train.checkpoints import CheckpointLoadError
from tfp_realnvp.train.checkpoints import NoLoadableCheckpointError

__all__ = ['build_parser', 'evaluate_run', 'main']

PROGRAM = 'tfp-realnvp-evaluate'
SAMPLES_PER_ROW = 8


def build_parser():
  """The flags of the evaluation (every value is checked when parsed)."""
  parser = argparse.ArgumentParser(
      prog=PROGRAM, description=__doc__.split('\n\n', maxsplit=1)[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('run_dir', help='the --output-dir of the training job')
  source = parser.add_mutually_exclusive_group()
  source.add_argument('--checkpoint', default='latest',
                      help="'latest' (the newest that loads), 'best', 'good', or a "
                           'checkpoint path')
  source.add_argument('--saved-model', action='store_true',
                      help='use RUN_DIR/saved_model instead of a checkpoint')
  parser.add_argument('--temperatures', type=common.non_negative_float, nargs='+',
                      default=[0.5, 0.7, 0.85, 1.0])
  parser.add_argument('--num-samples', type=common.positive_int, default=64)
  parser.add_argument('--samples-per-class', type=common.positive_int, default=8,
                      help='samples in each row of the class grids (conditional runs)')
  parser.add_argument('--seed', type=common.count, default=0,
                      help='seed of the sampling noise')
  parser.add_argument('--batch-size', type=common.positive_int, default=500)
  parser.add_argument('--max-test-examples', type=common.positive_int, default=None,
                      help='test images scored (default: as many as the run scored)')
  parser.add_argument('--data-dir', default=None, help="override the run's --data-dir")
  common.add_common_flags(parser, None, 'default RUN_DIR/eval')
  return parser


def main(argv=None):
  """Evaluates a run; returns the exit code (0, or 2 for a usage error)."""
  return common.run_main(PROGRAM, build_parser(), _main, argv,
                         expected=(CheckpointLoadError, NoLoadableCheckpointError))


def _main(args):
  common.setup_logging()
  evaluate_run(args)
  return common.EXIT_OK


class _SavedModelSource:
  """log_prob and sample from the SavedModel (TensorFlow only).

  `labels` (int32, one per image) go to the conditional signatures of a class-conditional
  run's export and must be None otherwise.
  """

  def __init__(self, path, conditional):
    if not os.path.isdir(path):
      raise common.CLIError(f'--saved-model: {path} does not exist (was the run '
                            f'exported?).')
    self.path = path
    self.model = tf.saved_model.load(path)
    if conditional != hasattr(self.model, 'num_classes'):
      raise common.CLIError(
          f'--saved-model: {path} is {"not " if conditional else ""}a class-conditional '
          f'export, but the run\'s config.json says conditional={conditional}.')

  def log_prob(self, x, labels=None):
    if labels is None:
      return self.model.log_prob(x).numpy()
    return self.model.log_prob(x, tf.constant(labels, tf.int32)).numpy()

  def sample(self, n, temperature, seed, labels=None):
    args = [tf.constant(temperature, tf.float32), tf.constant(seed, tf.int64)]
    if labels is not None:
      args.insert(0, tf.constant(labels, tf.int32))
    return self.model.sample(tf.constant(n, tf.int32), *args).numpy()


class _CheckpointSource:
  """log_prob and sample from `runs.load_run` (a rebuilt flow, a checkpoint restored)."""

  def __init__(self, run):
    self.run = run
    shape = run.event_shape

    def log_prob(x, labels):
      if labels is None:
        return run.distribution.log_prob(x)
      return run.distribution.log_prob(x, bijector_kwargs={'conditional_input': labels})

    def sample(n, t, seed, labels):
      z = sample_latents(shape, n, t, seed)
      if labels is None:
        return run.flow.forward(z)
      return run.flow.forward(z, conditional_input=labels)

    self._log_prob = tf.function(log_prob, reduce_retracing=True)
    self._sample = tf.function(sample, reduce_retracing=True)

  def log_prob(self, x, labels=None):
    if labels is not None:
      labels = tf.constant(labels, tf.int32)
    return self._log_prob(tf.constant(x, tf.float32), labels).numpy()

  def sample(self, n, temperature, seed, labels=None):
    if labels is not None:
      labels = tf.constant(labels, tf.int32)
    images = self._sample(tf.constant(n, tf.int32), tf.constant(temperature, tf.float32),
                          tf.constant(seed, tf.int64), labels).numpy()
    return np.clip(images, 0., 1.)


def _load_test_images(config, args):
  image_size = config.get('image_size')
  data_dir = args.data_dir or config.get('data_dir')
  try:
    images = runs.load_dataset(
        config['dataset'], data_dir=data_dir,
        image_size=(image_size, image_size) if image_size else None,
        max_examples=config.get('max_examples'), fallback=False)
  except (ValueError, OSError, RuntimeError, ImportError) as err:
    flag = f'--data-dir {data_dir}' if data_dir else f'the run\'s dataset {config["dataset"]}'
    raise common.CLIError(f'{flag}: cannot load the test images: {err}') from err
  count = args.max_test_examples or config.get('num_test')
  test = images.test[:count]
  if not len(test):
    raise common.CLIError(f'the test split of {images.source} is empty.')
  labels = None
  if config.get('conditional'):
    if not images.has_labels:
      raise common.CLIError(f'the run is class-conditional, but {images.source} has no '
                            f'class labels now.')
    if images.num_classes != config['num_classes']:
      raise common.CLIError(f'the run has {config["num_classes"]} classes, but '
                            f'{images.source} has {images.num_classes} now.')
    labels = images.test_labels[:count]
  return test, labels


def evaluate_run(args):
  """Scores and samples the run of `args` (parsed flags); returns the `eval.json` dict."""
  config_path = os.path.join(args.run_dir, runs.CONFIG_NAME)
  try:
    config = runs.read_json(config_path)
  except ValueError as err:
    raise common.CLIError(str(err)) from err
  if config is None:
    raise common.CLIError(f'{config_path} not found: is {args.run_dir} the --output-dir '
                          f'of the training job?')
  shape, levels = tuple(config['image_shape']), config['num_levels']
  conditional = bool(config.get('conditional'))
  test, test_labels = _load_test_images(config, args)
  out = args.output_dir or os.path.join(args.run_dir, 'eval')

  if args.saved_model:
    source = _SavedModelSource(os.path.join(args.run_dir, runs.SAVED_MODEL_DIR),
                               conditional)
    loaded = dict(saved_model=source.path)
  else:
    try:
      run = runs.load_run(args.run_dir, checkpoint=args.checkpoint)
    except FileNotFoundError as err:
      raise common.CLIError(str(err)) from err
    source = _CheckpointSource(run)
    loaded = dict(checkpoint=run.checkpoint, step=run.step,
                  skipped=[dict(path=s.path, reason=s.reason) for s in run.skipped])
  print(f'loaded {loaded}', flush=True)
  os.makedirs(out, exist_ok=True)

  batches = image_pipeline(test, levels, min(args.batch_size, len(test)), labels=test_labels,
                           training=False, seed=runs.EVAL_SEED, drop_remainder=False)
  pixels, log_probs = [], []
  for batch in batches:
    x, labels = (batch[0].numpy(), batch[1].numpy()) if conditional else (batch.numpy(), None)
    pixels.append(x)
    log_probs.append(source.log_prob(x, labels))
  log_probs = np.concatenate(log_probs)
  test_bpd = float(bits_per_dim(np.mean(log_probs.astype(np.float64)), shape, levels))
  print(f'test bits/dim on {len(test)} {config["dataset"]} images'
        f'{" (conditional, -log p(x | y))" if conditional else ""}: {test_bpd:.4f}',
        flush=True)
  extra = {}
  if conditional:
    extra = _classify_and_grid(args, config, source, np.concatenate(pixels), test_labels,
                               out)

  def cycling_labels(n):
    return np.arange(n) % config['num_classes'] if conditional else None

  sample_paths = {}
  for t in args.temperatures:
    x = source.sample(args.num_samples, t, args.seed, cycling_labels(args.num_samples))
    path = os.path.join(out, f'samples_T{t:g}.png')
    viz.image_grid(x, title=f'{config["dataset"]}, T = {t:g}', path=path)
    sample_paths[f'{t:g}'] = os.path.relpath(path, args.run_dir)
  rows = [source.sample(SAMPLES_PER_ROW, t, args.seed, cycling_labels(SAMPLES_PER_ROW))
          for t in args.temperatures]
  viz.image_grid(np.concatenate(rows), num_rows=len(rows),
                 row_labels=[f'T = {t:g}' for t in args.temperatures],
                 title='samples by temperature (same noise)',
                 path=os.path.join(out, 'temperatures.png'))
  result = dict(loaded, dataset=config['dataset'], test_bits_per_dim=test_bpd,
                num_test_examples=int(len(test)), eval_seed=runs.EVAL_SEED,
                temperatures=list(args.temperatures), samples=sample_paths,
                sample_seed=args.seed, conditional=conditional, **extra)
  runs.write_json(os.path.join(out, 'eval.json'), result)
  print(f'wrote {out}/eval.json and samples at T = '
        f'{", ".join(f"{t:g}" for t in args.temperatures)}', flush=True)
  return result


def _classify_and_grid(args, config, source, pixels, labels, out):
  """The generative classifier's test accuracy and the class grids of a conditional run."""
  num_classes = int(config['num_classes'])
  names = config.get('class_names') or [str(k) for k in range(num_classes)]
  prior = config.get('class_prior')
  classifier = GenerativeClassifier(
      source.log_prob, num_classes=num_classes, class_prior=prior,
      batch_size=max(1, args.batch_size // num_classes))
  accuracy = classifier.accuracy(pixels, labels)
  print(f'test accuracy of the generative classifier on {len(labels)} images: '
        f'{accuracy:.4f}', flush=True)
  grids = {}
  per_class = args.samples_per_class
  class_labels = np.repeat(np.arange(num_classes), per_class)
  for t in args.temperatures:
    x = source.sample(len(class_labels), t, args.seed, class_labels)
    path = os.path.join(out, f'classes_T{t:g}.png')
    viz.class_grid(x.reshape((num_classes, per_class) + x.shape[1:]), names,
                   title=f'{config["dataset"]} by class, T = {t:g}', path=path)
    grids[f'{t:g}'] = os.path.relpath(path, args.run_dir)
  return dict(test_accuracy=accuracy, num_classes=num_classes,
              class_prior=prior if prior is not None else 'uniform', class_grids=grids)


if __name__ == '__main__':
  sys.exit(main())
