"""Base class for bijectors that compute a value and its log-det in one pass."""

import threading

import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability.python.internal import cache_util

tfb = tfp.bijectors

__all__ = ['FlowBijector']


class FlowBijector(tfb.Bijector):
  """A `tfb.Bijector` whose subclasses return value and log-det together.

  TFP asks for `inverse(y)` and `inverse_log_det_jacobian(y)` in two calls (as
  `TransformedDistribution.log_prob` does). A coupling layer computes both from
  the same run of its s/t network, and an invertible batch norm in training mode
  must update its running statistics once per pass, not once per call. So, as
  TFP's own `tfb.FFJORD` does, subclasses implement

  ```none
  _forward_and_log_det(x, training=False) -> (y, fldj)   # fldj reduced per event
  _inverse_and_log_det(y, training=False) -> (x, ildj)
  ```

  and a greedy-attribute cache stores the log-det beside the value, keyed by
  the input tensor and the keyword arguments. The network therefore runs once
  per `log_prob` and once per `sample`.

  Each public `forward` or `inverse` call starts with an empty cache: an
  entry made by an earlier call may predate a variable update (an eager
  training loop that feeds the same batch tensor every step would otherwise
  get the old log-det, and no gradient). The log-det calls that follow a
  `forward`/`inverse` on the same tensor, as in `log_prob`, still find it.

  The cache is one per thread. `tf.distribute.MirroredStrategy` runs (and
  traces) each replica in a thread of its own; with one shared cache, the
  clearing done by one replica's call would make another replica run its
  networks twice, so the replicas would issue their batch-norm all-reduces in
  different orders.

  Every subclass follows TFP's direction convention: `forward` maps latent to
  data (sampling) and `inverse` is the paper's `f`, data to latent (density).
  The keyword `training` is accepted by every method; only layers with batch
  statistics look at it.
  """

  _thread_caches = threading.local()

  @property
  def _cache(self):
    cache = getattr(self._thread_caches, 'cache', None)
    if cache is None:
      cache = cache_util.BijectorCacheWithGreedyAttrs(
          forward_name='_augmented_forward',
          inverse_name='_augmented_inverse')
      self._thread_caches.cache = cache
    return cache.__get__(self, type(self))   # the view bound to this bijector

  # -- to implement ---------------------------------------------------------
  def _forward_and_log_det(self, x, training=False):
    raise NotImplementedError

  def _inverse_and_log_det(self, y, training=False):
    raise NotImplementedError

  # -- TFP plumbing -----------------------------------------------------------
  def forward(self, x, name='forward', **kwargs):
    self._cache.clear()
    return super().forward(x, name=name, **kwargs)

  def inverse(self, y, name='inverse', **kwargs):
    self._cache.clear()
    return super().inverse(y, name=name, **kwargs)

  def _augmented_forward(self, x, **kwargs):
    y, fldj = self._forward_and_log_det(x, **kwargs)
    return y, {'fldj': fldj, 'ildj': -fldj}

  def _augmented_inverse(self, y, **kwargs):
    x, ildj = self._inverse_and_log_det(y, **kwargs)
    return x, {'ildj': ildj, 'fldj': -ildj}

  def _forward(self, x, **kwargs):
    return self._augmented_forward(x, **kwargs)[0]

  def _inverse(self, y, **kwargs):
    return self._augmented_inverse(y, **kwargs)[0]

  def _forward_log_det_jacobian(self, x, **kwargs):
    cached = self._cache.forward_attributes(x, **kwargs)
    if 'fldj' not in cached:
      cached.update(self._augmented_forward(x, **kwargs)[1])
    return cached['fldj']

  def _inverse_log_det_jacobian(self, y, **kwargs):
    cached = self._cache.inverse_attributes(y, **kwargs)
    if 'ildj' not in cached:
      cached.update(self._augmented_inverse(y, **kwargs)[1])
    return cached['ildj']

  # -- helpers for composites -------------------------------------------------
  def forward_and_log_det(self, x, training=False):
    """Returns `(forward(x), forward_log_det_jacobian(x))` from one pass.

    The log-det is reduced over this bijector's event (one value per example).
    Unlike the public TFP methods this does not consult the cache; composite
    bijectors of this package use it to walk their parts.
    """
    return self._forward_and_log_det(tf.convert_to_tensor(x), training=training)

  def inverse_and_log_det(self, y, training=False):
    """Returns `(inverse(y), inverse_log_det_jacobian(y))` from one pass."""
    return self._inverse_and_log_det(tf.convert_to_tensor(y), training=training)

  @property
  def l2_regularized_variables(self):
    """Variables that the paper's L2 penalty (5e-5) applies to; default none."""
    return ()

  def _maybe_assert_finite(self, x):
    """With `validate_args`, fails at run time on NaN or Inf in `x`."""
    if not self.validate_args:
      return x
    return assert_finite(x, self.name)


def assert_finite(x, name):
  """`x`, after a run-time check that it holds no NaN or Inf."""
  with tf.control_dependencies([tf.debugging.assert_all_finite(
      x, f'{name}: input contains NaN or Inf')]):
    return tf.identity(x)


def reduce_event(values, event_ndims):
  """Sums `values` over its last `event_ndims` axes."""
  if event_ndims == 0:
    return values
  return tf.reduce_sum(values, axis=list(range(-event_ndims, 0)))
