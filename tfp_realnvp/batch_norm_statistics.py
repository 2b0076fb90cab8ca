"""Recompute the running averages of a flow's batch norms over a dataset, after training.

A flow trained with batch normalisation evaluates with running averages of batch statistics
that lag behind the weights (they mix statistics of batches seen under earlier weights), so
inference can score worse than training suggests; small datasets and short runs suffer most.
`recompute_batch_norm_statistics` replaces every running average with the plain average of
the statistics of the given batches, under the final weights.
"""

import keras
import tensorflow as tf

from tfp_realnvp import _compat
from tfp_realnvp.bijectors.invertible_batch_norm import InvertibleBatchNorm

__all__ = ['recompute_batch_norm_statistics']


def recompute_batch_norm_statistics(flow, batches, max_batches=None, **call_kwargs):
  """Sets every running average of `flow`'s batch norms to its average over `batches`.

  Runs `flow.inverse(x, training=True)` over the batches (no gradient, no weight changes)
  with the momentum of every batch norm, the flow's `InvertibleBatchNorm`s and the Keras
  `BatchNormalization` layers inside the s/t networks, set to `k / (k + 1)` at batch `k`: so
  batch 0 replaces the old statistics, and after K batches each running mean (and variance)
  is the mean of the K batch means (and batch variances) that layer saw, each layer seeing
  its input as the flow in training mode computes it. The momenta are put back afterwards.
  Use a pass over the training data (in the same dequantization as training), e.g. the
  training pipeline without shuffling; a few thousand images are usually enough.

  Call it outside any `tf.distribute` replica function (on one device, or in the strategy's
  cross-replica context), after training and before evaluating or exporting.

  Args:
    flow: a bijector (e.g. `RealNVPChain`) with batch norms.
    batches: an iterable of data batches (a `tf.data.Dataset` or a list of arrays), or of
      `(images, labels)` pairs for a class-conditional flow.
    max_batches: use at most this many batches.
    **call_kwargs: more keyword arguments of `flow.inverse`.

  Returns:
    The number of batches used.

  Raises:
    ValueError: if `flow` has no batch norm or `batches` is empty.

  #### References
  [1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
       ICLR 2017, appendix E. https://arxiv.org/abs/1605.08803
  [2]: Sergey Ioffe, Christian Szegedy. Batch Normalization. ICML 2015, sec. 3.1 (inference
       with population statistics). https://arxiv.org/abs/1502.03167
  """
  layers = _batch_norm_layers(flow)
  if not layers:
    raise ValueError('recompute_batch_norm_statistics: the flow has no batch norm.')
  momentum = tf.Variable(0., trainable=False, name='recompute_momentum')
  saved = [(layer, attribute, getattr(layer, attribute)) for layer, attribute in layers]

  @tf.function
  def absorb(x, labels):
    kwargs = dict(call_kwargs)
    if labels is not None:
      kwargs['conditional_input'] = labels
    flow.inverse(x, training=True, **kwargs)

  count = 0
  try:
    for layer, attribute, _ in saved:
      # Past the tracking of tf.Module and Keras: the variable is not one of their weights.
      object.__setattr__(layer, attribute, momentum)
    for batch in batches:
      if max_batches is not None and count >= max_batches:
        break
      x, labels = batch if isinstance(batch, (tuple, list)) else (batch, None)
      momentum.assign(count / (count + 1.))
      absorb(tf.convert_to_tensor(x, tf.float32),
             None if labels is None else tf.convert_to_tensor(labels))
      count += 1
  finally:
    for layer, attribute, value in saved:
      object.__setattr__(layer, attribute, value)
  if not count:
    raise ValueError('recompute_batch_norm_statistics: no batch was given.')
  return count


def _batch_norm_layers(flow):
  """`(layer, name of its momentum attribute)` of every batch norm in `flow`."""
  found = []
  for module in [flow] + list(flow.submodules):
    if isinstance(module, InvertibleBatchNorm):
      found.append((module, '_momentum'))
    network = getattr(module, 'network', None)
    if isinstance(network, keras.layers.Layer):
      found += [(layer, 'momentum') for layer in _compat.keras_sublayers(network)
                if isinstance(layer, keras.layers.BatchNormalization)]
  return found
