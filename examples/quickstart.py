"""Train a small Real NVP on real images, then report test bits/dim and samples.

    python examples/quickstart.py --output-dir runs/quickstart

Uses Fashion-MNIST from Debian's `dataset-fashion-mnist` when it is installed
(/usr/share/datasets/fashion-mnist), else scikit-learn's 8x8 digits, and says
which. Writes `samples.png` (temperature 1 and 0.7) and `metrics.json`.
"""

import argparse
import json
import os
import time

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp import RealNVPChain, bits_per_dim
from tfp_realnvp import viz
from tfp_realnvp.data import image_pipeline, load_images

tfd = tfp.distributions


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--output-dir', default='runs/quickstart')
  parser.add_argument('--steps', type=int, default=600)
  parser.add_argument('--batch-size', type=int, default=64)
  parser.add_argument('--image-size', type=int, default=16,
                      help='resize Fashion-MNIST to this size (0: keep 28)')
  parser.add_argument('--hidden-channels', type=int, default=16)
  parser.add_argument('--num-res-blocks', type=int, default=2)
  parser.add_argument('--test-examples', type=int, default=2000,
                      help='test images scored for the reported bits/dim')
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  keras.utils.set_random_seed(args.seed)
  os.makedirs(args.output_dir, exist_ok=True)

  try:
    size = (args.image_size,) * 2 if args.image_size else None
    data = load_images('fashion_mnist', image_size=size)
  except (RuntimeError, OSError, ValueError) as error:
    print(f'Fashion-MNIST unavailable ({error}); using scikit-learn digits.')
    data = load_images('digits')
  shape = data.train.shape[1:]
  print(f'dataset: {data.name} from {data.source}, images {shape}, '
        f'{len(data.train)} train / {len(data.test)} test')

  flow = RealNVPChain(shape, num_scales=2, hidden_channels=args.hidden_channels,
                      num_res_blocks=args.num_res_blocks)
  dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), shape),
                                     flow)
  variables = dist.trainable_variables
  optimizer = keras.optimizers.Adam(1e-3)
  optimizer.build(variables)

  @tf.function
  def train_step(x):
    with tf.GradientTape() as tape:
      nll = -tf.reduce_mean(dist.log_prob(x, bijector_kwargs={'training':
                                                               True}))
      loss = nll + 5e-5 * tf.add_n([tf.reduce_sum(tf.square(v))
                                    for v in flow.l2_regularized_variables])
    grads, _ = tf.clip_by_global_norm(tape.gradient(loss, variables), 100.)
    optimizer.apply_gradients(zip(grads, variables))
    return bits_per_dim(-nll, shape, data.num_levels)

  @tf.function
  def test_log_prob(x):
    return dist.log_prob(x)

  def test_bits_per_dim():
    batches = image_pipeline(data.test[:args.test_examples], data.num_levels,
                             500, training=False,
                             seed=1, drop_remainder=False)
    log_probs = tf.concat([test_log_prob(x) for x in batches], 0)
    return float(tf.reduce_mean(bits_per_dim(log_probs, shape,
                                             data.num_levels)))

  batches = iter(image_pipeline(data.train, data.num_levels, args.batch_size,
                                seed=args.seed))
  start = time.time()
  for step in range(1, args.steps + 1):
    train_bpd = float(train_step(next(batches)))
    if step % 100 == 0 or step == args.steps:
      print(f'step {step}: train bits/dim {train_bpd:.3f} '
            f'({time.time() - start:.0f} s)', flush=True)
  seconds = time.time() - start
  test_bpd = test_bits_per_dim()
  print(f'test bits/dim: {test_bpd:.3f} (uniform: '
        f'{bits_per_dim(0., shape, data.num_levels).numpy():.2f})')

  figure = viz.temperature_sweep(flow, shape, temperatures=(0.7, 1.0),
                                 num_per_row=8, seed=args.seed)
  figure.savefig(os.path.join(args.output_dir, 'samples.png'))
  metrics = dict(dataset=data.name, source=data.source, image_shape=shape,
                 steps=args.steps, batch_size=args.batch_size,
                 train_seconds=round(seconds, 1),
                 images_per_second=round(args.steps * args.batch_size / seconds,
                                         1),
                 final_train_bits_per_dim=train_bpd,
                 test_bits_per_dim=test_bpd)
  with open(os.path.join(args.output_dir, 'metrics.json'), 'w') as f:
    json.dump(metrics, f, indent=2)
  print(f'wrote {args.output_dir}/samples.png and metrics.json')


if __name__ == '__main__':
  main()
