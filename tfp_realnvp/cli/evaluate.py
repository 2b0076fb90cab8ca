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
  """log_prob and sample from the SavedModel (TensorFlow only)."""

  def __init__(self, path):
    if not os.path.isdir(path):
      raise common.CLIError(f'--saved-model: {path} does not exist (was the run '
                            f'exported?).')
    self.path = path
    self.model = tf.saved_model.load(path)

  def log_prob(self, x):
    return self.model.log_prob(x).numpy()

  def sample(self, n, temperature, seed):
    return self.model.sample(tf.constant(n, tf.int32), tf.constant(temperature, tf.float32),
                             tf.constant(seed, tf.int64)).numpy()


class _CheckpointSource:
  """log_prob and sample from `runs.load_run` (a rebuilt flow, a checkpoint restored)."""

  def __init__(self, run):
    self.run = run
    self._log_prob = tf.function(run.distribution.log_prob, reduce_retracing=True)
    shape = run.event_shape
    self._sample = tf.function(
        lambda n, t, seed: run.flow.forward(sample_latents(shape, n, t, seed)),
        reduce_retracing=True)

  def log_prob(self, x):
    return self._log_prob(x).numpy()

  def sample(self, n, temperature, seed):
    images = self._sample(tf.constant(n, tf.int32), tf.constant(temperature, tf.float32),
                          tf.constant(seed, tf.int64)).numpy()
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
  test = images.test[:args.max_test_examples or config.get('num_test')]
  if not len(test):
    raise common.CLIError(f'the test split of {images.source} is empty.')
  return test


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
  test = _load_test_images(config, args)
  out = args.output_dir or os.path.join(args.run_dir, 'eval')

  if args.saved_model:
    source = _SavedModelSource(os.path.join(args.run_dir, runs.SAVED_MODEL_DIR))
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

  batches = image_pipeline(test, levels, min(args.batch_size, len(test)), training=False,
                           seed=runs.EVAL_SEED, drop_remainder=False)
  log_probs = np.concatenate([source.log_prob(x) for x in batches])
  test_bpd = float(bits_per_dim(np.mean(log_probs.astype(np.float64)), shape, levels))
  print(f'test bits/dim on {len(test)} {config["dataset"]} images: {test_bpd:.4f}',
        flush=True)

  sample_paths = {}
  for t in args.temperatures:
    x = source.sample(args.num_samples, t, args.seed)
    path = os.path.join(out, f'samples_T{t:g}.png')
    viz.image_grid(x, title=f'{config["dataset"]}, T = {t:g}', path=path)
    sample_paths[f'{t:g}'] = os.path.relpath(path, args.run_dir)
  rows = [source.sample(SAMPLES_PER_ROW, t, args.seed) for t in args.temperatures]
  viz.image_grid(np.concatenate(rows), num_rows=len(rows),
                 row_labels=[f'T = {t:g}' for t in args.temperatures],
                 title='samples by temperature (same noise)',
                 path=os.path.join(out, 'temperatures.png'))
  result = dict(loaded, dataset=config['dataset'], test_bits_per_dim=test_bpd,
                num_test_examples=int(len(test)), eval_seed=runs.EVAL_SEED,
                temperatures=list(args.temperatures), samples=sample_paths,
                sample_seed=args.seed)
  runs.write_json(os.path.join(out, 'eval.json'), result)
  print(f'wrote {out}/eval.json and samples at T = '
        f'{", ".join(f"{t:g}" for t in args.temperatures)}', flush=True)
  return result


if __name__ == '__main__':
  sys.exit(main())
