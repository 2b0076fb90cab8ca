"""Quality in a budget: held-out bits/dim after a fixed wall-clock training time.

  python benchmarks/quality.py                       # digits and Fashion-MNIST
  python benchmarks/quality.py --budget 600 --datasets fashion_mnist

For each dataset, trains `RealNVPChain` with the paper's recipe (Adam 1e-3,
L2 5e-5 on the couplings' scale vectors, gradient-norm clipping, batch 64,
uniform dequantization) for `--budget` seconds of training wall time, and
evaluates held-out bits/dim (inference mode, fixed dequantization noise) at
`--evals` evenly spaced times. Evaluation time is not counted in the budget;
the first step (tracing and graph optimisation) is not either, and is
reported apart. Output: the curve of test bits/dim against training seconds,
in `benchmarks/results/quality.json` and `latest.md`.

Data: scikit-learn's `load_digits` (8x8, 17 grey levels, 1500 train / 297
test) and Fashion-MNIST from Debian's `dataset-fashion-mnist` (28x28, 256
levels, 60000 / 10000), through `tfp_realnvp.data` (or a fallback reader of
the same sources when that module is missing).
"""

import argparse
import gzip
import math
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import configs  # pylint: disable=wrong-import-position
from benchkit import environment  # pylint: disable=wrong-import-position
from benchkit import models  # pylint: disable=wrong-import-position
from benchkit import results as results_io  # pylint: disable=wrong-import-position

MODELS = {
    'digits': dict(event_shape=(8, 8, 1), num_scales=2, hidden_channels=32,
                   num_res_blocks=2, batch_size=64),
    'fashion_mnist': dict(configs.CONFIGS['mnist-small']),
}
FASHION_DIR = '/usr/share/datasets/fashion-mnist'


def load(name):
  """(train uint8 NHWC, test uint8 NHWC, num_levels)."""
  try:
    from tfp_realnvp import data  # pylint: disable=g-import-not-at-top
    images = data.load_images(name)
    return images.train, images.test, images.num_levels
  except ImportError:
    pass
  import numpy as np  # pylint: disable=g-import-not-at-top
  if name == 'digits':
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
    images = datasets.load_digits().images.astype(np.uint8)[..., None]
    return images[:1500], images[1500:], 17

  def idx(filename):
    with gzip.open(os.path.join(FASHION_DIR, filename)) as f:
      raw = f.read()
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28, 1)

  return (idx('train-images-idx3-ubyte.gz'), idx('t10k-images-idx3-ubyte.gz'),
          256)


def batches(images, num_levels, batch_size, seed, training):
  """An endless (training) or one-pass iterator of dequantized float batches."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  try:
    from tfp_realnvp import data  # pylint: disable=g-import-not-at-top
    dataset = data.image_pipeline(images, num_levels, batch_size,
                                  training=training, seed=seed,
                                  drop_remainder=training)
    return iter(dataset)
  except ImportError:
    pass
  rng = np.random.default_rng(seed)

  def gen():
    while True:
      order = rng.permutation(len(images)) if training else np.arange(
          len(images))
      for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        if training and len(idx) < batch_size:
          break
        noise = rng.uniform(size=images[idx].shape).astype(np.float32)
        yield (images[idx].astype(np.float32) + noise) / num_levels
      if not training:
        return
  return gen()


def run_dataset(name, args):
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  tf, tfp = environment.tf_modules()
  from tfp_realnvp import RealNVPChain  # pylint: disable=g-import-not-at-top
  from tfp_realnvp import bits_per_dim  # pylint: disable=g-import-not-at-top
  cfg = dict(MODELS[name])
  if args.batch_size:
    cfg['batch_size'] = args.batch_size
  train, test, num_levels = load(name)
  if args.eval_examples and name != 'digits':
    test = test[:args.eval_examples]
  keras.utils.set_random_seed(args.seed)
  flow = RealNVPChain(cfg['event_shape'], num_scales=cfg['num_scales'],
                      hidden_channels=cfg['hidden_channels'],
                      num_res_blocks=cfg['num_res_blocks'],
                      network_dtype=(None if args.precision == 'float32'
                                     else args.precision))
  dist = tfp.distributions.TransformedDistribution(
      tfp.distributions.Sample(tfp.distributions.Normal(0., 1.),
                               cfg['event_shape']), flow)
  variables = list(dist.trainable_variables)
  l2_vars = list(flow.l2_regularized_variables)
  optimizer = keras.optimizers.Adam(args.learning_rate)
  optimizer.build(variables)
  dims = float(np.prod(cfg['event_shape']))

  def train_step(x):
    with tf.GradientTape() as tape:
      nll = -tf.reduce_mean(dist.log_prob(x, bijector_kwargs={'training': True}))
      loss = nll + args.l2 * tf.add_n([tf.reduce_sum(tf.square(v))
                                       for v in l2_vars])
    grads = tape.gradient(loss, variables)
    grads, _ = tf.clip_by_global_norm(grads, args.clip_norm)
    optimizer.apply_gradients(zip(grads, variables))
    return nll

  train_step = tf.function(train_step, jit_compile=(args.mode == 'xla'))
  eval_log_prob = tf.function(
      lambda x: dist.log_prob(x),
      input_signature=[tf.TensorSpec((None,) + cfg['event_shape'], tf.float32)])

  def evaluate():
    total, count = 0., 0
    for x in batches(test, num_levels, args.eval_batch_size, seed=123,
                     training=False):
      bpd = bits_per_dim(eval_log_prob(x), cfg['event_shape'], num_levels)
      total += float(tf.reduce_sum(bpd))
      count += int(bpd.shape[0])
    return total / count

  stream = batches(train, num_levels, cfg['batch_size'], seed=args.seed,
                   training=True)
  start = time.perf_counter()
  first_nll = float(train_step(next(stream)))
  first_step_s = time.perf_counter() - start
  eval_start = time.perf_counter()
  curve = [dict(step=1, images=cfg['batch_size'], train_seconds=0.,
                test_bpd=evaluate(),
                train_bpd=(first_nll / dims + math.log(num_levels)) / math.log(2))]
  first_eval_s = time.perf_counter() - eval_start
  print(f'  {name}: first step {first_step_s:.1f} s (trace), eval '
        f'{first_eval_s:.1f} s, test bpd at start {curve[0]["test_bpd"]:.3f}',
        flush=True)
  marks = [args.budget * (i + 1) / args.evals for i in range(args.evals)]
  trained, steps, recent = 0., 1, []
  cpu_trained = 0.
  for mark in marks:
    while trained < mark:
      x = next(stream)
      t0, c0 = time.perf_counter(), time.process_time()
      recent.append(train_step(x))  # Read back only at evaluations.
      trained += time.perf_counter() - t0
      cpu_trained += time.process_time() - c0
      steps += 1
    recent = [float(v) for v in recent[-20:]]
    train_bpd = (float(np.mean(recent)) / dims + math.log(num_levels)
                 ) / math.log(2)
    point = dict(step=steps, images=steps * cfg['batch_size'],
                 train_seconds=trained, train_cpu_seconds=cpu_trained,
                 test_bpd=evaluate(), train_bpd=train_bpd)
    curve.append(point)
    print(f'  {name}: {trained:6.1f} s, step {steps}, train bpd '
          f'{train_bpd:.3f}, test bpd {point["test_bpd"]:.3f}', flush=True)
  return dict(
      dataset=name, event_shape=list(cfg['event_shape']), num_levels=num_levels,
      num_train=int(len(train)), num_test=int(len(test)),
      model=dict(cfg, event_shape=list(cfg['event_shape'])),
      model_text=(f'{cfg["num_scales"]} scales, {cfg["hidden_channels"]} ch, '
                  f'{cfg["num_res_blocks"]} blocks, '
                  f'{models.count_params(variables) / 1e6:.2f}M params'),
      mode=args.mode, precision=args.precision, batch_size=cfg['batch_size'],
      first_step_seconds=first_step_s, curve=curve,
      recipe=dict(optimizer='Adam', learning_rate=args.learning_rate,
                  l2_on_scales=args.l2, clip_global_norm=args.clip_norm))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--datasets', default='digits,fashion_mnist')
  parser.add_argument('--budget', type=float, default=60.,
                      help='training seconds per dataset (default 60)')
  parser.add_argument('--evals', type=int, default=4,
                      help='evaluations spread over the budget')
  parser.add_argument('--eval-examples', type=int, default=1000,
                      help='test images of Fashion-MNIST (0: all 10000)')
  parser.add_argument('--eval-batch-size', type=int, default=500)
  parser.add_argument('--batch-size', type=int)
  parser.add_argument('--mode', default='graph', choices=configs.MODES)
  parser.add_argument('--precision', default='float32',
                      choices=configs.PRECISIONS)
  parser.add_argument('--learning-rate', type=float, default=1e-3)
  parser.add_argument('--l2', type=float, default=5e-5)
  parser.add_argument('--clip-norm', type=float, default=100.)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--onednn', choices=('default', 'on', 'off'),
                      default='default')
  parser.add_argument('--tag', default='')
  args = parser.parse_args(argv)
  environment.setup_environment(args.onednn)
  runs = []
  for name in args.datasets.split(','):
    print(f'{name}: training for {args.budget:.0f} s', flush=True)
    try:
      runs.append(run_dataset(name, args))
    except Exception as e:  # pylint: disable=broad-except
      traceback.print_exc()
      runs.append(dict(dataset=name, error=f'{type(e).__name__}: {e}'[:300]))
  results = dict(script='quality.py', argv=sys.argv[1:],
                 machine=environment.machine_info(), budget_seconds=args.budget,
                 runs=runs)
  name = f'quality{"-" + args.tag if args.tag else ""}.json'
  print('wrote', results_io.write_json(name, results))
  import report  # pylint: disable=g-import-not-at-top
  print(report.quality_table(results))
  report.write_latest()


if __name__ == '__main__':
  main()
