"""The Keras path: `FlowModel(flow).fit(dataset)` maximises the likelihood."""

import logging
import os

import keras
import numpy as np
import tensorflow as tf

from tfp_realnvp.bits import bits_per_dim
from tfp_realnvp.train.trainer import l2_penalty
from tfp_realnvp.train.trainer import make_distribution

__all__ = ['FlowModel', 'CheckpointCallback']

logger = logging.getLogger('tfp_realnvp.train')


class FlowModel(keras.Model):
  """A `keras.Model` around a flow, trained by `fit` on batches of images.

  The loss is the negative log-likelihood (nats per example, mean over the
  batch) plus the paper's L2 penalty on the couplings' s-scales; the metric
  `bits_per_dim` is the same likelihood in bits per dimension. `fit` runs the
  flow in training mode (batch statistics, running averages updated once per
  step); `evaluate` and `predict` (which returns `log_prob`) run it in
  inference mode. Gradients are clipped to `clip_norm` (global norm, over the
  global batch when a `tf.distribute` strategy is active).

  ```python
  with strategy.scope():          # optional
    model = FlowModel(RealNVPChain((28, 28, 1), hidden_channels=32), (28, 28, 1))
    model.compile(keras.optimizers.Adam(1e-3))
  model.fit(train_batches, epochs=3, validation_data=test_batches,
            callbacks=[CheckpointCallback('run/checkpoints', every_n_steps=500),
                       keras.callbacks.TensorBoard('run/tensorboard')])
  ```

  Keras does not see the flow's `tf.Variable`s (Keras 3 tracks its own
  variables only): use `flow_variables` and `CheckpointCallback` (or a
  `tf.train.Checkpoint(flow=model.flow, optimizer=model.optimizer)`) rather
  than `model.save_weights`.

  Args:
    flow: the bijector, latent to data.
    event_shape: the data's event shape.
    num_levels: levels of the quantized data, for bits/dim.
    l2_scale: L2 penalty on `flow.l2_regularized_variables`.
    clip_norm: gradient clipping norm; None: no clipping.
    **kwargs: passed to `keras.Model` (e.g. `name`).
  """

  def __init__(self, flow, event_shape, num_levels=256, l2_scale=5e-5,
               clip_norm=100., **kwargs):
    super().__init__(**kwargs)
    self.flow = flow
    self.event_shape = tuple(int(d) for d in event_shape)
    self.num_levels = int(num_levels)
    self.l2_scale = float(l2_scale)
    self.clip_norm = clip_norm
    self.distribution = make_distribution(flow, self.event_shape)
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
    """Compiles with Adam(1e-3) by default and builds it on the flow's variables."""
    if optimizer is None:
      optimizer = keras.optimizers.Adam(1e-3)
    super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
    if not self.optimizer.built:
      self.optimizer.build(self._flow_variables)

  def call(self, x, training=False):
    """`log_prob(x)`; training mode updates the batch-norm statistics."""
    if training:
      return self.distribution.log_prob(x, bijector_kwargs={'training': True})
    return self.distribution.log_prob(x)

  def _update_metrics(self, log_prob, loss):
    # The control dependency ties the metrics' counts to the data: Keras runs
    # the step once more on an exhausted dataset of unknown length, and
    # counts that do not depend on the batch would then still be added.
    with tf.control_dependencies([log_prob, loss]):
      self.loss_tracker.update_state(loss)
      self.bpd_tracker.update_state(
          bits_per_dim(log_prob, self.event_shape, self.num_levels))
    return {m.name: m.result() for m in self.metrics}

  def train_step(self, data):
    x = data[0] if isinstance(data, (tuple, list)) else data
    variables = self._flow_variables
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context else 1
    with tf.GradientTape() as tape:
      log_prob = self(x, training=True)
      loss = (-tf.reduce_mean(log_prob)
              + l2_penalty(self._l2_variables, self.l2_scale))
    grads = tape.gradient(loss, variables)
    grads = [tf.zeros_like(v) if g is None else g
             for g, v in zip(grads, variables)]
    if replicas > 1:
      # Clip the gradient of the global batch, then hand the optimizer a
      # share that its own sum over replicas turns back into it.
      grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
      grads = [g / replicas for g in grads]
    if self.clip_norm is not None:
      grads, _ = tf.clip_by_global_norm(grads, self.clip_norm)
    if replicas > 1:
      grads = [g / replicas for g in grads]
    self.optimizer.apply(grads, variables)
    return self._update_metrics(log_prob, loss)

  def test_step(self, data):
    x = data[0] if isinstance(data, (tuple, list)) else data
    log_prob = self(x, training=False)
    loss = (-tf.reduce_mean(log_prob)
            + l2_penalty(self._l2_variables, self.l2_scale))
    return self._update_metrics(log_prob, loss)

  def predict_step(self, data):
    x = data[0] if isinstance(data, (tuple, list)) else data
    return self(x, training=False)


class CheckpointCallback(keras.callbacks.Callback):
  """Saves a `FlowModel`'s flow and optimizer with `tf.train.CheckpointManager`.

  Writes every `every_n_steps` batches (if given) and at each epoch's end,
  numbered by the optimizer's iteration count; skips (and logs) a save when
  a variable or the batch's loss is not finite, so no checkpoint holds NaN.
  `restore()` loads the latest checkpoint into the model (call it after
  `compile`), e.g. to resume with `fit(..., initial_epoch=...)`.

  Args:
    directory: the checkpoint folder.
    every_n_steps: optional save interval in batches.
    max_to_keep: checkpoints kept.
  """

  def __init__(self, directory, every_n_steps=None, max_to_keep=3):
    super().__init__()
    self.directory = os.fspath(directory)
    self.every_n_steps = every_n_steps
    self.max_to_keep = max_to_keep
    self._manager = None
    self._epoch = None
    self._last_loss_finite = True

  def _ensure_manager(self):
    if self._manager is None:
      model = self.model
      self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False,
                                name='epoch')
      checkpoint = tf.train.Checkpoint(flow=model.flow,
                                       optimizer=model.optimizer,
                                       epoch=self._epoch)
      self._manager = tf.train.CheckpointManager(
          checkpoint, self.directory, max_to_keep=self.max_to_keep)
    return self._manager

  @property
  def manager(self):
    return self._ensure_manager()

  def restore(self):
    """Restores the latest checkpoint; returns the saved epoch or None."""
    manager = self._ensure_manager()
    if manager.latest_checkpoint is None:
      return None
    manager.checkpoint.restore(
        manager.latest_checkpoint).assert_existing_objects_matched()
    logger.info('restored %s (epoch %d)', manager.latest_checkpoint,
                int(self._epoch.numpy()))
    return int(self._epoch.numpy())

  def _save(self, epoch):
    manager = self._ensure_manager()
    finite = self._last_loss_finite and all(
        bool(np.all(np.isfinite(v.numpy()))) for v in self.model.flow.variables
        if v.dtype.is_floating)
    step = int(self.model.optimizer.iterations.numpy())
    if not finite:
      logger.warning('not saving a checkpoint at step %d: non-finite loss or '
                     'variable', step)
      return None
    self._epoch.assign(epoch)
    path = manager.save(checkpoint_number=step)
    logger.info('saved checkpoint %s (step %d)', path, step)
    return path

  def on_train_begin(self, logs=None):
    self._ensure_manager()

  def on_train_batch_end(self, batch, logs=None):
    loss = (logs or {}).get('loss')
    if loss is not None:
      self._last_loss_finite = bool(np.isfinite(float(loss)))
    if self.every_n_steps:
      step = int(self.model.optimizer.iterations.numpy())
      if step % self.every_n_steps == 0:
        self._save(self._epoch.numpy() if self._epoch is not None else 0)

  def on_epoch_end(self, epoch, logs=None):
    self._save(epoch + 1)
