"""Fits a vector Real NVP to each 2-D toy density and compares it with a Gaussian.

For every toy of `tfp_realnvp.data.TOY_2D_NAMES` (moons, circles, blobs,
checkerboard, 8gaussians, spirals) this

1. draws independent train and test sets from `make_toy_2d` (different seeds),
2. trains `RealNVPChain(event_shape=(2,))` (alternating 1-D masks, MLP s/t,
   Glow's ActNorm and learned 2x2 mixing around each coupling; `--batch-norm`
   for the paper's invertible batch norm instead) by maximum likelihood,
3. fits a full-covariance Gaussian to the same training set (closed form:
   sample mean and covariance),
4. reports both held-out mean log-likelihoods (nats per point, higher is
   better) and writes one figure per toy, as Keng's post on Real NVP does
   (Brian Keng, "Normalizing Flows with Real NVP", 2022,
   https://bjlkeng.io/posts/normalizing-flows-with-real-nvp/): the data,
   samples of the flow and its density as a heat map.

Outputs in `--out` (default `runs/train_2d`): `<toy>.png`, `results.json` and
`results.md` (the table that is also printed).

```
python examples/train_2d.py                       # every toy, full settings
python examples/train_2d.py --quick               # one to two minutes on 2 CPU cores
python examples/train_2d.py --datasets moons,spirals --steps 2000 --seed 1
```

The data are standardised by `make_toy_2d` (fixed constants per toy), so the
numbers are log-densities of the standardised points; a standard normal would
score about -2.84 on data of unit variance.
"""

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras  # pylint: disable=g-import-not-at-top
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp import RealNVPChain
from tfp_realnvp import viz
from tfp_realnvp.data import TOY_2D_NAMES
from tfp_realnvp.data import make_toy_2d
from tfp_realnvp.data import toy_pipeline
from tfp_realnvp.train import maximum_likelihood_step

tfd = tfp.distributions

# Full settings, and what --quick replaces them with.
DEFAULTS = dict(steps=5000, batch_size=256, num_train=20000, num_test=20000,
                num_couplings=8, hidden_units='128,128', learning_rate=2e-3,
                resolution=200)
QUICK = dict(steps=400, batch_size=256, num_train=5000, num_test=5000,
             num_couplings=6, hidden_units='64,64', learning_rate=5e-3,
             resolution=80)
L2_SCALE = 5e-5       # the paper's L2 on the couplings' s-scale vectors
CLIP_NORM = 100.      # global gradient-norm clipping
EVAL_BATCH = 4096


def parse_args(argv=None):
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--datasets', default='all',
                      help=f'comma-separated toys, or "all" ({",".join(TOY_2D_NAMES)})')
  parser.add_argument('--steps', type=int, default=None,
                      help=f'training steps per toy (default {DEFAULTS["steps"]}, '
                      f'quick {QUICK["steps"]})')
  parser.add_argument('--seed', type=int, default=0,
                      help='seed of data, masks, weights and batches')
  parser.add_argument('--output-dir', '--out', dest='out',
                      default=os.path.join('runs', 'train_2d'),
                      help='output directory (figures, results.json, results.md)')
  parser.add_argument('--quick', action='store_true',
                      help='small settings: fewer steps and points, smaller nets')
  parser.add_argument('--batch-size', type=int, default=None)
  parser.add_argument('--num-train', type=int, default=None,
                      help='training points per toy')
  parser.add_argument('--num-test', type=int, default=None,
                      help='held-out points per toy')
  parser.add_argument('--num-couplings', type=int, default=None)
  parser.add_argument('--hidden-units', default=None,
                      help='hidden widths of the s/t MLPs, e.g. 128,128')
  parser.add_argument('--learning-rate', type=float, default=None,
                      help='Adam learning rate (cosine-decayed to 5%% of it)')
  parser.add_argument('--vector-masks', choices=('half', 'random'), default='half')
  parser.add_argument('--batch-norm', action='store_true',
                      help="the paper's invertible batch norm after each coupling "
                           "instead of Glow's ActNorm and 1x1 mixing")
  parser.add_argument('--batch-norm-momentum', type=float, default=0.95,
                      help='momentum of the batch norms\' running averages')
  parser.add_argument('--resolution', type=int, default=None,
                      help='heat-map cells per axis')
  args = parser.parse_args(argv)
  preset = QUICK if args.quick else DEFAULTS
  for key, value in preset.items():
    if getattr(args, key) is None:
      setattr(args, key, value)
  if args.datasets == 'all':
    args.datasets = list(TOY_2D_NAMES)
  else:
    args.datasets = [d.strip() for d in args.datasets.split(',') if d.strip()]
    unknown = [d for d in args.datasets if d not in TOY_2D_NAMES]
    if unknown:
      parser.error(f'unknown toy(s) {unknown}; choose from {", ".join(TOY_2D_NAMES)}')
  args.hidden_units = tuple(int(h) for h in str(args.hidden_units).split(',') if h)
  for key in ('steps', 'batch_size', 'num_train', 'num_test', 'num_couplings'):
    if getattr(args, key) < 1:
      parser.error(f'--{key.replace("_", "-")} must be >= 1')
  return args


# ----------------------------------------------------------------------------- models

def gaussian_fit(train):
  """The maximum-likelihood full-covariance Gaussian of `train` (N, D)."""
  train = np.asarray(train, np.float64)
  mean = train.mean(axis=0)
  cov = np.cov(train, rowvar=False, bias=True)
  return mean, cov


def gaussian_log_prob(points, mean, cov):
  """log N(points; mean, cov) per row, in float64 numpy."""
  points = np.asarray(points, np.float64)
  dim = points.shape[1]
  chol = np.linalg.cholesky(cov)
  white = np.linalg.solve(chol, (points - mean).T)
  return (-0.5 * np.sum(white ** 2, axis=0) - np.sum(np.log(np.diag(chol)))
          - 0.5 * dim * math.log(2 * math.pi))


def build_flow_distribution(args, dim=2):
  flow = RealNVPChain(event_shape=(dim,), num_couplings=args.num_couplings,
                      hidden_units=args.hidden_units,
                      vector_masks=args.vector_masks, mask_seed=args.seed,
                      batch_norm=args.batch_norm,
                      batch_norm_momentum=args.batch_norm_momentum)
  base = tfd.Sample(tfd.Normal(0., 1.), [dim])
  return flow, tfd.TransformedDistribution(base, flow)


def train_flow(flow, dist, train, args, log_every=0):
  """Maximum likelihood with Adam, cosine decay, L2 on the s-scales, clipping."""
  schedule = keras.optimizers.schedules.CosineDecay(
      args.learning_rate, decay_steps=args.steps, alpha=0.05)
  step = maximum_likelihood_step(
      dist, keras.optimizers.Adam(schedule),
      l2_variables=flow.l2_regularized_variables, l2_scale=L2_SCALE,
      clip_norm=CLIP_NORM)

  batches = iter(toy_pipeline(train, args.batch_size, seed=args.seed))
  history = []
  for i in range(args.steps):
    nll = float(step(next(batches)))
    history.append(nll)
    if not math.isfinite(nll):
      raise FloatingPointError(f'training NLL became {nll} at step {i}')
    if log_every and (i + 1) % log_every == 0:
      print(f'    step {i + 1:5d}  train nll {np.mean(history[-log_every:]):.4f}',
            flush=True)
  return history


def flow_log_prob_fn(dist):
  """A numpy (N, 2) -> (N,) log-density in inference mode, evaluated in batches."""
  @tf.function(reduce_retracing=True)
  def log_prob(x):
    return dist.log_prob(x)

  def fn(points):
    points = np.asarray(points, np.float32)
    out = [log_prob(tf.constant(points[i:i + EVAL_BATCH])).numpy()
           for i in range(0, len(points), EVAL_BATCH)]
    return np.concatenate(out) if out else np.zeros([0], np.float32)
  return fn


# ----------------------------------------------------------------------------- one toy

def fit_toy(name, args, log_every=0):
  """Trains and evaluates one toy; returns a dict of results (and writes its figure)."""
  keras.utils.set_random_seed(args.seed)
  train = make_toy_2d(name, args.num_train, seed=args.seed)
  test = make_toy_2d(name, args.num_test, seed=args.seed + 10_000)

  mean, cov = gaussian_fit(train)
  gauss_test = gaussian_log_prob(test, mean, cov)

  flow, dist = build_flow_distribution(args)
  start = time.time()
  history = train_flow(flow, dist, train, args, log_every=log_every)
  seconds = time.time() - start

  log_prob = flow_log_prob_fn(dist)
  flow_test = log_prob(test).astype(np.float64)
  flow_train = log_prob(train).astype(np.float64)
  samples = np.asarray(dist.sample(2000, seed=args.seed + 1))
  num_finite = int(np.isfinite(flow_test).sum())
  result = dict(
      dataset=name,
      flow_test_log_lik=float(np.mean(flow_test)),
      flow_test_log_lik_sem=float(np.std(flow_test) / math.sqrt(len(flow_test))),
      flow_train_log_lik=float(np.mean(flow_train)),
      gaussian_test_log_lik=float(np.mean(gauss_test)),
      gaussian_train_log_lik=float(np.mean(gaussian_log_prob(train, mean, cov))),
      finite_fraction=num_finite / len(flow_test),
      final_train_nll=float(np.mean(history[-min(50, len(history)):])),
      train_seconds=round(seconds, 1),
  )
  result['flow_minus_gaussian'] = (result['flow_test_log_lik']
                                   - result['gaussian_test_log_lik'])
  path = os.path.join(args.out, f'{name}.png')
  viz.toy_figure(
      train[:2000], samples, log_prob,
      title=(f'{name}: held-out log-lik flow {result["flow_test_log_lik"]:.3f}, '
             f'full-cov. Gaussian {result["gaussian_test_log_lik"]:.3f} nats'),
      path=path, resolution=args.resolution)
  result['figure'] = path
  return result


def markdown_table(results):
  lines = ['| dataset | flow held-out log-lik | full-cov. Gaussian held-out log-lik | '
           'flow - Gaussian |',
           '|---|---:|---:|---:|']
  for r in results:
    lines.append(f'| {r["dataset"]} | {r["flow_test_log_lik"]:.3f} '
                 f'(± {r["flow_test_log_lik_sem"]:.3f}) | '
                 f'{r["gaussian_test_log_lik"]:.3f} | {r["flow_minus_gaussian"]:+.3f} |')
  return '\n'.join(lines)


def main(argv=None):
  args = parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  settings = {k: v for k, v in vars(args).items()}
  print(f'settings: {settings}', flush=True)
  results = []
  for name in args.datasets:
    print(f'{name}:', flush=True)
    result = fit_toy(name, args, log_every=0 if args.quick else 1000)
    print(f'  flow {result["flow_test_log_lik"]:.3f}  gaussian '
          f'{result["gaussian_test_log_lik"]:.3f}  ({result["train_seconds"]} s)',
          flush=True)
    results.append(result)
  table = markdown_table(results)
  header = (f'Held-out mean log-likelihood, nats per point (higher is better); '
            f'{args.num_train} train / {args.num_test} test points per toy, '
            f'{args.steps} steps, seed {args.seed}.\n\n')
  with open(os.path.join(args.out, 'results.md'), 'w') as f:
    f.write(header + table + '\n')
  with open(os.path.join(args.out, 'results.json'), 'w') as f:
    json.dump(dict(settings=settings, results=results), f, indent=2)
  print()
  print(table)
  return results


if __name__ == '__main__':
  main(sys.argv[1:])
