"""The typicality test: is `log p(x)` close to the model's typical log-likelihood?

A model's likely inputs need not be its typical ones. For a standard normal in
D dimensions the density peaks at `x = 0`, yet samples lie near the sphere of
radius `sqrt(D)`, where `log p(x)` is close to its mean `-H` (H the entropy).
Nalisnick, Matsukawa, Teh and Lakshminarayanan [1] therefore flag inputs whose
log-likelihood is far from that typical value *on either side*, which catches
the inputs that raw likelihood misses because they are too likely (simple
images, constant images, MNIST under a Fashion-MNIST model).

The entropy is estimated on training inputs,
`H_N = -(1/N) sum_n log p(x_n)`.

**Per-input score** (the test with batches of one input):

```none
typicality(x) = | log p(x) + H_N | = | log p(x) - mean_n log p(x_n) |     (nats)
```

**Batch test** [1]: a batch of M inputs is OOD when

```none
eps(x_1..x_M) = | -(1/M) sum_m log p(x_m) - H_N |  >  eps_alpha^M,
```

with the threshold `eps_alpha^M` the `1 - alpha` quantile of `eps` over K
bootstrap batches of M inputs drawn with replacement from held-out
in-distribution data, so that in-distribution batches are rejected at a rate of
about `alpha`. Averaging over the batch shrinks the spread of `eps` by about
`sqrt(M)`, so small shifts of the mean log-likelihood become detectable.

#### Examples

```python
from tfp_realnvp.ood import typicality
scores = typicality.typicality_scores(test_log_probs, train_log_probs)
test = typicality.TypicalityTest(train_log_probs, validation_log_probs,
                                 batch_size=10, alpha=0.01)
test.is_ood(batch_log_probs)          # one decision per batch of 10
```

#### References

[1]: Eric Nalisnick, Akihiro Matsukawa, Yee Whye Teh, Balaji Lakshminarayanan.
     Detecting Out-of-Distribution Inputs to Deep Generative Models Using
     Typicality. arXiv, 2019. https://arxiv.org/abs/1906.02994
"""

import numpy as np

__all__ = ['typicality_scores', 'TypicalityTest']


def _log_prob_array(values, name, min_size=1):
  values = np.asarray(values, dtype=np.float64)
  if values.ndim != 1 or values.size < min_size:
    raise ValueError(f'{name} must be a 1-D array of at least {min_size} '
                     f'log-probabilities; got shape {values.shape}.')
  if not np.isfinite(values).all():
    raise ValueError(f'{name} holds {int((~np.isfinite(values)).sum())} non-finite '
                     'value(s); the typical log-likelihood needs finite ones.')
  return values


def typicality_scores(log_probs, reference_log_probs):
  """Per-input typicality, `|log p(x) - mean(reference log p)|`, in nats.

  Args:
    log_probs: array of `log p(x)` of the inputs to score (any shape).
    reference_log_probs: 1-D array of `log p` of in-distribution training inputs;
      their mean is the estimate `-H_N` of the negative entropy.

  Returns:
    A float64 array of the shape of `log_probs`: larger is more anomalous.

  Raises:
    ValueError: if `reference_log_probs` is empty, not 1-D or not finite.
  """
  reference = _log_prob_array(reference_log_probs, 'reference_log_probs')
  return np.abs(np.asarray(log_probs, dtype=np.float64) - reference.mean())


class TypicalityTest:
  """The batch typicality test of Nalisnick et al., with a bootstrap threshold.

  Attributes:
    entropy: `H_N`, minus the mean training log-likelihood (nats).
    batch_size: M, inputs per tested batch.
    alpha: the in-distribution rejection rate the threshold aims at.
    threshold: `eps_alpha^M`, the `1 - alpha` quantile of the bootstrap `eps`.
  """

  def __init__(self, train_log_probs, validation_log_probs, batch_size, alpha=0.01,
               num_bootstrap=1000, seed=0):
    """Estimates the entropy and the threshold.

    Args:
      train_log_probs: 1-D array of `log p` of training inputs (for `H_N`).
      validation_log_probs: 1-D array of `log p` of held-out in-distribution
        inputs, resampled with replacement for the bootstrap.
      batch_size: Python `int` M >= 1.
      alpha: Python `float` in (0, 1).
      num_bootstrap: Python `int` K >= 1, the number of bootstrap batches.
      seed: seed of the bootstrap's `np.random.default_rng`.

    Raises:
      ValueError: for a bad `batch_size`, `alpha` or `num_bootstrap`, or log-probs
        that are empty, not 1-D or not finite.
    """
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
      raise ValueError(f'batch_size must be a positive int; got {batch_size!r}.')
    if not 0. < alpha < 1.:
      raise ValueError(f'alpha must be in (0, 1); got {alpha!r}.')
    if not isinstance(num_bootstrap, (int, np.integer)) or num_bootstrap < 1:
      raise ValueError(f'num_bootstrap must be a positive int; got {num_bootstrap!r}.')
    train = _log_prob_array(train_log_probs, 'train_log_probs')
    validation = _log_prob_array(validation_log_probs, 'validation_log_probs')
    self.entropy = float(-train.mean())
    self.batch_size = int(batch_size)
    self.alpha = float(alpha)
    rng = np.random.default_rng(seed)
    bootstrap = rng.choice(validation, size=(num_bootstrap, self.batch_size), replace=True)
    self.threshold = float(np.quantile(self.statistic(bootstrap), 1. - self.alpha))

  def statistic(self, batch_log_probs):
    """`eps = |-(mean over the last axis of log p) - H_N|` of batches.

    Args:
      batch_log_probs: array `(..., M)` of the log-probs of batches of inputs.

    Returns:
      A float64 array `(...)`, one statistic per batch.
    """
    batch_log_probs = np.asarray(batch_log_probs, dtype=np.float64)
    return np.abs(-batch_log_probs.mean(axis=-1) - self.entropy)

  def is_ood(self, batch_log_probs):
    """Whether each batch `(..., M)` is rejected as OOD (`eps > threshold`)."""
    batch_log_probs = np.asarray(batch_log_probs)
    if batch_log_probs.shape[-1:] != (self.batch_size,):
      raise ValueError(f'Batches must have {self.batch_size} inputs on their last axis; '
                       f'got shape {batch_log_probs.shape}.')
    return self.statistic(batch_log_probs) > self.threshold

  def random_batches(self, log_probs, num_batches, seed=0):
    """`num_batches` batches of M log-probs drawn without replacement within a batch.

    Args:
      log_probs: 1-D array of the log-probs of one set (at least M of them).
      num_batches: Python `int`.
      seed: seed of `np.random.default_rng`.

    Returns:
      A float64 array `(num_batches, M)`, e.g. for `statistic` or `is_ood`.
    """
    log_probs = _log_prob_array(log_probs, 'log_probs', min_size=self.batch_size)
    rng = np.random.default_rng(seed)
    return np.stack([log_probs[rng.choice(len(log_probs), self.batch_size, replace=False)]
                     for _ in range(num_batches)])
