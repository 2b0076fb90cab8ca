"""Train a small Real NVP on real images, then report test bits/dim and samples.

    python examples/quickstart.py --output-dir runs/quickstart

Fashion-MNIST from Debian's `dataset-fashion-mnist` when it is installed
(/usr/share/datasets/fashion-mnist), else scikit-learn's 8x8 digits, and it says which.
The loop is the bare one-device step of the paper's recipe
(`tfp_realnvp.train.maximum_likelihood_step`: Adam 1e-3, L2 5e-5 on the s-scales,
gradient clipping at 100); `examples/train_mnist.py` is the full job (checkpoints,
validation, several devices). Writes `samples.png` (temperature 0.7 and 1) and
`metrics.json` to `--output-dir`.
"""

import argparse
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tfp_realnvp import bits_per_dim
from tfp_realnvp import viz
from tfp_realnvp.cli import common
from tfp_realnvp.data import image_pipeline
from tfp_realnvp.train import recipe
from tfp_realnvp.train import runs


def build_parser():
  parser = argparse.ArgumentParser(prog='quickstart', description=__doc__.splitlines()[0])
  parser.add_argument('--steps', type=common.positive_int, default=600)
  parser.add_argument('--batch-size', type=common.positive_int, default=recipe.BATCH_SIZE)
  parser.add_argument('--image-size', type=common.count, default=16,
                      help='resize Fashion-MNIST to this size (0: keep 28)')
  parser.add_argument('--hidden-channels', type=common.positive_int, default=16)
  parser.add_argument('--num-res-blocks', type=common.count, default=2)
  parser.add_argument('--max-test-examples', type=common.positive_int, default=2000,
                      help='test images scored for the reported bits/dim')
  parser.add_argument('--seed', type=common.count, default=0)
  common.add_common_flags(parser, os.path.join('runs', 'quickstart'))
  return parser


def _quickstart(args):
  keras.utils.set_random_seed(args.seed)
  size = (args.image_size,) * 2 if args.image_size else None
  data = runs.load_dataset('fashion_mnist', image_size=size, log=print)
  shape = data.image_shape
  print(f'dataset: {data.name} from {data.source}, images {shape}, '
        f'{len(data.train)} train / {len(data.test)} test')
  os.makedirs(args.output_dir, exist_ok=True)

  flow = recipe.make_flow(shape, num_scales=2, hidden_channels=args.hidden_channels,
                          num_res_blocks=args.num_res_blocks)
  dist = recipe.make_distribution(flow, shape)
  step = recipe.maximum_likelihood_step(dist, keras.optimizers.Adam(recipe.LEARNING_RATE),
                                        l2_variables=flow.l2_regularized_variables)
  log_prob = tf.function(dist.log_prob)

  batches = iter(image_pipeline(data.train, data.num_levels, args.batch_size,
                                seed=args.seed))
  start = time.time()
  for number in range(1, args.steps + 1):
    nll = float(step(next(batches)))
    if number % 100 == 0 or number == args.steps:
      print(f'step {number}: train bits/dim '
            f'{float(bits_per_dim(-nll, shape, data.num_levels)):.3f} '
            f'({time.time() - start:.0f} s)', flush=True)
  seconds = time.time() - start
  test = image_pipeline(data.test[:args.max_test_examples], data.num_levels, 500,
                        training=False, seed=runs.EVAL_SEED, drop_remainder=False)
  test_log_prob = np.concatenate([log_prob(x).numpy() for x in test])
  test_bpd = float(bits_per_dim(np.mean(test_log_prob.astype(np.float64)), shape,
                                data.num_levels))
  print(f'test bits/dim: {test_bpd:.3f} (uniform: '
        f'{float(bits_per_dim(0., shape, data.num_levels)):.2f})')

  figure = viz.temperature_sweep(flow, shape, temperatures=(0.7, 1.0), num_per_row=8,
                                 seed=args.seed)
  figure.savefig(os.path.join(args.output_dir, 'samples.png'))
  runs.write_json(os.path.join(args.output_dir, 'metrics.json'), dict(
      dataset=data.name, source=data.source, image_shape=list(shape), steps=args.steps,
      batch_size=args.batch_size, train_seconds=round(seconds, 1),
      images_per_second=round(args.steps * args.batch_size / seconds, 1),
      final_train_bits_per_dim=float(bits_per_dim(-nll, shape, data.num_levels)),
      test_bits_per_dim=test_bpd, num_test_examples=len(test_log_prob)))
  print(f'wrote {args.output_dir}/samples.png and metrics.json')
  return common.EXIT_OK


def main(argv=None):
  return common.run_main('quickstart', build_parser(), _quickstart, argv,
                         expected=(OSError, RuntimeError, ValueError))


if __name__ == '__main__':
  sys.exit(main())
