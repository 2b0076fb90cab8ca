"""A class-conditional Real NVP as a generative classifier on scikit-learn's digits.

  python benchmarks/conditional/digits_classifier.py                 # both priors
  python benchmarks/conditional/digits_classifier.py --prior learned --steps 3000

Trains `RealNVPChain((8, 8, 1), num_classes=10)` by maximum likelihood of `p(x | y)` on
the package's digits split (`tfp_realnvp.data.load_images('digits')`: the first 1500 of
scikit-learn's 1797 images for training, the other 297 for testing; labels from
`sklearn.datasets.load_digits().target` in the same order), then classifies the test
images by Bayes' rule, `argmax_y log p(x | y) + log p(y)`, with `p(y)` the class
frequencies of the training labels (`tfp_realnvp.classifier`).

The recipe (every flag below): Adam with a cosine decay of the learning rate, the paper's
L2 penalty (5e-5) on the couplings' scale vectors, gradient-norm clipping at 100, batch
64, uniform dequantization `(k + u) / 17` drawn afresh for every batch; a validation split
(`--val-size` images, stratified, carved from the 1500 training images) picks the
evaluation with the best validation accuracy (ties: lower validation bits/dim) among
`--evals` evenly spaced ones (early stopping); Polyak averaging (an exponential moving
average of the weights, `--ema`) gives the weights that are evaluated; the test
log-likelihoods average `p(x | y)` over `--eval-samples` dequantization draws
(`log mean_s p((k + u_s) / 17 | y)`, a tighter estimate of the discrete probability).

Baselines on the same split, printed beside the flow (scikit-learn on the raw 64 pixel
values): QDA (a full-covariance Gaussian per class, `reg_param` 0.05 picked on the same
validation split) and a 4-component Gaussian mixture per class.

`--prior both` (the default) trains two flows in one process, with and without Glow's
learned class-conditional prior (`class_conditional_prior`), on the same data, noise and
seeds. The test bits/dim are those of `log p(x | true label)` with `num_levels=17`
(`tfp_realnvp.bits_per_dim`). Output: a markdown table, and `--json PATH`.

#### References
[1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
     ICLR 2017. https://arxiv.org/abs/1605.08803
[2]: Diederik P. Kingma, Prafulla Dhariwal. Glow: Generative Flow with Invertible 1x1
     Convolutions. NeurIPS 2018. https://arxiv.org/abs/1807.03039
[3]: Boris T. Polyak, Anatoli B. Juditsky. Acceleration of Stochastic Approximation by
     Averaging. SIAM J. Control Optim., 30(4), 1992. https://doi.org/10.1137/0330046
"""

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_DIR not in sys.path:
  sys.path.insert(0, REPO_DIR)

import keras  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp import RealNVPChain  # pylint: disable=wrong-import-position
from tfp_realnvp import bits_per_dim
from tfp_realnvp.bijectors import FlowSequence
from tfp_realnvp.bijectors import LogitTransform
from tfp_realnvp.classifier import GenerativeClassifier
from tfp_realnvp.classifier import accuracy
from tfp_realnvp.classifier import class_frequencies
from tfp_realnvp.data import dequantize
from tfp_realnvp.data import load_images

tfd = tfp.distributions

NUM_CLASSES = 10
L2_SCALE = 5e-5
CLIP_NORM = 100.


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--prior', choices=('both', 'learned', 'standard'), default='both',
                      help="learned: Glow's class-conditional prior "
                           '(class_conditional_prior=True); standard: N(0, I) for every class')
  parser.add_argument('--architecture', choices=('image', 'vector'), default='image',
                      help='image: the multi-scale flow on 8x8x1; vector: couplings with MLPs '
                           'on the 64 pixels, after the logit preprocessing')
  parser.add_argument('--num-scales', type=int, default=2)
  parser.add_argument('--hidden-channels', type=int, default=16)
  parser.add_argument('--num-res-blocks', type=int, default=1)
  parser.add_argument('--num-couplings', type=int, default=8, help='vector flows')
  parser.add_argument('--hidden-units', default='256,256', help='vector flows')
  parser.add_argument('--shift', type=float, default=0.5,
                      help='probability of moving a training image by one pixel (random '
                           'direction, zero fill)')
  parser.add_argument('--select', choices=('bits_per_dim', 'accuracy'), default='bits_per_dim',
                      help='the validation figure that picks the evaluated weights')
  parser.add_argument('--steps', type=int, default=1500)
  parser.add_argument('--batch-size', type=int, default=64)
  parser.add_argument('--lr', type=float, default=1e-3, help='peak learning rate')
  parser.add_argument('--final-lr-fraction', type=float, default=0.05,
                      help='the cosine decay ends at this fraction of --lr')
  parser.add_argument('--weight-decay', type=float, default=0.,
                      help="AdamW's decoupled weight decay (0: Adam)")
  parser.add_argument('--ema', type=float, default=0.999,
                      help='decay of the moving average of the weights (0: none)')
  parser.add_argument('--val-size', type=int, default=200,
                      help='training images kept aside for early stopping (0: none)')
  parser.add_argument('--evals', type=int, default=6,
                      help='evaluations on the validation split during training')
  parser.add_argument('--eval-samples', type=int, default=4,
                      help='dequantization draws averaged per test image')
  parser.add_argument('--seeds', type=int, nargs='+', default=[0],
                      help='one run per seed (split, initialisation, noise); the '
                           'table gives the mean and standard deviation')
  parser.add_argument('--json', default=None, help='write the results here')
  parser.add_argument('--no-baselines', action='store_true')
  args = parser.parse_args(argv)
  args.hidden_units = tuple(int(h) for h in str(args.hidden_units).split(',') if h)
  return args


def load_digits_with_labels():
  """(train images, train labels, test images, test labels, num_levels)."""
  data = load_images('digits')
  train_labels = getattr(data, 'train_labels', None)
  test_labels = getattr(data, 'test_labels', None)
  if train_labels is None or test_labels is None:
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
    target = datasets.load_digits().target
    train_labels, test_labels = target[:len(data.train)], target[len(data.train):]
  return (data.train, np.asarray(train_labels, np.int64), data.test,
          np.asarray(test_labels, np.int64), data.num_levels)


def stratified_split(labels, val_size, seed):
  """Indices (train, validation), `val_size` validation images spread over the classes."""
  rng = np.random.default_rng(seed)
  val = []
  for k in range(NUM_CLASSES):
    members = rng.permutation(np.nonzero(labels == k)[0])
    val.extend(members[:round(val_size * len(members) / len(labels))])
  val = np.sort(np.array(val, np.int64))
  train = np.setdiff1d(np.arange(len(labels)), val)
  return train, val


class Ema:
  """An exponential moving average of variables, swapped in for evaluation.

  The decay at update `t` is `min(decay, (1 + t) / (10 + t))` (as in
  `tf.compat.v1.train.ExponentialMovingAverage` with `num_updates`), so that the average
  forgets the initial weights quickly at the start of training.
  """

  def __init__(self, variables, decay):
    self._variables = list(variables)
    self._decay = decay
    self._updates = 0
    self._shadow = [tf.Variable(v, trainable=False) for v in self._variables]

  def update(self):
    self._updates += 1
    self._assign(tf.constant(min(self._decay, (1. + self._updates) / (10. + self._updates))))

  @tf.function
  def _assign(self, decay):
    for shadow, v in zip(self._shadow, self._variables):
      shadow.assign(decay * shadow + (1. - decay) * v)

  def swapped(self):
    ema = self

    class _Swap:
      def __enter__(self):
        self.saved = [v.numpy() for v in ema._variables]
        for shadow, v in zip(ema._shadow, ema._variables):
          v.assign(shadow)

      def __exit__(self, *exc):
        for saved, v in zip(self.saved, ema._variables):
          v.assign(saved)

    return _Swap()


def evaluate(classifier, images, labels, num_levels, samples, seed, event_shape):
  """(accuracy, bits/dim of p(x | true label)), `log p` averaged over `samples` draws."""
  log_likelihoods = classifier.image_class_log_likelihoods(
      images.reshape((len(images),) + tuple(event_shape)), num_levels, samples, seed)
  predictions = classifier.predict_from_log_likelihoods(log_likelihoods)
  true_log_likelihood = log_likelihoods[np.arange(len(labels)), labels]
  bpd = float(np.mean(bits_per_dim(true_log_likelihood, images.shape[1:], num_levels)))
  return accuracy(predictions, labels), bpd


def build_flow(args, prior, image_shape):
  """`(flow, event_shape)`: the image flow, or logit + vector flow on flattened images."""
  conditional = dict(num_classes=NUM_CLASSES, class_conditional_prior=(prior == 'learned'))
  if args.architecture == 'image':
    flow = RealNVPChain(image_shape, num_scales=args.num_scales,
                        hidden_channels=args.hidden_channels,
                        num_res_blocks=args.num_res_blocks, **conditional)
    return flow, tuple(image_shape)
  size = int(np.prod(image_shape))
  chain = RealNVPChain((size,), num_couplings=args.num_couplings,
                       hidden_units=args.hidden_units, **conditional)
  flow = FlowSequence([LogitTransform(event_ndims=1), chain], event_ndims=1,
                      name='logit_then_real_nvp')
  return flow, (size,)


def shift_images(images, probability, rng):
  """Each image moved by one pixel in a random direction with `probability` (zero fill)."""
  if not probability:
    return images
  shifted = images.copy()
  for i in np.nonzero(rng.random(len(images)) < probability)[0]:
    dy, dx = [(0, 1), (0, -1), (1, 0), (-1, 0)][rng.integers(4)]
    shifted[i] = np.roll(images[i], (dy, dx), axis=(0, 1))
    if dy:
      shifted[i, 0 if dy > 0 else -1] = 0
    if dx:
      shifted[i, :, 0 if dx > 0 else -1] = 0
  return shifted


def train_flow(args, prior, train_x, train_y, val_x, val_y, num_levels, log_prior):
  keras.utils.set_random_seed(args.seed)
  flow, event_shape = build_flow(args, prior, train_x.shape[1:])
  dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), event_shape), flow)
  as_events = lambda x: x.reshape((len(x),) + event_shape)
  variables = list(dist.trainable_variables)
  schedule = keras.optimizers.schedules.CosineDecay(args.lr, args.steps,
                                                     alpha=args.final_lr_fraction)
  if args.weight_decay:
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=args.weight_decay)
  else:
    optimizer = keras.optimizers.Adam(schedule)
  optimizer.build(variables)
  ema = Ema(variables, args.ema) if args.ema else None
  scales = flow.l2_regularized_variables

  @tf.function
  def step(x, y):
    with tf.GradientTape() as tape:
      nll = -tf.reduce_mean(dist.log_prob(
          x, bijector_kwargs={'training': True, 'conditional_input': y}))
      loss = nll + L2_SCALE * tf.add_n([tf.reduce_sum(s ** 2) for s in scales])
    grads, _ = tf.clip_by_global_norm(tape.gradient(loss, variables), CLIP_NORM)
    optimizer.apply_gradients(zip(grads, variables))
    return nll

  classifier = GenerativeClassifier(dist, class_prior=np.exp(log_prior), batch_size=100)
  rng = np.random.default_rng(args.seed)
  eval_steps = sorted({max(1, round(args.steps * (i + 1) / args.evals))
                       for i in range(args.evals)})
  best, history, recent_nll = None, [], []
  start = time.time()
  order, position = rng.permutation(len(train_x)), 0
  for i in range(1, args.steps + 1):
    if position + args.batch_size > len(order):
      order, position = rng.permutation(len(train_x)), 0
    batch = order[position:position + args.batch_size]
    position += args.batch_size
    images = shift_images(train_x[batch], args.shift, rng)
    nll = float(step(tf.constant(as_events(dequantize(images, num_levels, rng))),
                     tf.constant(train_y[batch], tf.int32)))
    if not math.isfinite(nll):
      raise FloatingPointError(f'the training NLL became {nll} at step {i}')
    recent_nll.append(-nll)
    if ema is not None:
      ema.update()
    if i in eval_steps and len(val_x):
      with (ema.swapped() if ema is not None else _nothing()):
        val_acc, val_bpd = evaluate(classifier, val_x, val_y, num_levels, 1, args.seed + 1,
                                    event_shape)
        record = dict(step=i, val_accuracy=val_acc, val_bits_per_dim=val_bpd,
                      seconds=round(time.time() - start, 1))
        history.append(record)
        train_bpd = float(bits_per_dim(np.mean(recent_nll), event_shape, num_levels))
        record['train_bits_per_dim'] = train_bpd
        recent_nll = []
        print(f'  [{prior}] step {i:5d}: train {train_bpd:.3f} bits/dim; validation accuracy '
              f'{val_acc:.3f}, {val_bpd:.3f} bits/dim ({record["seconds"]:.0f} s)',
              flush=True)
        key = ((val_acc, -val_bpd) if args.select == 'accuracy' else (-val_bpd, val_acc))
        if best is None or key > best[2]:
          best = (record, [v.numpy() for v in flow.variables], key)
  seconds = time.time() - start
  if best is not None:
    for v, value in zip(flow.variables, best[1]):
      v.assign(value)
  elif ema is not None:
    for v, shadow in zip(variables, ema._shadow):  # pylint: disable=protected-access
      v.assign(shadow)
  return flow, classifier, event_shape, dict(history=history, train_seconds=round(seconds, 1),
                                best=None if best is None else best[0])


class _nothing:  # pylint: disable=invalid-name
  def __enter__(self):
    return self

  def __exit__(self, *exc):
    return False


def baselines(train_x, train_y, test_x, test_y, val_idx, train_idx, seed):
  from sklearn import discriminant_analysis  # pylint: disable=g-import-not-at-top
  from sklearn import mixture
  flat = lambda x: x.reshape(len(x), -1).astype(np.float64)
  results = {}
  best_reg, best_acc = None, -1.
  for reg in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5):
    qda = discriminant_analysis.QuadraticDiscriminantAnalysis(reg_param=reg)
    qda.fit(flat(train_x[train_idx]), train_y[train_idx])
    acc = qda.score(flat(train_x[val_idx]), train_y[val_idx])
    if acc > best_acc:
      best_reg, best_acc = reg, acc
  qda = discriminant_analysis.QuadraticDiscriminantAnalysis(reg_param=best_reg)
  qda.fit(flat(train_x), train_y)
  results[f'QDA (reg_param {best_reg})'] = qda.score(flat(test_x), test_y)

  def mixture_accuracy(fit_x, fit_y, eval_x, eval_y, reg_covar):
    log_prior = np.log(class_frequencies(fit_y, NUM_CLASSES))
    scores = np.zeros((len(eval_x), NUM_CLASSES))
    for k in range(NUM_CLASSES):
      gmm = mixture.GaussianMixture(4, covariance_type='full', reg_covar=reg_covar,
                                    random_state=seed).fit(flat(fit_x[fit_y == k]))
      scores[:, k] = gmm.score_samples(flat(eval_x)) + log_prior[k]
    return accuracy(np.argmax(scores, 1), eval_y)

  val_accuracy = {reg: mixture_accuracy(train_x[train_idx], train_y[train_idx],
                                        train_x[val_idx], train_y[val_idx], reg)
                  for reg in (0.01, 0.1, 1., 3., 10.)}
  reg = max(val_accuracy, key=val_accuracy.get)
  results[f'GaussianMixture, 4 per class (reg_covar {reg:g})'] = mixture_accuracy(
      train_x, train_y, test_x, test_y, reg)
  return results


def run_seed(args, seed, data):
  """Trains and tests the flows of one seed: a list of result rows."""
  train_x, train_y, test_x, test_y, num_levels = data
  args = argparse.Namespace(**dict(vars(args), seed=seed))
  train_idx, val_idx = (stratified_split(train_y, args.val_size, seed) if args.val_size
                        else (np.arange(len(train_y)), np.zeros([0], np.int64)))
  log_prior = np.log(class_frequencies(train_y, NUM_CLASSES))
  print(f'seed {seed}: {len(train_idx)} train, {len(val_idx)} validation, {len(test_x)} '
        f'test images, {num_levels} levels', flush=True)
  priors = ('learned', 'standard') if args.prior == 'both' else (args.prior,)
  rows = []
  for prior in priors:
    _, classifier, event_shape, info = train_flow(
        args, prior, train_x[train_idx], train_y[train_idx], train_x[val_idx],
        train_y[val_idx], num_levels, log_prior)
    test_acc, test_bpd = evaluate(classifier, test_x, test_y, num_levels,
                                  args.eval_samples, seed + 2, event_shape)
    single_acc, single_bpd = evaluate(classifier, test_x, test_y, num_levels, 1, seed + 2,
                                      event_shape)
    row = dict(prior=prior, seed=seed, test_accuracy=test_acc, test_bits_per_dim=test_bpd,
               test_accuracy_one_draw=single_acc, test_bits_per_dim_one_draw=single_bpd,
               **info)
    rows.append(row)
    best_step = info['best']['step'] if info['best'] else args.steps
    print(f'[{prior}, seed {seed}] test accuracy {test_acc:.4f} ({args.eval_samples} draws; '
          f'one draw {single_acc:.4f}), test {test_bpd:.3f} bits/dim (one draw '
          f'{single_bpd:.3f}), step {best_step}, {info["train_seconds"]:.0f} s of training',
          flush=True)
  return rows


def main(argv=None):
  args = parse_args(argv)
  data = load_digits_with_labels()
  rows = [row for seed in args.seeds for row in run_seed(args, seed, data)]
  train_x, train_y, test_x, test_y, _ = data
  # The baselines pick their regularisation on a validation split of the first seed.
  base_train_idx, base_val_idx = stratified_split(train_y, args.val_size or 200,
                                                  args.seeds[0])
  reference = {} if args.no_baselines else baselines(
      train_x, train_y, test_x, test_y, base_val_idx, base_train_idx, args.seeds[0])
  print(f'\n| model | test accuracy | test bits/dim (17 levels) | accuracy per seed '
        f'({", ".join(map(str, args.seeds))}) | train s per flow |')
  print('|---|---:|---:|---|---:|')
  for prior in dict.fromkeys(row['prior'] for row in rows):
    mine = [row for row in rows if row['prior'] == prior]
    acc = np.array([row['test_accuracy'] for row in mine])
    bpd = np.array([row['test_bits_per_dim'] for row in mine])
    name = 'flow, learned class prior' if prior == 'learned' else 'flow, N(0, I) prior'
    spread = (lambda v, f: f'{v.mean():{f}} +- {v.std(ddof=1):{f}}' if len(v) > 1
              else f'{v.mean():{f}}')
    print(f'| {name} | {spread(acc, ".4f")} | {spread(bpd, ".3f")} | '
          f'{", ".join(f"{a:.4f}" for a in acc)} | '
          f'{np.mean([row["train_seconds"] for row in mine]):.0f} |')
  for name, acc in reference.items():
    print(f'| {name} | {acc:.4f} | | | |')
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(dict(settings=vars(args), flows=rows, baselines=reference), f, indent=2)
  return rows, reference


if __name__ == '__main__':
  main(sys.argv[1:])
