"""SavedModel export of a flow: `log_prob`, `bits_per_dim` and `sample` signatures.

The export is a `tf.Module` holding the flow's variables and `tf.function`s with input
signatures that close over the flow. A program that loads it needs TensorFlow only (no
tfp_realnvp, no TFP, no Keras):

```python
import tensorflow as tf
model = tf.saved_model.load('run/saved_model')
log_prob = model.log_prob(images)        # (N,) nats; images float32 (N, H, W, C) in [0, 1]
bpd = model.bits_per_dim(images)         # (N,)
x = model.sample(tf.constant(16), tf.constant(0.7), tf.constant(0, tf.int64))
# or through the signatures (dict outputs):
model.signatures['sample'](n=tf.constant(16), temperature=tf.constant(0.7),
                           seed=tf.constant(0, tf.int64))['images']
```

A class-conditional flow (`num_classes=K`) is exported with the class as an input:

```python
log_prob = model.log_prob(images, labels)        # log p(x | y); labels int32 (N,) or ()
bpd = model.bits_per_dim(images, labels)
x = model.sample(tf.constant(16), tf.constant(3), tf.constant(0.7),
                 tf.constant(0, tf.int64))       # 16 images of class 3
model.signatures['sample'](n=..., label=..., temperature=..., seed=...)['images']
model.num_classes                                # K
```

`label` is one int32 class index for all the images or one per image, in `[0, K)`;
anything else raises `InvalidArgumentError` saying so.

The functions check their inputs as the library does with `validate_args=True`: images
must be float32 of shape `(N,) + event_shape`, finite, with pixels in [0, 1] (dequantized
`(k + u) / num_levels`; integer images such as uint8 0..255 must be scaled first);
otherwise they raise `InvalidArgumentError` saying which. `n = 0` images give empty
results. `sample` clips its images to [0, 1]: the flow's `forward` is exact on the whole
latent space, so a latent far out in the tails maps slightly outside the pixel range.

`export_saved_model` checks the model before it writes anything: `log_prob` of real
images and samples must be finite.
"""

import os
import shutil

import numpy as np
import tensorflow as tf

from tfp_realnvp import bits
from tfp_realnvp.latents import sample_latents
from tfp_realnvp.train.health import RunUnhealthyError
from tfp_realnvp.train.recipe import flow_num_classes
from tfp_realnvp.train.recipe import make_distribution

__all__ = ['FlowExport', 'UnhealthyExportError', 'check_export', 'export_saved_model']

_CHECK_SEED = 0


class UnhealthyExportError(RunUnhealthyError):
  """The model to export gives non-finite log-probabilities or samples."""


class FlowExport(tf.Module):
  """The inference-mode functions of a trained flow, ready for SavedModel.

  Attributes (all `tf.function`s with input signatures):
    log_prob(x): log-density of `x` (float32 `(N,) + event_shape`, pixels in [0, 1]) in
      nats, shape `(N,)`.
    bits_per_dim(x): `(-log_prob(x) / D + log(num_levels)) / log(2)`.
    sample(n, temperature, seed): `n` images `clip(flow.forward(z), 0, 1)` with
      `z = tfp_realnvp.latents.sample_latents(event_shape, n, temperature, seed)`.
    event_shape, num_levels: `tf.Variable`s describing the data.

  For a class-conditional flow the functions take the class too, `label` (int32, one
  class index for all or one per image, in `[0, num_classes)`): `log_prob(x, label)`
  (`log p(x | y)`), `bits_per_dim(x, label)` and `sample(n, label, temperature, seed)`;
  `num_classes` is a `tf.Variable` as well.
  """

  def __init__(self, flow, event_shape, num_levels=256, name='real_nvp'):
    super().__init__(name=name)
    event_shape = tuple(int(d) for d in event_shape)
    # Tracked, so the SavedModel holds them; the flow itself (Keras objects inside)
    # stays out of the object graph.
    self.flow_variables = list(flow.variables)
    self.event_shape = tf.Variable(event_shape, dtype=tf.int64, trainable=False,
                                   name='event_shape')
    self.num_levels = tf.Variable(int(num_levels), dtype=tf.int64, trainable=False,
                                  name='num_levels')
    distribution = make_distribution(flow, event_shape)
    num_classes = flow_num_classes(flow)
    self.conditional = num_classes is not None
    shape_text = '(N, ' + ', '.join(str(d) for d in event_shape) + ')'
    image_spec = tf.TensorSpec(None, tf.float32, name='x')

    def check_images(x):
      rank = len(event_shape) + 1
      # The shape padded to the expected rank, so that any rank compares.
      padded = tf.concat([tf.shape(x), tf.zeros([rank], tf.int32)], 0)[:rank]
      shape_ok = tf.logical_and(
          tf.equal(tf.rank(x), rank),
          tf.reduce_all(tf.equal(padded[1:], tf.constant(event_shape, tf.int32))))
      checks = [tf.debugging.Assert(
          shape_ok, [f'x must have shape {shape_text}; got shape', tf.shape(x)])]
      with tf.control_dependencies(checks):
        checks = [tf.debugging.assert_all_finite(x, 'x holds NaN or infinite values')]
      with tf.control_dependencies(checks):
        checks = [
            tf.debugging.assert_greater_equal(
                tf.reduce_min(x), 0.,
                message='pixels must lie in [0, 1] (dequantized images (k + u) / '
                        'num_levels); x holds values below 0'),
            tf.debugging.assert_less_equal(
                tf.reduce_max(x), 1.,
                message='pixels must lie in [0, 1] (dequantized images (k + u) / '
                        'num_levels; scale integer images such as uint8 0..255 '
                        'first); x holds values above 1'),
        ]
      with tf.control_dependencies(checks):
        return tf.ensure_shape(tf.identity(x), (None,) + event_shape)

    def check_sampling(n, temperature):
      return [
          tf.debugging.assert_non_negative(n, message='n must be >= 0'),
          tf.debugging.assert_all_finite(temperature, 'temperature must be finite'),
          tf.debugging.assert_non_negative(temperature,
                                           message='temperature must be >= 0'),
      ]

    sample_specs = dict(n=tf.TensorSpec([], tf.int32, name='n'),
                        temperature=tf.TensorSpec([], tf.float32, name='temperature'),
                        seed=tf.TensorSpec([], tf.int64, name='seed'))
    if num_classes is None:

      @tf.function(input_signature=[image_spec])
      def log_prob(x):
        x = check_images(x)
        return tf.cond(tf.shape(x)[0] > 0, lambda: distribution.log_prob(x),
                       lambda: tf.zeros([0], tf.float32))

      @tf.function(input_signature=[image_spec])
      def bits_per_dim(x):
        return bits.bits_per_dim(log_prob(x), event_shape, num_levels)

      @tf.function(input_signature=[sample_specs['n'], sample_specs['temperature'],
                                    sample_specs['seed']])
      def sample(n, temperature, seed):
        with tf.control_dependencies(check_sampling(n, temperature)):
          z = sample_latents(event_shape, n, temperature, seed)
        images = tf.cond(n > 0, lambda: flow.forward(z), lambda: z)
        return tf.clip_by_value(images, 0., 1.)
    else:
      self.num_classes = tf.Variable(num_classes, dtype=tf.int64, trainable=False,
                                     name='num_classes')
      label_spec = tf.TensorSpec(None, tf.int32, name='label')

      def check_labels(label, n):
        """`label` () or (n,) -> (n,), checked for its shape and its range."""
        is_scalar = tf.equal(tf.rank(label), 0)
        shape_ok = tf.logical_or(is_scalar, tf.logical_and(
            tf.equal(tf.rank(label), 1), tf.equal(tf.size(label), n)))
        checks = [tf.debugging.Assert(
            shape_ok, ['label must be one class index for all images or one per image, '
                       'shape () or (N,); got shape', tf.shape(label), 'for N =', n])]
        with tf.control_dependencies(checks):
          labels = tf.broadcast_to(tf.reshape(label, [-1]), [n])
        in_range = tf.logical_or(tf.equal(tf.size(labels), 0), tf.logical_and(
            tf.reduce_min(labels) >= 0, tf.reduce_max(labels) < num_classes))
        checks = [tf.debugging.Assert(
            in_range, [f'label must be a class index in [0, {num_classes}); got labels '
                       f'in', tf.reduce_min(labels), tf.reduce_max(labels)])]
        with tf.control_dependencies(checks):
          return tf.identity(labels)

      @tf.function(input_signature=[image_spec, label_spec])
      def log_prob(x, label):
        x = check_images(x)
        labels = check_labels(label, tf.shape(x)[0])
        return tf.cond(
            tf.shape(x)[0] > 0,
            lambda: distribution.log_prob(x, bijector_kwargs={'conditional_input': labels}),
            lambda: tf.zeros([0], tf.float32))

      @tf.function(input_signature=[image_spec, label_spec])
      def bits_per_dim(x, label):
        return bits.bits_per_dim(log_prob(x, label), event_shape, num_levels)

      @tf.function(input_signature=[sample_specs['n'], label_spec,
                                    sample_specs['temperature'], sample_specs['seed']])
      def sample(n, label, temperature, seed):
        with tf.control_dependencies(check_sampling(n, temperature)):
          z = sample_latents(event_shape, n, temperature, seed)
          labels = check_labels(label, n)
        images = tf.cond(n > 0, lambda: flow.forward(z, conditional_input=labels),
                         lambda: z)
        return tf.clip_by_value(images, 0., 1.)

    self.log_prob = log_prob
    self.bits_per_dim = bits_per_dim
    self.sample = sample

  def signatures(self):
    """Serving signatures with named dict outputs."""
    if self.conditional:
      return self._conditional_signatures()

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

  def _conditional_signatures(self):

    @tf.function(input_signature=self.log_prob.input_signature)
    def log_prob(x, label):
      return {'log_prob': self.log_prob(x, label)}

    @tf.function(input_signature=self.bits_per_dim.input_signature)
    def bits_per_dim(x, label):
      return {'bits_per_dim': self.bits_per_dim(x, label)}

    @tf.function(input_signature=self.sample.input_signature)
    def sample(n, label, temperature, seed):
      return {'images': self.sample(n, label, temperature, seed)}

    return {'serving_default': log_prob.get_concrete_function(),
            'log_prob': log_prob.get_concrete_function(),
            'bits_per_dim': bits_per_dim.get_concrete_function(),
            'sample': sample.get_concrete_function()}


def check_export(module, flow, event_shape, check_images, num_samples=16, check_labels=None):
  """Raises `UnhealthyExportError` unless the flow's variables, `log_prob(check_images)`
  and samples are finite.

  The variables are checked first: a fused graph-mode convolution and ReLU can turn a NaN
  weight into finite but meaningless outputs. The samples are checked before the
  export's clipping (`flow.forward` of latents at temperature 1 from a fixed seed). For a
  class-conditional flow `check_labels` are the classes of `check_images`, and the
  samples cycle through the classes.
  """
  for v in flow.variables:
    if v.dtype.is_floating and not np.all(np.isfinite(v.numpy())):
      raise UnhealthyExportError(f'the model to export has a non-finite variable '
                                 f'{getattr(v, "path", None) or v.name}: not exported.')
  num_classes = flow_num_classes(flow)
  x = tf.convert_to_tensor(check_images, tf.float32)
  if num_classes is None:
    log_prob = module.log_prob(x).numpy()
  else:
    if check_labels is None:
      raise ValueError('the flow is class-conditional: check_export needs the labels of '
                       'check_images (check_labels).')
    log_prob = module.log_prob(x, tf.convert_to_tensor(check_labels, tf.int32)).numpy()
  bad = int(np.sum(~np.isfinite(log_prob)))
  if bad:
    raise UnhealthyExportError(
        f'the model to export gives a non-finite log_prob for {bad} of '
        f'{len(log_prob)} real test images: not exported.')
  latents = sample_latents(event_shape, num_samples, 1., _CHECK_SEED)
  if num_classes is None:
    images = flow.forward(latents).numpy()
  else:
    images = flow.forward(latents, conditional_input=tf.range(num_samples) % num_classes)
    images = images.numpy()
  if not np.all(np.isfinite(images)):
    raise UnhealthyExportError(
        f'the model to export draws non-finite samples '
        f'({int(np.sum(~np.isfinite(images)))} values of {images.size}): not exported.')


def _replace_folder(source, target):
  """Moves `source` to `target`, replacing what `target` held."""
  old = f'{target}.old-{os.getpid()}'
  if os.path.exists(target):
    os.rename(target, old)
  os.rename(source, target)
  shutil.rmtree(old, ignore_errors=True)


def export_saved_model(flow, event_shape, path, num_levels=256, check_images=None,
                       check_labels=None):
  """Saves `flow` (inference mode) as a SavedModel at `path`; returns `path`.

  Call it with a flow whose variables are plain (not distributed): e.g.
  `Trainer.export`, which copies the trained values into a fresh flow. The model is
  written next to `path` first and moved into place when complete, so `path` never
  holds half a SavedModel.

  Args:
    flow: the flow bijector.
    event_shape: the data's event shape.
    path: the SavedModel folder.
    num_levels: levels of the quantized data, for bits/dim.
    check_images: optional batch of real images (float32 in [0, 1]): nothing is
      written unless `log_prob` on them and samples are finite.
    check_labels: the integer classes of `check_images`, for a class-conditional flow.

  Raises:
    UnhealthyExportError: the check failed; nothing was written.
  """
  path = os.fspath(path)
  module = FlowExport(flow, event_shape, num_levels=num_levels)
  if check_images is not None:
    check_export(module, flow, tuple(event_shape), check_images, check_labels=check_labels)
  partial = f'{path}.writing-{os.getpid()}'
  shutil.rmtree(partial, ignore_errors=True)
  tf.saved_model.save(module, partial, signatures=module.signatures())
  _replace_folder(partial, path)
  return path
