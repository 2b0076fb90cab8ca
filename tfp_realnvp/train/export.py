"""SavedModel export of a flow: `log_prob`, `bits_per_dim` and `sample` signatures.

The export is a `tf.Module` holding the flow's variables and `tf.function`s
with fixed input signatures that close over the flow. A program that loads
it needs TensorFlow only (no tfp_realnvp, no TFP, no Keras):

```python
import tensorflow as tf
model = tf.saved_model.load('run/saved_model')
log_prob = model.log_prob(images)             # (N,) nats, images (N, H, W, C) in [0, 1]
bpd = model.bits_per_dim(images)             # (N,)
x = model.sample(tf.constant(16), tf.constant(0.7), tf.constant(0, tf.int64))
# or through the signatures (dict outputs):
model.signatures['sample'](n=tf.constant(16), temperature=tf.constant(0.7),
                           seed=tf.constant(0, tf.int64))['images']
```
"""

import tensorflow as tf

from tfp_realnvp import bits
from tfp_realnvp.train.trainer import make_distribution

__all__ = ['FlowExport', 'export_saved_model']


class FlowExport(tf.Module):
  """The inference-mode functions of a trained flow, ready for SavedModel.

  Attributes (all `tf.function`s with input signatures):
    log_prob(x): log-density of `x` (float32 `(N,) + event_shape`, pixels in
      [0, 1]) in nats, shape `(N,)`.
    bits_per_dim(x): `(-log_prob(x) / D + log(num_levels)) / log(2)`.
    sample(n, temperature, seed): `n` images `flow.forward(T * eps)`,
      `eps ~ N(0, I)` drawn statelessly from the int64 `seed`.
    event_shape, num_levels: `tf.Variable`s describing the data.
  """

  def __init__(self, flow, event_shape, num_levels=256, name='real_nvp'):
    super().__init__(name=name)
    event_shape = tuple(int(d) for d in event_shape)
    # Tracked, so the SavedModel holds them; the flow itself (Keras objects
    # inside) stays out of the object graph.
    self.flow_variables = list(flow.variables)
    self.event_shape = tf.Variable(event_shape, dtype=tf.int64,
                                   trainable=False, name='event_shape')
    self.num_levels = tf.Variable(int(num_levels), dtype=tf.int64,
                                  trainable=False, name='num_levels')
    distribution = make_distribution(flow, event_shape)

    image_spec = tf.TensorSpec((None,) + event_shape, tf.float32, name='x')

    @tf.function(input_signature=[image_spec])
    def log_prob(x):
      return distribution.log_prob(x)

    @tf.function(input_signature=[image_spec])
    def bits_per_dim(x):
      return bits.bits_per_dim(log_prob(x), event_shape, num_levels)

    @tf.function(input_signature=[
        tf.TensorSpec([], tf.int32, name='n'),
        tf.TensorSpec([], tf.float32, name='temperature'),
        tf.TensorSpec([], tf.int64, name='seed')])
    def sample(n, temperature, seed):
      eps = tf.random.stateless_normal(
          tf.concat([[n], tf.constant(event_shape, tf.int32)], 0),
          seed=tf.stack([seed, tf.constant(0, tf.int64)]))
      return flow.forward(temperature * eps)

    self.log_prob = log_prob
    self.bits_per_dim = bits_per_dim
    self.sample = sample

  def signatures(self):
    """Serving signatures with named dict outputs."""

    @tf.function(input_signature=self.log_prob.input_signature)
    def log_prob(x):
      return {'log_prob': self.log_prob(x)}

    @tf.function(input_signature=self.bits_per_dim.input_signature)
    def bits_per_dim(x):
      return {'bits_per_dim': self.bits_per_dim(x)}

    @tf.function(input_signature=self.sample.input_signature)
    def sample(n, temperature, seed):
      return {'images': self.sample(n, temperature, seed)}

    return {'serving_default': log_prob.get_concrete_function(),
            'log_prob': log_prob.get_concrete_function(),
            'bits_per_dim': bits_per_dim.get_concrete_function(),
            'sample': sample.get_concrete_function()}


def export_saved_model(flow, event_shape, path, num_levels=256):
  """Saves `flow` (inference mode) as a SavedModel at `path`; returns `path`.

  Call it with a flow whose variables are plain (not distributed): e.g.
  `Trainer.export`, which copies the trained values into a fresh flow.
  """
  module = FlowExport(flow, event_shape, num_levels=num_levels)
  tf.saved_model.save(module, path, signatures=module.signatures())
  return path
