"""A generative classifier from a class-conditional flow: Bayes' rule over the classes.

A class-conditional density `p(x | y)` over labels `y` in `{0, ..., K - 1}` and class
probabilities `p(y)` give the posterior over the classes by Bayes' rule,

```none
log p(y | x) = log p(x | y) + log p(y) - logsumexp_k [log p(x | k) + log p(k)]
predict(x) = argmax_y log p(x | y) + log p(y)
```

which is the Bayes-optimal decision when the densities are the true ones. `p(y)` is
uniform unless given; `class_frequencies(train_labels, K)` gives the empirical frequencies
of the training labels, the maximum-likelihood estimate of the class prior.

`GenerativeClassifier` evaluates `log p(x | y)` for every class in one batched call per
chunk of inputs: a chunk of `n` events is tiled `K` times and evaluated with the labels
`0, ..., K - 1` (each repeated `n` times), so a flow's networks run once per chunk on `K n`
events. The density is either

- a `tfd.TransformedDistribution` of a class-conditional flow (e.g. of
  `RealNVPChain(..., num_classes=K)`), evaluated in inference mode inside a `tf.function`
  (batch norms use their running averages and are never updated), or
- a function `log_prob(x, labels) -> (n,)` taking `n` events and `n` integer labels, for
  example a SavedModel's `log_prob(x, label)` signature.

For image data, `x` is what the flow was trained on: dequantized pixels `(k + u) / L` in
[0, 1] (see `tfp_realnvp.data.dequantize`). For integer images `k`,
`image_class_log_likelihoods` averages the density over `S` dequantization draws,

```none
log p_S(k | y) = log (1/S) sum_s p((k + u_s) / L | y),      u_s ~ U[0, 1)^D,
```

an importance-sampling estimate of `log P(k | y) + D log L`, the log-probability of the
discrete image (`P(k | y) = E_u p((k + u) / L | y) L^-D`); by Jensen's inequality its
expectation is a lower bound that tightens as `S` grows, and the constant `D log L` is the
same for every class, so it cancels in Bayes' rule. More draws make the classifier less
sensitive to the noise of one draw.

#### Examples

```python
from tfp_realnvp import RealNVPChain
from tfp_realnvp.classifier import GenerativeClassifier, class_frequencies
from tfp_realnvp.data import dequantize

flow = RealNVPChain((8, 8, 1), num_scales=2, num_classes=10)
dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), (8, 8, 1)), flow)
# ... train with dist.log_prob(x, bijector_kwargs={'conditional_input': y, 'training': True})
classifier = GenerativeClassifier(dist, class_prior=class_frequencies(y_train, 10))
x_test = dequantize(k_test, num_levels=17, seed_or_generator=0)   # integer images k_test
log_posteriors = classifier.log_posteriors(x_test)       # (N, 10), rows sum to 1 in exp
classifier.predict(x_test)                                # (N,) int64
classifier.accuracy(x_test, y_test)                       # a float in [0, 1]
# log p(x | y) averaged over 4 dequantization draws of the integer images:
log_likelihoods = classifier.image_class_log_likelihoods(k_test, num_levels=17,
                                                         num_samples=4, seed=0)
predictions = classifier.predict_from_log_likelihoods(log_likelihoods)

# A SavedModel with a `log_prob(x, label)` function works the same way:
model = tf.saved_model.load('run/saved_model')
classifier = GenerativeClassifier(model.log_prob, num_classes=10)
```

#### References
[1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
     ICLR 2017. https://arxiv.org/abs/1605.08803
[2]: Diederik P. Kingma, Prafulla Dhariwal. Glow: Generative Flow with Invertible 1x1
     Convolutions. NeurIPS 2018. https://arxiv.org/abs/1807.03039 (class-conditional
     flows and their learned per-class prior).
[3]: Andrew Y. Ng, Michael I. Jordan. On Discriminative vs. Generative Classifiers: A
     comparison of logistic regression and naive Bayes. NeurIPS 2001.
     https://proceedings.neurips.cc/paper/2001/hash/7b7a53e239400a13bd6be6c91c4f6c4e-Abstract.html
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp.data import dequantize

tfb = tfp.bijectors
tfd = tfp.distributions

__all__ = ['GenerativeClassifier', 'accuracy', 'class_frequencies', 'class_log_posteriors',
           'conditional_num_classes']

DEFAULT_BATCH_SIZE = 100


def conditional_num_classes(bijector):
  """K of the class-conditional part of `bijector` (searched through composites), or None.

  Any bijector with a `num_classes` attribute that is not None counts (`RealNVPChain`,
  `MaskedAffineCoupling`, `ClassConditionalAffine`); `tfb.Chain`, `tfb.Invert` and this
  package's `FlowSequence`, `Inverted` and `FactorOut` are searched.

  Raises:
    ValueError: if parts of `bijector` disagree on K.
  """
  found = set()
  pending = [bijector]
  while pending:
    current = pending.pop()
    num_classes = getattr(current, 'num_classes', None)
    if num_classes is not None:
      found.add(int(num_classes))
      continue
    for attribute in ('bijectors', 'steps'):
      pending.extend(getattr(current, attribute, None) or ())
    inner = getattr(current, 'bijector', None)
    if isinstance(inner, tfb.Bijector):
      pending.append(inner)
  if len(found) > 1:
    raise ValueError(f'the parts of {bijector.name} disagree on the number of classes: '
                     f'{sorted(found)}.')
  return found.pop() if found else None


def class_frequencies(labels, num_classes):
  """The frequency of each class among `labels`: the maximum-likelihood `p(y)`.

  Args:
    labels: integer array `(N,)` of labels in `[0, num_classes)`, N >= 1.
    num_classes: K.

  Returns:
    A float64 array `(K,)` summing to 1 (a class absent from `labels` gets 0, so the
    classifier never predicts it).

  Raises:
    ValueError: for labels that are not integers of rank 1 in `[0, K)`, or none at all.
  """
  num_classes = _check_num_classes(num_classes)
  labels = _integer_labels(labels, num_classes, 'labels')
  if labels.size == 0:
    raise ValueError('labels is empty: class frequencies need at least one label.')
  return np.bincount(labels, minlength=num_classes) / labels.size


def class_log_posteriors(class_log_likelihoods, log_prior=None):
  """Bayes' rule: `log p(y | x)` from `log p(x | y)` `(N, K)` and `log p(y)` `(K,)`.

  Args:
    class_log_likelihoods: array `(N, K)`, `log p(x_n | y = k)`.
    log_prior: array `(K,)` of `log p(y)`; None for uniform.

  Returns:
    A float64 array `(N, K)` whose rows are normalised log-probabilities. A row whose
    `log p(x | y) + log p(y)` is `-inf` for every class raises, as it has no posterior.

  Raises:
    ValueError: for shapes that do not match, NaN values, or a row without any finite term.
  """
  log_likelihoods = np.asarray(class_log_likelihoods, dtype=np.float64)
  if log_likelihoods.ndim != 2 or log_likelihoods.shape[1] < 2:
    raise ValueError(f'class_log_likelihoods must have shape (N, K) with K >= 2; got '
                     f'{log_likelihoods.shape}.')
  num_classes = log_likelihoods.shape[1]
  if log_prior is None:
    log_prior = np.full([num_classes], -np.log(num_classes))
  log_prior = np.asarray(log_prior, dtype=np.float64)
  if log_prior.shape != (num_classes,):
    raise ValueError(f'log_prior must have shape ({num_classes},) to match the '
                     f'{num_classes} classes; got {log_prior.shape}.')
  if np.isnan(log_likelihoods).any():
    raise ValueError(f'class_log_likelihoods holds {int(np.isnan(log_likelihoods).sum())} '
                     'NaN value(s).')
  log_joint = log_likelihoods + log_prior
  if log_joint.size and not np.isfinite(log_joint.max(axis=1)).all():
    bad = np.nonzero(~np.isfinite(log_joint.max(axis=1)))[0]
    raise ValueError(f'{len(bad)} input(s) (first: index {bad[0]}) have no class with a '
                     'finite log p(x | y) + log p(y), hence no posterior.')
  if not log_joint.size:
    return log_joint
  top = log_joint.max(axis=1, keepdims=True)
  log_normalizer = top + np.log(np.sum(np.exp(log_joint - top), axis=1, keepdims=True))
  return log_joint - log_normalizer


def accuracy(predictions, labels):
  """The fraction of `predictions` equal to `labels` (integer arrays of one shape `(N,)`)."""
  predictions = np.asarray(predictions)
  labels = np.asarray(labels)
  if predictions.ndim != 1 or labels.shape != predictions.shape:
    raise ValueError(f'predictions and labels must be 1-D of one length; got shapes '
                     f'{predictions.shape} and {labels.shape}.')
  if not predictions.size:
    raise ValueError('accuracy of zero inputs is undefined.')
  return float(np.mean(predictions == labels))


class GenerativeClassifier:
  """Bayes' rule over a class-conditional density: `argmax_y log p(x | y) + log p(y)`.

  See the module docstring for the math and the two kinds of density it takes.

  Args:
    density: a `tfd.Distribution` whose bijector is class-conditional (labels routed as
      `bijector_kwargs={'conditional_input': labels}`, e.g. a `TransformedDistribution` of
      `RealNVPChain(..., num_classes=K)`), or a callable `log_prob(x, labels)` returning one
      log-density per event for `n` events `x` and `n` integer labels.
    num_classes: K. Read from the flow for a distribution (given, it must agree); needed
      for a callable.
    class_prior: `p(y)`: None or `'uniform'` for `1 / K` each, or an array `(K,)` of
      non-negative probabilities summing to 1 (e.g. `class_frequencies(train_labels, K)`).
    batch_size: events per chunk; each chunk is evaluated as one batch of
      `batch_size * K` events.
    label_dtype: the integer dtype the labels are passed in (`tf.int32` by default; use
      what a SavedModel's signature expects).

  Raises:
    TypeError: for a density that is neither a distribution nor callable (a bijector, for
      example: wrap it in its `TransformedDistribution`).
    ValueError: for a distribution that is not class-conditional, a `num_classes` that is
      missing or disagrees with the flow's, or a bad `class_prior` or `batch_size`.
  """

  def __init__(self, density, num_classes=None, class_prior=None,
               batch_size=DEFAULT_BATCH_SIZE, label_dtype=tf.int32):
    if isinstance(density, tfb.Bijector):
      raise TypeError(
          f'density is a bijector ({density.name}); pass the distribution of the flow, '
          f'tfd.TransformedDistribution(base, flow), or a function log_prob(x, labels).')
    if isinstance(density, tfd.Distribution):
      flow_classes = conditional_num_classes(getattr(density, 'bijector', None))
      if flow_classes is None:
        raise ValueError(
            f'{density.name} is not class-conditional: its bijector takes no labels. Build '
            f'the flow with num_classes=K (RealNVPChain(..., num_classes=K)), or pass a '
            f'function log_prob(x, labels).')
      if num_classes is not None and int(num_classes) != flow_classes:
        raise ValueError(f'num_classes={num_classes} disagrees with the flow, which has '
                         f'{flow_classes} classes.')
      num_classes = flow_classes
      self._event_shape = tuple(density.event_shape.as_list())
      if None in self._event_shape:
        raise ValueError(f'{density.name} must have a static event shape; got '
                         f'{density.event_shape}.')
      self._log_prob = self._distribution_log_prob(density)
    elif callable(density):
      if num_classes is None:
        raise ValueError('num_classes is needed with a log_prob function (it cannot be read '
                         'from a function).')
      self._event_shape = None
      self._log_prob = density
    else:
      raise TypeError(f'density must be a tfd.Distribution or a callable log_prob(x, '
                      f'labels); got {type(density).__name__}.')
    self._num_classes = _check_num_classes(num_classes)
    self._log_prior = _log_prior(class_prior, self._num_classes)
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
      raise ValueError(f'batch_size must be a positive int; got {batch_size!r}.')
    self._batch_size = int(batch_size)
    self._label_dtype = tf.as_dtype(label_dtype)
    if not self._label_dtype.is_integer:
      raise ValueError(f'label_dtype must be an integer dtype; got {self._label_dtype.name}.')

  @property
  def num_classes(self):
    """K."""
    return self._num_classes

  @property
  def log_prior(self):
    """`log p(y)`, a float64 array `(K,)`."""
    return self._log_prior.copy()

  def _distribution_log_prob(self, distribution):
    signature = [tf.TensorSpec([None] + list(self._event_shape), tf.float32),
                 tf.TensorSpec([None], tf.int32)]

    @tf.function(input_signature=signature, autograph=False)
    def log_prob(x, labels):
      return distribution.log_prob(x, bijector_kwargs={'conditional_input': labels})

    return log_prob

  def _check_inputs(self, x):
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 1:
      raise ValueError('x must have a batch axis: shape (N, ...); got a scalar.')
    if self._event_shape is not None and x.shape[1:] != self._event_shape:
      raise ValueError(f'x must have shape (N,) + {self._event_shape} (the flow\'s event '
                       f'shape); got {x.shape}.')
    return x

  def class_log_likelihoods(self, x):
    """`log p(x | y)` for every input and class: a float64 array `(N, K)`.

    Args:
      x: float array `(N,) + event_shape`, what the flow models (dequantized pixels in
        [0, 1] for images).
    """
    x = self._check_inputs(x)
    num_classes = self._num_classes
    chunks = [np.zeros((0, num_classes))]
    for start in range(0, len(x), self._batch_size):
      chunk = x[start:start + self._batch_size]
      n = len(chunk)
      tiled = np.broadcast_to(chunk, (num_classes,) + chunk.shape).reshape(
          (num_classes * n,) + chunk.shape[1:])
      labels = tf.constant(np.repeat(np.arange(num_classes), n),
                           dtype=self._label_dtype)
      log_prob = np.asarray(self._log_prob(tf.constant(tiled), labels), dtype=np.float64)
      if log_prob.shape != (num_classes * n,):
        raise ValueError(f'log_prob returned shape {log_prob.shape} for {num_classes * n} '
                         f'events; it must return one value per event.')
      chunks.append(log_prob.reshape(num_classes, n).T)
    return np.concatenate(chunks)

  def image_class_log_likelihoods(self, images, num_levels, num_samples=1, seed=0):
    """`log (1/S) sum_s p((k + u_s) / L | y)` for integer images `k`: float64 `(N, K)`.

    See the module docstring. The draws come from `np.random.default_rng(seed)`, one
    array of noise for all the images per draw (`tfp_realnvp.data.dequantize`), so the same
    arguments give the same numbers.

    Args:
      images: integer array `(N,) + event_shape` with values in `[0, num_levels)`.
      num_levels: L, the number of grey levels.
      num_samples: S >= 1, dequantization draws per image.
      seed: seed of the noise (anything `np.random.default_rng` takes).

    Raises:
      ValueError: for images that are not integers in the levels, or `num_samples < 1`.
    """
    if not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
      raise ValueError(f'num_samples must be an int >= 1; got {num_samples!r}.')
    rng = np.random.default_rng(seed)
    draws = np.stack([self.class_log_likelihoods(dequantize(images, num_levels, rng))
                      for _ in range(int(num_samples))])
    top = draws.max(axis=0)
    top = np.where(np.isfinite(top), top, 0.)
    return top + np.log(np.mean(np.exp(draws - top), axis=0))

  def log_joint(self, x):
    """`log p(x | y) + log p(y)`: a float64 array `(N, K)`."""
    return self.class_log_likelihoods(x) + self._log_prior

  def log_posteriors(self, x):
    """`log p(y | x)` by Bayes' rule: a float64 array `(N, K)`, rows normalised."""
    return class_log_posteriors(self.class_log_likelihoods(x), self._log_prior)

  def predict(self, x):
    """`argmax_y log p(x | y) + log p(y)`: an int64 array `(N,)`."""
    return self.predict_from_log_likelihoods(self.class_log_likelihoods(x))

  def predict_from_log_likelihoods(self, class_log_likelihoods):
    """The predictions for `log p(x | y)` computed before (e.g. averaged over noise)."""
    return np.argmax(class_log_posteriors(class_log_likelihoods, self._log_prior),
                     axis=1).astype(np.int64)

  def accuracy(self, x, labels):
    """The fraction of `x` whose prediction is its label.

    Args:
      x: inputs `(N,) + event_shape`.
      labels: integer labels `(N,)` in `[0, K)`, or one-hot rows `(N, K)`.

    Raises:
      ValueError: for a number of labels other than N, or labels out of range.
    """
    x = self._check_inputs(x)
    labels = _integer_labels(labels, self._num_classes, 'labels')
    if len(labels) != len(x):
      raise ValueError(f'got {len(labels)} labels for {len(x)} inputs; pass one label per '
                       f'input.')
    return accuracy(self.predict(x), labels)


def _check_num_classes(num_classes):
  if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
    raise ValueError(f'num_classes must be an int >= 2; got {num_classes!r}.')
  if num_classes < 2:
    raise ValueError(f'num_classes must be >= 2; got {num_classes}.')
  return int(num_classes)


def _integer_labels(labels, num_classes, what):
  """Integer labels `(N,)` from integers or one-hot rows `(N, K)`, checked."""
  labels = np.asarray(labels)
  if labels.ndim == 2 and np.issubdtype(labels.dtype, np.floating):
    if labels.shape[1] != num_classes:
      raise ValueError(f'one-hot {what} must have shape (N, {num_classes}); got '
                       f'{labels.shape}.')
    is_one_hot = np.isin(labels, (0., 1.)).all() and np.all(labels.sum(axis=1) == 1)
    if not is_one_hot:
      raise ValueError(f'{what} of shape {labels.shape} are floats but not one-hot rows.')
    return np.argmax(labels, axis=1)
  if not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f'{what} must be integers (N,) or one-hot rows (N, {num_classes}); got '
                     f'{labels.dtype} {labels.shape}.')
  if labels.ndim != 1:
    raise ValueError(f'integer {what} must have shape (N,); got {labels.shape}.')
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise ValueError(f'{what} must be in [0, {num_classes}); got values in '
                     f'[{labels.min()}, {labels.max()}].')
  return labels.astype(np.int64)


def _log_prior(class_prior, num_classes):
  if class_prior is None or (isinstance(class_prior, str) and class_prior == 'uniform'):
    return np.full([num_classes], -np.log(num_classes))
  if isinstance(class_prior, str):
    raise ValueError(f"class_prior must be None, 'uniform' or an array of {num_classes} "
                     f'probabilities; got {class_prior!r}.')
  prior = np.asarray(class_prior, dtype=np.float64)
  if prior.shape != (num_classes,):
    raise ValueError(f'class_prior must have shape ({num_classes},), one probability per '
                     f'class; got {prior.shape}.')
  if not np.isfinite(prior).all() or (prior < 0).any():
    raise ValueError(f'class_prior must hold finite non-negative probabilities; got {prior}.')
  if abs(prior.sum() - 1.) > 1e-6:
    raise ValueError(f'class_prior must sum to 1; it sums to {prior.sum():.6g}. '
                     f'class_frequencies(train_labels, K) gives the training frequencies.')
  with np.errstate(divide='ignore'):
    return np.log(prior)
