"""The likelihood ratio against a background model trained on perturbed inputs.

Ren et al. [1] split an input's likelihood into a *background* part, shared by
many inputs (e.g. the statistics of plain regions), and a *semantic* part
specific to the in-distribution data, and observe that the background part
dominates `log p(x)`. A second model `p_0`, the background model, is trained
on in-distribution inputs whose values were randomly perturbed, which destroys
the semantic structure but keeps the background statistics. The log-likelihood
ratio

```none
LLR(x) = log p(x) - log p_0(x)
```

cancels the background part. This module's anomaly score is its negative,

```none
likelihood_ratio(x) = log p_0(x) - log p(x)        (nats; larger: more anomalous)
```

The perturbation (`perturb_images`): each sub-pixel is, independently with
probability `mutation_rate` (mu), replaced by one of the *other* `num_levels - 1`
levels chosen uniformly at random. `train_background_flow` trains a fresh flow
(the caller gives the architecture, normally the in-distribution model's) by
maximum likelihood (`tfp_realnvp.train.maximum_likelihood_step`, the Real NVP
recipe: Adam, L2 on the s-scales, gradient clipping) on such perturbed images,
drawing a fresh perturbation at each pass over the data.

#### Examples

```python
from tfp_realnvp.ood import likelihood_ratio
from tfp_realnvp.train import make_flow
background = likelihood_ratio.train_background_flow(
    images.train, 256, lambda: make_flow((28, 28, 1), hidden_channels=16,
                                         num_res_blocks=2),
    steps=500, mutation_rate=0.15)
```

#### References

[1]: Jie Ren, Peter J. Liu, Emily Fertig, Jasper Snoek, Ryan Poplin, Mark A.
     DePristo, Joshua V. Dillon, Balaji Lakshminarayanan. Likelihood Ratios for
     Out-of-Distribution Detection. In _NeurIPS_, 2019.
     https://arxiv.org/abs/1906.02845
"""

import itertools
import logging

import keras
import numpy as np

from tfp_realnvp.data import image_pipeline
from tfp_realnvp.train import make_distribution
from tfp_realnvp.train import maximum_likelihood_step

__all__ = ['perturb_images', 'train_background_flow', 'likelihood_ratio_scores']

logger = logging.getLogger('tfp_realnvp.ood')


def perturb_images(images, num_levels, mutation_rate, seed):
  """Replaces each sub-pixel, with probability `mutation_rate`, by another level.

  A replaced value `k` becomes `(k + j) mod num_levels` with `j` uniform in
  `{1, ..., num_levels - 1}`: uniform over the levels other than `k`.

  Args:
    images: integer array of any shape, values in `[0, num_levels - 1]`.
    num_levels: Python `int` >= 2.
    mutation_rate: Python `float` in [0, 1], the probability mu of a replacement.
    seed: anything `np.random.default_rng` accepts.

  Returns:
    An array of the shape and dtype of `images`.

  Raises:
    ValueError: for a `mutation_rate` outside [0, 1], `num_levels < 2`, or images
      that are not integers in the levels.
  """
  if not 0. <= mutation_rate <= 1.:
    raise ValueError(f'mutation_rate must be in [0, 1]; got {mutation_rate!r}.')
  if num_levels < 2:
    raise ValueError(f'num_levels must be >= 2; got {num_levels!r}.')
  images = np.asarray(images)
  if not np.issubdtype(images.dtype, np.integer):
    raise ValueError(f'images must hold integers; got dtype {images.dtype}.')
  if images.size and (images.min() < 0 or images.max() >= num_levels):
    raise ValueError(f'images must have values in [0, {num_levels - 1}]; got '
                     f'[{images.min()}, {images.max()}].')
  rng = np.random.default_rng(seed)
  replace = rng.random(images.shape) < mutation_rate
  offsets = rng.integers(1, num_levels, size=images.shape)
  replaced = (images.astype(np.int64) + offsets) % num_levels
  return np.where(replace, replaced, images).astype(images.dtype)


def _perturbed_batches(images, num_levels, batch_size, mutation_rate, seed):
  for pass_number in itertools.count():
    perturbed = perturb_images(images, num_levels, mutation_rate, seed=[seed, pass_number])
    yield from image_pipeline(perturbed, num_levels, batch_size, training=True,
                              seed=seed + pass_number, repeat=1)


def train_background_flow(images, num_levels, flow_fn, *, steps, batch_size=64,
                          learning_rate=1e-3, mutation_rate=0.15, l2_scale=5e-5,
                          clip_norm=100., seed=0, log_every=100):
  """Trains a background flow on perturbed images by maximum likelihood.

  Args:
    images: integer training images `(N, H, W, C)`, values in the levels.
    num_levels: Python `int`, the number of grey levels of `images`.
    flow_fn: zero-argument callable returning a fresh, untrained flow over
      `(H, W, C)` (e.g. `lambda: tfp_realnvp.train.make_flow(shape, ...)`).
    steps: Python `int` >= 1, the number of optimizer steps.
    batch_size: Python `int`, images per step (at most N).
    learning_rate: Adam's learning rate.
    mutation_rate: mu of `perturb_images`.
    l2_scale: L2 factor on the flow's `l2_regularized_variables` (if any).
    clip_norm: global gradient-norm clipping (None: none).
    seed: Python `int`: the perturbations, batch order and dequantization noise.
    log_every: steps between progress lines on the `tfp_realnvp.ood` logger.

  Returns:
    The trained flow (use it in inference mode, e.g. through
    `tfp_realnvp.train.make_distribution(flow, (H, W, C)).log_prob`).

  Raises:
    ValueError: for `steps < 1` or a `batch_size` larger than the data.
    RuntimeError: if the loss becomes non-finite (try a lower learning rate).
  """
  if not isinstance(steps, (int, np.integer)) or steps < 1:
    raise ValueError(f'steps must be a positive int; got {steps!r}.')
  images = np.asarray(images)
  if not 1 <= batch_size <= len(images):
    raise ValueError(f'batch_size must be in [1, {len(images)}] (the number of '
                     f'images); got {batch_size!r}.')
  flow = flow_fn()
  distribution = make_distribution(flow, images.shape[1:])
  optimizer = keras.optimizers.Adam(learning_rate)
  step_fn = maximum_likelihood_step(
      distribution, optimizer, l2_variables=getattr(flow, 'l2_regularized_variables', ()),
      l2_scale=l2_scale, clip_norm=clip_norm)
  batches = _perturbed_batches(images, num_levels, batch_size, mutation_rate, seed)
  for step, x in enumerate(itertools.islice(batches, steps), start=1):
    nll = float(step_fn(x))
    if not np.isfinite(nll):
      raise RuntimeError(f'The background flow\'s loss is {nll} at step {step}; '
                         f'lower the learning rate (it is {learning_rate}).')
    if log_every and (step % log_every == 0 or step == steps):
      logger.info('background flow: step %d of %d, %.4f nats per image', step, steps, nll)
  return flow


def likelihood_ratio_scores(log_probs, background_log_probs):
  """`log p_0(x) - log p(x)`, minus Ren et al.'s log-likelihood ratio (nats).

  Args:
    log_probs: array of `log p(x)` under the in-distribution model.
    background_log_probs: array of `log p_0(x)` under the background model, for the
      same (identically dequantized) inputs.

  Returns:
    A float64 array: larger is more anomalous.

  Raises:
    ValueError: if the two arrays differ in shape.
  """
  log_probs = np.asarray(log_probs, dtype=np.float64)
  background_log_probs = np.asarray(background_log_probs, dtype=np.float64)
  if log_probs.shape != background_log_probs.shape:
    raise ValueError(f'log_probs {log_probs.shape} and background_log_probs '
                     f'{background_log_probs.shape} must have the same shape.')
  return background_log_probs - log_probs
