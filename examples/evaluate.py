"""Score a trained Real NVP on the test set and sample it at chosen temperatures.

Loads the run's latest checkpoint (default), a given `--checkpoint`, or its
SavedModel export (`--saved-model`), computes the test bits/dim in inference
mode (running batch-norm statistics, nothing updated; the same fixed
dequantization seed as the per-epoch evaluations of `train_mnist.py`), and
writes to `--output-dir` (default `RUN_DIR/eval`):

- `eval.json`: test bits/dim, the number of test images, what was loaded;
- `samples_T<T>.png` for each temperature, and `temperatures.png` (one row per
  temperature from the same base noise).

```
python examples/evaluate.py runs/train_mnist
python examples/evaluate.py runs/train_mnist --saved-model --temperatures 0.5 0.8 1
python examples/evaluate.py runs/train_mnist --checkpoint runs/train_mnist/checkpoints/ckpt-200
```
"""

import argparse
import os
import sys

os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf

from tfp_realnvp import viz
from tfp_realnvp.bits import bits_per_dim
from tfp_realnvp.data import image_pipeline
from tfp_realnvp.data import load_images
from tfp_realnvp.train import TrainConfig
from tfp_realnvp.train import Trainer
from tfp_realnvp.train import runs
from tfp_realnvp.train import single_device_strategy


def parse_args(argv=None):
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('run_dir', help='the --output-dir of train_mnist.py')
  source = parser.add_mutually_exclusive_group()
  source.add_argument('--checkpoint', default=None,
                      help='a checkpoint path (default: the latest of the run)')
  source.add_argument('--saved-model', action='store_true',
                      help='use RUN_DIR/saved_model instead of a checkpoint')
  parser.add_argument('--temperatures', type=float, nargs='+',
                      default=[0.5, 0.7, 0.85, 1.0])
  parser.add_argument('--num-samples', type=int, default=64)
  parser.add_argument('--seed', type=int, default=0,
                      help='seed of the sampling noise')
  parser.add_argument('--batch-size', type=int, default=500)
  parser.add_argument('--max-test-examples', type=int, default=None)
  parser.add_argument('--data-dir', default=None,
                      help="override the run's --data-dir")
  parser.add_argument('--output-dir', default=None,
                      help='default RUN_DIR/eval')
  return parser.parse_args(argv)


def load_test_images(config, data_dir):
  image_size = config.get('image_size')
  return load_images(
      config['dataset'], data_dir=data_dir or config.get('data_dir'),
      image_size=(image_size, image_size) if image_size else None,
      max_examples=config.get('max_examples')).test


class _SavedModelSource:
  """log_prob and sample from the SavedModel (TensorFlow only)."""

  def __init__(self, path):
    self.path = path
    self.model = tf.saved_model.load(path)

  def log_prob(self, x):
    return self.model.log_prob(x).numpy()

  def sample(self, n, temperature, seed):
    return self.model.sample(tf.constant(n, tf.int32),
                             tf.constant(temperature, tf.float32),
                             tf.constant(seed, tf.int64)).numpy()


class _CheckpointSource:
  """log_prob and sample from a rebuilt flow with a checkpoint restored."""

  def __init__(self, config, path):
    self.trainer = Trainer(runs.flow_fn_from_config(config),
                           tuple(config['image_shape']),
                           TrainConfig(global_batch_size=1),
                           num_levels=config['num_levels'],
                           strategy=single_device_strategy())
    self.trainer.restore(path)
    self.path = path
    self.step = self.trainer.step

  def log_prob(self, x):
    return self.trainer.log_prob(x).numpy()

  def sample(self, n, temperature, seed):
    return self.trainer.sample(n, temperature, seed)


def main(argv=None):
  args = parse_args(argv)
  config = runs.read_json(os.path.join(args.run_dir, 'config.json'))
  if config is None:
    raise SystemExit(f'{args.run_dir}/config.json not found: is this the '
                     f'--output-dir of examples/train_mnist.py?')
  out = args.output_dir or os.path.join(args.run_dir, 'eval')
  os.makedirs(out, exist_ok=True)
  shape = tuple(config['image_shape'])
  levels = config['num_levels']

  if args.saved_model:
    source = _SavedModelSource(os.path.join(args.run_dir, 'saved_model'))
    loaded = dict(saved_model=source.path)
  else:
    path = args.checkpoint or tf.train.latest_checkpoint(
        os.path.join(args.run_dir, 'checkpoints'))
    if path is None:
      raise SystemExit(f'no checkpoint in {args.run_dir}/checkpoints')
    source = _CheckpointSource(config, path)
    loaded = dict(checkpoint=path, step=source.step)
  print(f'loaded {loaded}', flush=True)

  test = load_test_images(config, args.data_dir)[:args.max_test_examples]
  batches = image_pipeline(test, levels, min(args.batch_size, len(test)),
                           training=False, seed=runs.EVAL_SEED,
                           drop_remainder=False)
  log_probs = np.concatenate([source.log_prob(x) for x in batches])
  test_bpd = float(bits_per_dim(np.mean(log_probs.astype(np.float64)), shape,
                                levels))
  print(f'test bits/dim on {len(test)} {config["dataset"]} images: '
        f'{test_bpd:.4f}', flush=True)

  sample_paths = {}
  for t in args.temperatures:
    x = source.sample(args.num_samples, t, args.seed)
    path = os.path.join(out, f'samples_T{t:g}.png')
    viz.image_grid(x, title=f'{config["dataset"]}, T = {t:g}', path=path)
    sample_paths[f'{t:g}'] = os.path.relpath(path, args.run_dir)
  per_row = 8
  rows = [source.sample(per_row, t, args.seed) for t in args.temperatures]
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
  main()
  sys.exit(0)
