"""Training and evaluating image flows for the quality benchmarks.

One loop for every quality comparison, so that variants differ only in what
is being compared: the data (`load_image_data`: integer training images and
a test set dequantized once with fixed noise), the paper's recipe
(`tfp_realnvp.train.maximum_likelihood_step`: Adam, L2 on the couplings'
scales, global-norm clipping) and held-out bits/dim in inference mode
(`Evaluator`). `train` runs a fixed number of steps (equal-step comparisons,
deterministic for a seed) or a wall-clock budget of training time
(evaluation not counted).
"""

import dataclasses
import math
import time
import typing

from benchkit.environment import tf_modules

TEST_NOISE_SEED = 123
ANNEAL_FLOOR = 0.01  # `train(anneal=True)` ends at this fraction of the rate.
RECOMPUTE_BATCH_SIZE = 512  # Images per batch of `train(recompute_batch_norm=...)`.


@dataclasses.dataclass
class ImageData:
  name: str
  train: typing.Any            # uint8 (N, H, W, C)
  test: typing.Any             # float32 (M, H, W, C), dequantized once
  num_levels: int

  @property
  def event_shape(self):
    return tuple(int(d) for d in self.train.shape[1:])


def load_image_data(name, eval_examples=0, train_examples=0):
  """`ImageData` of 'digits' or 'fashion_mnist' via `tfp_realnvp.data`.

  The test images are dequantized once, `(k + u) / L` with noise from
  `TEST_NOISE_SEED`, so that every model (the reference's included) is
  scored on the same array. `eval_examples` / `train_examples` > 0 keep
  only the first ones.
  """
  from tfp_realnvp import data  # pylint: disable=g-import-not-at-top
  images = data.load_images(name)
  train, test = images.train, images.test
  if train_examples:
    train = train[:train_examples]
  if eval_examples:
    test = test[:eval_examples]
  test = data.dequantize(test, images.num_levels, TEST_NOISE_SEED)
  return ImageData(name, train, test, images.num_levels)


def training_dataset(data, batch_size, seed, random_shift=0.):
  """The package's endless training pipeline (fresh order and noise)."""
  from tfp_realnvp import data as data_lib  # pylint: disable=g-import-not-at-top
  return data_lib.image_pipeline(data.train, data.num_levels, batch_size,
                                 training=True, seed=seed,
                                 random_shift=random_shift)


class Evaluator:
  """Held-out bits/dim of a distribution, inference mode, fixed test array."""

  def __init__(self, dist, data, batch_size=500):
    tf, _ = tf_modules()
    from tfp_realnvp import bits_per_dim  # pylint: disable=g-import-not-at-top
    self._data = data
    self._batch_size = batch_size
    shape = (None,) + data.event_shape
    self._bpd = tf.function(
        lambda x: bits_per_dim(dist.log_prob(x), data.event_shape,
                               data.num_levels),
        input_signature=[tf.TensorSpec(shape, tf.float32)])

  def __call__(self, images=None):
    images = self._data.test if images is None else images
    total = 0.
    for i in range(0, len(images), self._batch_size):
      total += float(self._bpd(images[i:i + self._batch_size]).numpy().sum())
    return total / len(images)


class WeightAverage:
  """Polyak (exponential moving) averages of variables, for evaluation.

  `update()` after each step: `avg <- decay * avg + (1 - decay) * v`, from
  `avg = 0`, read with Adam's bias correction `avg / (1 - decay**t)` after
  `t` updates (so the starting weights do not linger in short runs). With
  `swapped()` the variables hold the averages inside the `with` block.
  """

  def __init__(self, variables, decay):
    tf, _ = tf_modules()
    self.decay = float(decay)
    self._variables = list(variables)
    self._averages = [tf.Variable(tf.zeros_like(v), trainable=False)
                      for v in self._variables]
    self._updates = tf.Variable(0., trainable=False)

    def update():
      self._updates.assign_add(1.)
      for a, v in zip(self._averages, self._variables):
        a.assign(self.decay * a + (1. - self.decay) * v)
    self.update = tf.function(update)

  def swapped(self):
    return _Swapped(self)


class _Swapped:
  """Context: the averaged weights in place of the trained ones."""

  def __init__(self, average):
    self._average = average

  def __enter__(self):
    avg = self._average
    correction = 1. - avg.decay ** float(avg._updates.numpy())  # pylint: disable=protected-access
    self._saved = [v.numpy() for v in avg._variables]  # pylint: disable=protected-access
    for v, a in zip(avg._variables, avg._averages):  # pylint: disable=protected-access
      v.assign(a / correction)

  def __exit__(self, *exc):
    for v, s in zip(self._average._variables, self._saved):  # pylint: disable=protected-access
      v.assign(s)


def bits_from_nll(nll, dims, num_levels):
  """Bits/dim from a mean negative log-density (nats per image)."""
  return (nll / dims + math.log(num_levels)) / math.log(2.)


def train(model, data, *, steps=None, budget=None, evals=4, batch_size=64,
          seed=0, learning_rate=1e-3, l2_scale=5e-5, clip_norm=100.,
          ema_decays=(), jit_compile=False, eval_fn=None, log=print,
          label='ours', weight_decay=0., random_shift=0., anneal=False,
          recompute_batch_norm=0, recompute_batch_size=RECOMPUTE_BATCH_SIZE):
  """Trains `model` (a `benchkit.variants.ImageModel`) and returns the curve.

  Args:
    model: the flow, its distribution and its L2 variables.
    data: `ImageData`.
    steps: train this many steps (evaluations at `evals` evenly spaced
      steps) ...
    budget: ... or this many seconds of training (evenly spaced in time).
    evals: number of evaluations after the first step.
    batch_size: images per step.
    seed: seed of the batches (order and noise).
    learning_rate: a float or a Keras schedule for Adam.
    anneal: lowers a float `learning_rate` along a cosine to 1% of it over the
      run: `lr = lr0 * (0.01 + 0.99 * (1 + cos(pi * p)) / 2)` with `p` the
      fraction of the steps, or of the budget's seconds, already trained (the
      `decay='cosine'` of `tfp_realnvp.train.WarmupDecay`, by time when the
      run is a budget).
    l2_scale, clip_norm: the paper's L2 on the scales and gradient clipping.
    ema_decays: also evaluate Polyak averages of the weights with these
      decays (`test_bpd_ema_<decay>` in each point).
    jit_compile: compile the step with XLA.
    eval_fn: optional `f(model, data, averages) -> dict` of extra figures at
      each evaluation (`averages`: the `WeightAverage`s of `ema_decays`).
    log: printer of progress lines (None: silent).
    label: name in the progress lines.
    weight_decay: > 0 trains with AdamW's decoupled weight decay (Loshchilov
      & Hutter, Decoupled Weight Decay Regularization, ICLR 2019,
      https://arxiv.org/abs/1711.05101) instead of Adam.
    random_shift: moves each training image by one pixel in a random
      direction with this probability (the pipeline's `random_shift`).
    recompute_batch_norm: > 0 sets every batch-norm running average, before
      the last evaluation, to its average over this many training batches of
      `recompute_batch_size` images (fresh order and noise;
      `tfp_realnvp.recompute_batch_norm_statistics`). With a budget the
      recomputation is part of it: a dry run after the first step (its
      statistics discarded) measures its cost, training stops that much
      before the budget, and the real one's time counts as training time.
      The last point also holds `test_bpd_before_recompute` and
      `recompute_seconds`.

  Returns:
    dict with `curve` (list of points: step, train_seconds,
    train_cpu_seconds, train_bpd, test_bpd, ...), `first_step_seconds`.
  """
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from tfp_realnvp.train import maximum_likelihood_step  # pylint: disable=g-import-not-at-top
  if (steps is None) == (budget is None):
    raise ValueError('give exactly one of steps and budget')
  if anneal and not isinstance(learning_rate, (int, float)):
    raise ValueError('anneal needs a float learning_rate')
  optimizer = (keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
               if weight_decay else keras.optimizers.Adam(learning_rate))
  step = maximum_likelihood_step(
      model.dist, optimizer, l2_variables=model.l2_variables,
      l2_scale=l2_scale, clip_norm=clip_norm, jit_compile=jit_compile)
  averages = [WeightAverage(model.dist.trainable_variables, d)
              for d in ema_decays]
  evaluate = Evaluator(model.dist, data)
  dims = float(np.prod(data.event_shape))
  stream = iter(training_dataset(data, batch_size, seed, random_shift))
  if recompute_batch_norm:
    recompute_stream = iter(training_dataset(data, recompute_batch_size, seed + 1))

  def point(step_count, trained, cpu, recent):
    p = dict(step=step_count, images=step_count * batch_size,
             train_seconds=trained, train_cpu_seconds=cpu,
             train_bpd=bits_from_nll(float(np.mean(recent)), dims,
                                     data.num_levels),
             test_bpd=evaluate())
    for avg in averages:
      with avg.swapped():
        p[f'test_bpd_ema_{avg.decay:g}'] = evaluate()
    if eval_fn is not None:
      p.update(eval_fn(model, data, averages))
    return p

  def recompute():
    from tfp_realnvp import recompute_batch_norm_statistics  # pylint: disable=g-import-not-at-top
    t0, c0 = time.perf_counter(), time.process_time()
    recompute_batch_norm_statistics(model.flow, recompute_stream,
                                    max_batches=recompute_batch_norm)
    return time.perf_counter() - t0, time.process_time() - c0

  start = time.perf_counter()
  first = float(step(next(stream)))
  for avg in averages:
    avg.update()
  first_step_seconds = time.perf_counter() - start
  curve = [point(1, 0., 0., [first])]
  reserve = 0.
  if recompute_batch_norm and budget is not None:
    from benchkit import variants  # pylint: disable=g-import-not-at-top
    snapshot = variants.snapshot_batch_norm_statistics(model)
    reserve, _ = recompute()
    variants.restore_batch_norm_statistics(snapshot)
  if log:
    log(f'  {label}: first step {first_step_seconds:.1f} s (trace), test bpd '
        f'{curve[0]["test_bpd"]:.3f}')
  by_steps = steps is not None
  total = steps if by_steps else budget
  if anneal:
    from tfp_realnvp.train import WarmupDecay  # pylint: disable=g-import-not-at-top
    # Progress in steps, or in seconds of training: decay_steps is the run's length.
    annealed = WarmupDecay(learning_rate, decay='cosine',
                           decay_steps=max(1, round(total - reserve)),
                           final_fraction=ANNEAL_FLOOR)
  marks = [total * (i + 1) / evals for i in range(evals)]
  marks[-1] -= reserve
  trained = cpu = 0.
  count, recent = 1, []
  for i, mark in enumerate(marks):
    while (count if by_steps else trained) < mark:
      x = next(stream)
      t0, c0 = time.perf_counter(), time.process_time()
      if anneal:
        optimizer.learning_rate.assign(annealed(count if by_steps else trained))
      recent.append(step(x))  # Read back only at evaluations.
      for avg in averages:
        avg.update()
      if not by_steps:
        recent[-1] = float(recent[-1])  # Wait for the step: timed.
      trained += time.perf_counter() - t0
      cpu += time.process_time() - c0
      count += 1
    recent = [float(v) for v in recent[-20:]]
    if not all(math.isfinite(v) for v in recent):
      raise FloatingPointError(f'{label}: non-finite loss by step {count}')
    recomputed = {}
    if recompute_batch_norm and i == len(marks) - 1:
      recomputed['test_bpd_before_recompute'] = evaluate()
      seconds, cpu_seconds = recompute()
      if not by_steps:
        trained += seconds
        cpu += cpu_seconds
      recomputed['recompute_seconds'] = seconds
    curve.append(dict(point(count, trained, cpu, recent), **recomputed))
    if log:
      p = curve[-1]
      extra = ''.join(f', {k[9:]} {v:.3f}' for k, v in p.items()
                      if k.startswith('test_bpd_') and isinstance(v, float))
      log(f'  {label}: {trained:7.1f} s, step {count}, train bpd '
          f'{p["train_bpd"]:.3f}, test bpd {p["test_bpd"]:.3f}{extra}')
  return dict(curve=curve, first_step_seconds=first_step_seconds,
              batch_size=batch_size, seed=seed)
