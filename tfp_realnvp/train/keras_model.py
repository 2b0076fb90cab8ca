"""The Keras path: `FlowModel(flow).fit(dataset)` maximises the likelihood."""

import logging
import os

import keras
import numpy as np
import tensorflow as tf

from tfp_realnvp.bits import bits_per_dim
from tfp_realnvp.train import recipe
from tfp_realnvp.train.checkpoints import CheckpointStore
from tfp_realnvp.train.checkpoints import NonFiniteStateError

__all__ = ['FlowModel', 'CheckpointCallback']

logger = logging.getLogger('tfp_realnvp.train')


def _images_and_labels(data, num_classes):
  """`(x, labels)` of a batch: `x` or `(x, y, ...)`; labels only for a conditional flow.

  An unconditional flow reads the first element of `(x, ...)` (Keras's `(x, y)` batches
  of a labelled dataset); a class-conditional one needs `(x, labels)`.
  """
  if num_classes is None:
    return (data[0] if isinstance(data, (tuple, list)) else data), None
  if not isinstance(data, (tuple, list)) or len(data) < 2:
    raise ValueError(
        f'FlowModel: the flow is class-conditional (num_classes={num_classes}): feed '
        f'(images, labels) batches, e.g. image_pipeline(..., labels=train_labels); got '
        f'images only.')
  labels = tf.convert_to_tensor(data[1])
  if not labels.dtype.is_integer or labels.shape.rank not in (None, 1):
    raise ValueError(f'FlowModel: labels must be integer class indices in [0, {num_classes})'
                     f' of shape (batch,); got {labels.dtype.name} labels of shape '
                     f'{labels.shape}.')
  labels = tf.cast(labels, tf.int32)
  check = tf.debugging.Assert(
      tf.logical_or(tf.equal(tf.size(labels), 0),
                    tf.logical_and(tf.reduce_min(labels) >= 0,
                                   tf.reduce_max(labels) < num_classes)),
      [f'FlowModel: labels must be class indices in [0, {num_classes}); got labels in',
       tf.reduce_min(labels), tf.reduce_max(labels)])
  with tf.control_dependencies([check]):
    return data[0], tf.identity(labels)


class FlowModel(keras.Model):
  """A `keras.Model` around a flow, trained by `fit` on batches of images.

  The loss is the recipe's (`tfp_realnvp.train.recipe`): the negative log-likelihood
  (nats per example, mean over the batch) plus the paper's L2 penalty on the couplings'
  s-scales; the metric `bits_per_dim` is the same likelihood in bits per dimension.
  `fit` runs the flow in training mode (batch statistics, running averages updated once
  per step); `evaluate` and `predict` (which returns `log_prob`) run it in inference
  mode. Gradients are clipped to `clip_norm` (global norm, over the global batch when a
  `tf.distribute` strategy is active). Image batches (event `(H, W, C)`) must hold
  pixels in [0, 1]; `fit` raises `InvalidArgumentError` otherwise.

  A class-conditional flow (`make_flow(..., num_classes=K)`) trains on `(images, labels)`
  batches (`image_pipeline(..., labels=train_labels)`) with the loss of `log p(x | y)`;
  `evaluate` takes the same pairs and `predict` returns `log p(x | y)` of `(x, y)` pairs.
  The labels are integer class indices in `[0, K)`; other labels, or images without
  labels, raise an error that says so. An unconditional flow ignores the second element
  of `(x, y)` batches.

  Mixed precision: under a global Keras policy (`keras.mixed_precision.set_global_policy(
  'mixed_float16')` before the flow is built, or `make_flow(..., mixed_precision=...)`)
  the s/t networks compute in float16 or bfloat16 while the model itself, the flow's
  arithmetic, the log-dets and the loss stay float32. With float16 networks `compile`
  wraps the optimizer in `keras.optimizers.LossScaleOptimizer` (dynamic loss scaling:
  steps with non-finite gradients are skipped and the scale halved).

  ```python
  with strategy.scope():          # optional
    model = FlowModel(make_flow((28, 28, 1), hidden_channels=32), (28, 28, 1))
    model.compile(keras.optimizers.Adam(1e-3))
  model.fit(train_batches, epochs=3, validation_data=test_batches,
            callbacks=[CheckpointCallback('run/checkpoints', every_n_steps=500),
                       keras.callbacks.TensorBoard('run/tensorboard')])
  ```

  Keras does not see the flow's `tf.Variable`s (Keras 3 tracks its own variables only):
  use `flow_variables` and `CheckpointCallback` (or a `tf.train.Checkpoint(
  flow=model.flow, optimizer=model.optimizer)`) rather than `model.save_weights`. When
  `fit` writes to a log file rather than a terminal, `verbose=2` (one line per epoch)
  keeps the progress bar's redraws out of it.

  Args:
    flow: the bijector, latent to data.
    event_shape: the data's event shape.
    num_levels: levels of the quantized data, for bits/dim.
    l2_scale: L2 penalty on `flow.l2_regularized_variables`.
    clip_norm: gradient clipping norm; None: no clipping.
    **kwargs: passed to `keras.Model` (e.g. `name`); the model's own dtype policy is
      float32 whatever the global policy.
  """

  def __init__(self, flow, event_shape, num_levels=256, l2_scale=recipe.L2_SCALE,
               clip_norm=recipe.CLIP_NORM, **kwargs):
    kwargs['dtype'] = 'float32'
    super().__init__(**kwargs)
    self.flow = flow
    self.event_shape = tuple(int(d) for d in event_shape)
    self.num_levels = int(num_levels)
    self.l2_scale = float(l2_scale)
    self.clip_norm = clip_norm
    self.distribution = recipe.make_distribution(flow, self.event_shape)
    self.num_classes = recipe.flow_num_classes(flow)
    self._flow_variables = list(self.distribution.trainable_variables)
    self._l2_variables = list(getattr(flow, 'l2_regularized_variables', ()))
    self.loss_tracker = keras.metrics.Mean(name='loss')
    self.bpd_tracker = keras.metrics.Mean(name='bits_per_dim')
    self.built = True

  @property
  def flow_variables(self):
    """The flow's trainable `tf.Variable`s (what the optimizer updates)."""
    return list(self._flow_variables)

  @property
  def metrics(self):
    return [self.loss_tracker, self.bpd_tracker]

  def compile(self, optimizer=None, jit_compile=False, **kwargs):
    """Compiles with Adam(1e-3) by default and builds it on the flow's variables.

    With float16 s/t networks the optimizer is wrapped in a `LossScaleOptimizer`.
    """
    if optimizer is None:
      optimizer = keras.optimizers.Adam(recipe.LEARNING_RATE)
    if recipe.uses_float16(self.flow) and not isinstance(
        optimizer, keras.optimizers.LossScaleOptimizer):
      optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
    if not self.optimizer.built:
      self.optimizer.build(self._flow_variables)

  def call(self, inputs, training=False):
    """`log_prob(x)` of `inputs = x` (`log p(x | y)` of `inputs = (x, y)` for a
    class-conditional flow); training mode updates the batch-norm statistics."""
    x, labels = _images_and_labels(inputs, self.num_classes)
    x = tf.cast(x, tf.float32)
    if training:
      return recipe.training_log_prob(self.distribution, x, labels)
    return recipe.inference_log_prob(self.distribution, x, labels)

  def _update_metrics(self, log_prob, loss):
    # The control dependency ties the metrics' counts to the data: Keras runs the step
    # once more on an exhausted dataset of unknown length, and counts that do not
    # depend on the batch would then still be added.
    with tf.control_dependencies([log_prob, loss]):
      self.loss_tracker.update_state(loss)
      self.bpd_tracker.update_state(
          bits_per_dim(log_prob, self.event_shape, self.num_levels))
    return {m.name: m.result() for m in self.metrics}

  def _check_pixels(self, x):
    if len(self.event_shape) != 3:
      return x
    x = tf.cast(x, tf.float32)
    finite = tf.where(tf.math.is_finite(x), x, tf.fill(tf.shape(x), 0.5))
    check = tf.debugging.Assert(
        tf.logical_and(tf.reduce_min(finite) >= 0., tf.reduce_max(finite) <= 1.),
        ['FlowModel: pixels must lie in [0, 1] (dequantized images, see '
         'tfp_realnvp.data.image_pipeline); got values in', tf.reduce_min(finite),
         tf.reduce_max(finite)])
    with tf.control_dependencies([check]):
      return tf.identity(x)

  def train_step(self, data):
    x, labels = _images_and_labels(data, self.num_classes)
    x = self._check_pixels(x)
    variables = self._flow_variables
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context else 1
    scaling = isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
    with tf.GradientTape() as tape:
      loss, log_prob = recipe.maximum_likelihood_loss(
          self.distribution, x, self._l2_variables, self.l2_scale, labels=labels)
      scaled = self.optimizer.scale_loss(loss) if scaling else loss
    grads = tape.gradient(scaled, variables)
    grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
    if replicas > 1:
      # Clip the gradient of the global batch, then hand the optimizer a share that its
      # own sum over replicas turns back into it.
      grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
      grads = [g / replicas for g in grads]
    if self.clip_norm is not None:
      # Scaled gradients: the same clipping at the scaled norm (the optimizer unscales).
      scale = tf.cast(self.optimizer.dynamic_scale, tf.float32) if scaling else 1.
      grads, _ = recipe.clip_gradients(grads, self.clip_norm * scale)
    if replicas > 1:
      grads = [g / replicas for g in grads]
    self.optimizer.apply(grads, variables)
    return self._update_metrics(log_prob, loss)

  def test_step(self, data):
    x, labels = _images_and_labels(data, self.num_classes)
    log_prob = self(x if labels is None else (x, labels), training=False)
    loss = (-tf.reduce_mean(log_prob)
            + recipe.l2_penalty(self._l2_variables, self.l2_scale))
    return self._update_metrics(log_prob, loss)

  def predict_step(self, data):
    x, labels = _images_and_labels(data, self.num_classes)
    return self(x if labels is None else (x, labels), training=False)


class CheckpointCallback(keras.callbacks.Callback):
  """Saves a `FlowModel`'s flow and optimizer with `tfp_realnvp.train.checkpoints`.

  Writes every `every_n_steps` batches (if given) and at each epoch's end, numbered by
  the optimizer's iteration count, into the rotation of a `CheckpointStore`; skips (and
  logs) a save when a variable or the batch's loss is not finite, so no checkpoint holds
  NaN. An epoch's checkpoint is also kept as the last good one (`checkpoints/good/`) when
  the epoch's loss was finite. With `rollback_on_nan`, a batch whose loss is not finite
  sends the model back to that last good checkpoint. `restore()` loads the newest
  checkpoint that loads (call it after `compile`), e.g. to resume with
  `fit(..., initial_epoch=...)`; the checkpoints it skipped are logged and kept in
  `skipped`.

  Args:
    directory: the checkpoint folder.
    every_n_steps: optional save interval in batches.
    max_to_keep: checkpoints kept in the rotation.
    rollback_on_nan: restore the last good checkpoint after a non-finite loss.
  """

  def __init__(self, directory, every_n_steps=None, max_to_keep=3, rollback_on_nan=False):
    super().__init__()
    self.directory = os.fspath(directory)
    self.every_n_steps = every_n_steps
    self.max_to_keep = max_to_keep
    self.rollback_on_nan = rollback_on_nan
    self.skipped = ()
    self._store = None
    self._epoch = None
    self._last_loss_finite = True
    self._epoch_finite = True

  @property
  def store(self):
    """The `CheckpointStore` (created at first use, after `compile`)."""
    if self._store is None:
      model = self.model
      self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name='epoch')
      checkpoint = tf.train.Checkpoint(flow=model.flow, optimizer=model.optimizer,
                                       epoch=self._epoch)
      self._store = CheckpointStore(checkpoint, self.directory,
                                    max_to_keep=self.max_to_keep,
                                    checked_variables=model.flow.variables)
    return self._store

  @property
  def manager(self):
    return self.store.manager

  def restore(self):
    """Restores the newest checkpoint that loads; returns the saved epoch or None."""
    result = self.store.restore_newest()
    self.skipped = result.skipped
    if result.path is None:
      return None
    logger.info('restored %s (epoch %d)', result.path, int(self._epoch.numpy()))
    return int(self._epoch.numpy())

  def _save(self, epoch, keep_good=False):
    step = int(self.model.optimizer.iterations.numpy())
    if not self._last_loss_finite:
      logger.warning('not saving a checkpoint at step %d: non-finite loss', step)
      return None
    self._epoch.assign(epoch)
    try:
      path = self.store.save(step)
      if keep_good:
        self.store.keep('good', step)
    except NonFiniteStateError as err:
      logger.warning('%s', err)
      return None
    logger.info('saved checkpoint %s (step %d)', path, step)
    return path

  def on_train_begin(self, logs=None):
    self.store  # pylint: disable=pointless-statement

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch_finite = True

  def on_train_batch_end(self, batch, logs=None):
    loss = (logs or {}).get('loss')
    if loss is not None:
      self._last_loss_finite = bool(np.isfinite(float(loss)))
      self._epoch_finite = self._epoch_finite and self._last_loss_finite
    if not self._last_loss_finite and self.rollback_on_nan:
      good = self.store.slot_checkpoint('good')
      if good is not None:
        self.store.restore(good)
        logger.warning('non-finite loss: went back to %s', good)
        self._last_loss_finite = True
      return
    if self.every_n_steps:
      step = int(self.model.optimizer.iterations.numpy())
      if step % self.every_n_steps == 0:
        self._save(int(self._epoch.numpy()))

  def on_epoch_end(self, epoch, logs=None):
    self._save(epoch + 1, keep_good=self._epoch_finite)
