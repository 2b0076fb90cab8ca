"""A `tf.distribute` training loop for Real NVP flows, with safe checkpoints."""

import dataclasses
import logging
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp.bits import bits_per_dim
from tfp_realnvp.chain import RealNVPChain
from tfp_realnvp.train import strategy as strategy_lib
from tfp_realnvp.train.schedule import DECAYS
from tfp_realnvp.train.schedule import WarmupDecay

tfd = tfp.distributions

__all__ = ['TrainConfig', 'Trainer', 'StepResult', 'make_flow',
           'make_distribution', 'NETWORK_DTYPES', 'l2_penalty',
           'maximum_likelihood_step']

logger = logging.getLogger('tfp_realnvp.train')

# --mixed-precision value -> Keras dtype policy of the s/t networks.
NETWORK_DTYPES = {None: None, 'none': None, 'float32': None,
                  'bfloat16': 'mixed_bfloat16', 'float16': 'mixed_float16'}


def make_flow(event_shape, num_scales=2, hidden_channels=64, num_res_blocks=8,
              mixed_precision=None, validate_args=False, **kwargs):
  """A `RealNVPChain` for training.

  `mixed_precision` ('bfloat16' or 'float16') runs the s/t networks under the
  Keras policy `mixed_<dtype>`; the couplings, batch norms and log-dets stay
  float32. `validate_args` defaults to False here: the trainer's non-finite
  guard handles bad values without stopping the run.
  """
  if mixed_precision not in NETWORK_DTYPES:
    raise ValueError(f'mixed_precision must be one of bfloat16, float16 or '
                     f'None, got {mixed_precision!r}.')
  policy = NETWORK_DTYPES[mixed_precision]
  previous = keras.mixed_precision.global_policy()
  if policy is not None:
    # Layers that a network layer creates inside itself (the residual
    # blocks' convolutions and batch norms) take the global policy, not
    # their parent's: set it while the networks are built.
    keras.mixed_precision.set_global_policy(policy)
  try:
    return RealNVPChain(event_shape, num_scales=num_scales,
                        hidden_channels=hidden_channels,
                        num_res_blocks=num_res_blocks, network_dtype=policy,
                        validate_args=validate_args, **kwargs)
  finally:
    keras.mixed_precision.set_global_policy(previous)


def make_distribution(flow, event_shape):
  """`TransformedDistribution` of a standard normal over the event by `flow`."""
  return tfd.TransformedDistribution(
      tfd.Sample(tfd.Normal(0., 1.), tuple(event_shape)), flow)


def l2_penalty(variables, scale):
  """`scale * sum(v**2)` over `variables` (0 when there are none)."""
  if not variables or not scale:
    return tf.constant(0., tf.float32)
  return scale * tf.add_n([tf.reduce_sum(tf.square(v)) for v in variables])


def maximum_likelihood_step(distribution, optimizer, *, l2_variables=(),
                            l2_scale=5e-5, clip_norm=100., jit_compile=False):
  """The paper's training step on one device, as a `tf.function`.

  Returns `step(x) -> nll`, which lowers

  ```none
  loss = -mean(distribution.log_prob(x, training=True))
         + l2_scale * sum(||v||^2 for v in l2_variables)
  ```

  by one update of `optimizer` on `distribution.trainable_variables`, after
  clipping the gradient to the global norm `clip_norm` (None: no clipping),
  and returns the mean negative log-likelihood (the loss without the L2
  term). The optimizer is built here, before any tracing. For several
  replicas, checkpoints and the non-finite guard use `Trainer`.

  Args:
    distribution: a `TransformedDistribution` of a flow.
    optimizer: a Keras optimizer.
    l2_variables: the variables of the L2 penalty, e.g.
      `flow.l2_regularized_variables` (the couplings' s-scales).
    l2_scale: the penalty's factor (paper: 5e-5).
    clip_norm: global gradient-norm clipping; None: no clipping.
    jit_compile: compile the step with XLA.
  """
  variables = list(distribution.trainable_variables)
  optimizer.build(variables)
  l2_variables = tuple(l2_variables)

  def step(x):
    with tf.GradientTape() as tape:
      nll = -tf.reduce_mean(
          distribution.log_prob(x, bijector_kwargs={'training': True}))
      loss = nll + l2_penalty(l2_variables, l2_scale)
    grads = tape.gradient(loss, variables)
    if clip_norm is not None:
      grads, _ = tf.clip_by_global_norm(grads, clip_norm)
    optimizer.apply_gradients(zip(grads, variables))
    return nll

  return tf.function(step, jit_compile=jit_compile)


@dataclasses.dataclass
class TrainConfig:
  """Settings of `Trainer`.

  Attributes:
    global_batch_size: examples per step, split evenly over the replicas.
    learning_rate: Adam's peak learning rate (paper: 1e-3).
    l2_scale: L2 penalty on the couplings' s-scale vectors (paper: 5e-5).
    clip_norm: clip the (global) gradient to this norm; None: no clipping.
    warmup_steps: linear learning-rate warm-up.
    decay: 'none', 'cosine' or 'exponential' (see `WarmupDecay`).
    decay_steps: length of the decay after the warm-up (needed with a
      decay).
    final_fraction: floor of the cosine / factor of the exponential decay.
    mixed_precision: None, 'bfloat16' or 'float16': the dtype of the s/t
      networks (the flow must be built with it, see `make_flow`); 'float16'
      turns on dynamic loss scaling.
    initial_loss_scale: starting loss scale (float16 only).
    loss_scale_growth_steps: finite steps before the loss scale doubles.
    jit_compile: compile the step's forward and backward pass with XLA (one
      replica only: with several, it is turned off with a warning).
    checkpoint_every: save every this many steps (and at each epoch's end);
      None: at epoch ends only.
    max_to_keep: checkpoints kept.
    max_bad_steps: consecutive non-finite steps that are skipped before the
      run goes back to the last checkpoint.
    rollback_lr_factor: the learning rate is multiplied by this at each
      rollback.
    max_rollbacks: more rollbacks than this raise `FloatingPointError`.
  """
  global_batch_size: int = 64
  learning_rate: float = 1e-3
  l2_scale: float = 5e-5
  clip_norm: float = 100.
  warmup_steps: int = 0
  decay: str = 'none'
  decay_steps: int = None
  final_fraction: float = 0.01
  mixed_precision: str = None
  initial_loss_scale: float = 2.**15
  loss_scale_growth_steps: int = 2000
  jit_compile: bool = False
  checkpoint_every: int = 500
  max_to_keep: int = 3
  max_bad_steps: int = 3
  rollback_lr_factor: float = 0.5
  max_rollbacks: int = 5

  def __post_init__(self):
    if self.global_batch_size < 1:
      raise ValueError(f'global_batch_size must be >= 1, got '
                       f'{self.global_batch_size}.')
    if self.mixed_precision in ('none', 'float32'):
      self.mixed_precision = None
    if self.mixed_precision not in (None, 'bfloat16', 'float16'):
      raise ValueError(f"mixed_precision must be None, 'bfloat16' or "
                       f"'float16', got {self.mixed_precision!r}.")
    if self.decay not in DECAYS:
      raise ValueError(f'decay must be one of {DECAYS}, got {self.decay!r}.')
    if self.decay != 'none' and not self.decay_steps:
      raise ValueError(f'decay={self.decay!r} needs decay_steps (e.g. the '
                       f'run\'s total steps minus warmup_steps).')
    if self.clip_norm is not None and self.clip_norm <= 0:
      raise ValueError(f'clip_norm must be positive or None, got '
                       f'{self.clip_norm}.')
    if self.checkpoint_every is not None and self.checkpoint_every < 1:
      raise ValueError(f'checkpoint_every must be >= 1 or None, got '
                       f'{self.checkpoint_every}.')
    if not 0. < self.rollback_lr_factor <= 1.:
      raise ValueError(f'rollback_lr_factor must be in (0, 1], got '
                       f'{self.rollback_lr_factor}.')


@dataclasses.dataclass
class StepResult:
  """What one training step reports (host values)."""
  nll: float            # mean negative log-likelihood (nats per example)
  bits_per_dim: float
  grad_norm: float      # global gradient norm before clipping
  applied: bool         # the update was applied
  loss_finite: bool
  grads_finite: bool


class _PreReducedAdam(keras.optimizers.Adam):
  """Adam fed gradients that the trainer has already summed over replicas.

  Keras optimizers all-reduce gradients inside `apply`; the trainer reduces
  them itself first, so that it can clip the global gradient and decide on
  one finite check for all replicas. This skips the second reduction.
  """

  def _all_reduce_sum_gradients(self, grads_and_vars):
    return list(grads_and_vars)


class Trainer:
  """Trains a flow by maximum likelihood under a `tf.distribute` strategy.

  ```python
  trainer = Trainer(lambda: make_flow((28, 28, 1), hidden_channels=32),
                    (28, 28, 1), TrainConfig(global_batch_size=64),
                    num_levels=256, checkpoint_dir='run/checkpoints')
  dataset_fn = lambda: image_pipeline(train_images, 256, 64, seed=0)
  history = trainer.fit(dataset_fn, epochs=3, steps_per_epoch=500)
  trainer.evaluate(image_pipeline(test_images, 256, 500, training=False))
  ```

  One step: every replica computes the negative log-likelihood of its share
  of the global batch in training mode (batch-norm statistics of the global
  batch, running averages updated once), its gradient (of `nll_sum / global
  batch + l2 / replicas`, times the loss scale for float16); the gradients are
  summed over replicas, unscaled, clipped to `clip_norm` (global norm), and
  Adam applies them, unless the loss or a gradient is not finite: then the
  update is skipped and the running statistics are put back as they were.
  After `max_bad_steps` such steps in a row (or a non-finite variable before a
  save) the run goes back to the last checkpoint and multiplies the learning
  rate by `rollback_lr_factor`, and says so in the log. So a non-finite value
  never reaches a checkpoint.

  Checkpoints (`tf.train.CheckpointManager`, in `checkpoint_dir`) hold the flow
  (weights and batch-norm running statistics), the optimizer (Adam's moments
  and iteration count), the step, the epoch, the learning-rate factor and the
  loss scale. The step is also the data position: `distribute` skips that many
  global batches of the (deterministic) dataset. A checkpoint is written at
  step 0, every `checkpoint_every` steps and at each epoch's end; TensorFlow
  writes the index last and the `checkpoint` state file atomically, so a
  process killed at any moment leaves the previous checkpoint loadable and
  loses at most one interval.

  Args:
    flow_fn: zero-argument callable returning the flow bijector (called under
      the strategy's scope, and again for `export`).
    event_shape: the data's event shape.
    config: a `TrainConfig`.
    num_levels: levels of the quantized data, for bits/dim.
    strategy: a `tf.distribute.Strategy`; default `pick_strategy()`.
    checkpoint_dir: where checkpoints go; None: no checkpoints (and no
      rollback).
  """

  def __init__(self, flow_fn, event_shape, config=None, *, num_levels=256,
               strategy=None, checkpoint_dir=None):
    self.config = config or TrainConfig()
    self.strategy = strategy or strategy_lib.pick_strategy()
    self.event_shape = tuple(int(d) for d in event_shape)
    self.num_levels = int(num_levels)
    self.is_chief = strategy_lib.is_chief(self.strategy)
    self._flow_fn = flow_fn
    replicas = self.strategy.num_replicas_in_sync
    if self.config.global_batch_size % replicas:
      raise ValueError(
          f'global_batch_size {self.config.global_batch_size} does not split '
          f'evenly over {replicas} replicas; use a multiple of {replicas}.')
    self._jit = bool(self.config.jit_compile)
    if self._jit and replicas > 1:
      logger.warning('jit_compile: the step of %d replicas has cross-replica '
                     'reductions (batch statistics, gradients) that XLA does '
                     'not compile here; it runs without XLA.', replicas)
      self._jit = False
    cfg = self.config
    fp16 = cfg.mixed_precision == 'float16'
    with self.strategy.scope():
      self.flow = flow_fn()
      self.distribution = make_distribution(self.flow, self.event_shape)
      self.trainable_variables = tuple(self.distribution.trainable_variables)
      if not self.trainable_variables:
        raise ValueError('the flow has no trainable variables.')
      trainable_ids = {id(v) for v in self.trainable_variables}
      # Batch-norm running statistics: put back when a step is skipped.
      self.state_variables = tuple(v for v in self.flow.variables
                                   if id(v) not in trainable_ids)
      self._l2_variables = tuple(getattr(self.flow, 'l2_regularized_variables',
                                         ()))
      stat = dict(trainable=False,
                  aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
      self.lr_factor = tf.Variable(1., name='lr_factor', **stat)
      self.loss_scale = tf.Variable(cfg.initial_loss_scale if fp16 else 1.,
                                    name='loss_scale', **stat)
      self.good_steps = tf.Variable(0, dtype=tf.int64, name='good_steps', **stat)
      self.step_variable = tf.Variable(0, dtype=tf.int64, name='step', **stat)
      self.epoch_variable = tf.Variable(0, dtype=tf.int64, name='epoch', **stat)
      self.rollbacks_variable = tf.Variable(0, dtype=tf.int64,
                                            name='rollbacks', **stat)
      self.schedule = WarmupDecay(
          cfg.learning_rate, warmup_steps=cfg.warmup_steps, decay=cfg.decay,
          decay_steps=cfg.decay_steps, final_fraction=cfg.final_fraction,
          factor=self.lr_factor)
      self.optimizer = _PreReducedAdam(self.schedule)
      # Built here, not lazily inside the first tf.function step.
      self.optimizer.build(list(self.trainable_variables))
    self.checkpoint = tf.train.Checkpoint(
        flow=self.flow, optimizer=self.optimizer, step=self.step_variable,
        epoch=self.epoch_variable, lr_factor=self.lr_factor,
        loss_scale=self.loss_scale, good_steps=self.good_steps,
        rollbacks=self.rollbacks_variable)
    self.checkpoint_dir = checkpoint_dir
    self.manager = None
    if checkpoint_dir is not None:
      self.manager = tf.train.CheckpointManager(
          self.checkpoint,
          strategy_lib.worker_write_dir(self.strategy, checkpoint_dir),
          max_to_keep=cfg.max_to_keep)
    self.step = 0
    self.stopped_early = False
    self._bad_steps = 0
    self._train_fn = None
    self._eval_fn = None
    self._sample_fn = None

  # -- the step -----------------------------------------------------------------
  def _replica_gradients(self, x):
    cfg = self.config
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync
    backup = [tf.identity(v.read_value()) for v in self.state_variables]
    loss_scale = tf.convert_to_tensor(self.loss_scale)
    with tf.GradientTape() as tape:
      log_prob = self.distribution.log_prob(
          x, bijector_kwargs={'training': True})
      nll_sum = -tf.reduce_sum(tf.cast(log_prob, tf.float32))
      loss = (nll_sum / cfg.global_batch_size
              + l2_penalty(self._l2_variables, cfg.l2_scale) / replicas)
      scaled = loss * loss_scale
    grads = tape.gradient(scaled, self.trainable_variables)
    grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
             for g, v in zip(grads, self.trainable_variables)]
    if replicas > 1:
      grads, nll_sum = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                          (grads, nll_sum))
    grads = [g / loss_scale for g in grads]
    nll = nll_sum / cfg.global_batch_size
    loss_finite = tf.math.is_finite(nll)
    grads_finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g))
                                  for g in grads])
    norm = tf.linalg.global_norm(grads)
    if cfg.clip_norm is not None:
      grads, _ = tf.clip_by_global_norm(grads, cfg.clip_norm, use_norm=norm)
    return nll, norm, loss_finite, grads_finite, grads, backup

  def _apply(self, grads):
    self.optimizer.apply(grads, list(self.trainable_variables))

  def _restore_state(self, backup):
    for v, value in zip(self.state_variables, backup):
      v.assign(value)

  def _make_train_fn(self):
    compute = self._replica_gradients
    if self._jit:
      compute = tf.function(compute, jit_compile=True)
    strategy = self.strategy

    def first(value):
      return strategy.experimental_local_results(value)[0]

    @tf.function
    def train_fn(batch):
      nll, norm, loss_finite, grads_finite, grads, backup = strategy.run(
          compute, args=(batch,))
      ok = tf.logical_and(first(loss_finite), first(grads_finite))

      def apply():
        strategy.run(self._apply, args=(grads,))
        return tf.constant(True)

      def skip():
        strategy.run(self._restore_state, args=(backup,))
        return tf.constant(False)

      applied = tf.cond(ok, apply, skip)
      return tf.stack([first(nll), first(norm),
                       tf.cast(first(loss_finite), tf.float32),
                       tf.cast(first(grads_finite), tf.float32),
                       tf.cast(applied, tf.float32)])

    return train_fn

  def train_step(self, batch):
    """Runs one step on a distributed batch (from `distribute`)."""
    if self._train_fn is None:
      self._train_fn = self._make_train_fn()
    values = self._train_fn(batch).numpy()
    nll = float(values[0])
    result = StepResult(
        nll=nll,
        bits_per_dim=float(bits_per_dim(-nll, self.event_shape,
                                        self.num_levels)),
        grad_norm=float(values[1]), loss_finite=bool(values[2]),
        grads_finite=bool(values[3]), applied=bool(values[4]))
    self.step += 1
    if self.config.mixed_precision == 'float16':
      self._update_loss_scale(result.grads_finite)
    return result

  def _update_loss_scale(self, finite):
    if not finite:
      self.loss_scale.assign(max(1., float(self.loss_scale.numpy()) / 2.))
      self.good_steps.assign(0)
    else:
      self.good_steps.assign_add(1)
      if int(self.good_steps.numpy()) >= self.config.loss_scale_growth_steps:
        self.loss_scale.assign(min(2.**24, float(self.loss_scale.numpy()) * 2.))
        self.good_steps.assign(0)

  # -- data ---------------------------------------------------------------------
  def distribute(self, dataset_fn, start_step=0):
    """A distributed dataset of the global batches from step `start_step` on.

    `dataset_fn()` must return a deterministic `tf.data.Dataset` of global
    batches (`global_batch_size` examples each, e.g. `image_pipeline(...,
    drop_remainder=True)`). Each input pipeline (one per worker) builds it,
    skips `start_step` batches (the data position of a resumed run) and keeps
    its workers' slice of every batch, cut into per-replica batches. Replica
    `r` of every step therefore sees examples `r * B / R ... (r + 1) * B / R`
    of the global batch, whatever the number of devices and workers.
    """
    batch = self.config.global_batch_size
    replicas = self.strategy.num_replicas_in_sync
    per_replica = batch // replicas
    shape = list(self.event_shape)

    def fn(context):
      pipelines = context.num_input_pipelines
      local = replicas // pipelines
      start = context.input_pipeline_id * local * per_replica
      dataset = dataset_fn()
      if start_step:
        dataset = dataset.skip(start_step)
      if replicas == 1:
        return dataset.map(lambda b: tf.ensure_shape(b, [batch] + shape))

      def split(b):
        b = tf.ensure_shape(b, [batch] + shape)
        return tf.reshape(b[start:start + local * per_replica],
                          [local, per_replica] + shape)
      return dataset.map(split).unbatch()

    return self.strategy.distribute_datasets_from_function(fn)

  # -- inference ----------------------------------------------------------------
  def log_prob(self, x):
    """`log_prob(x)` in inference mode (running statistics, nothing updated)."""
    if self._eval_fn is None:
      self._eval_fn = tf.function(
          lambda x: self.distribution.log_prob(x), reduce_retracing=True)
    return self._eval_fn(x)

  def evaluate(self, dataset):
    """Mean bits/dim over a dataset of batches, in inference mode."""
    total, count = 0., 0
    for x in dataset:
      log_prob = self.log_prob(x).numpy().astype(np.float64)
      total += float(log_prob.sum())
      count += log_prob.shape[0]
    if not count:
      raise ValueError('evaluate: the dataset is empty.')
    return float(bits_per_dim(total / count, self.event_shape,
                              self.num_levels))

  def sample(self, num_samples, temperature=1., seed=0):
    """`num_samples` images from `z ~ N(0, T^2 I)` (stateless seed), numpy."""
    if self._sample_fn is None:

      @tf.function(reduce_retracing=True)
      def sample_fn(n, temperature, seed):
        z = temperature * tf.random.stateless_normal(
            tf.concat([[n], self.event_shape], 0),
            seed=tf.stack([seed, tf.constant(0, tf.int64)]))
        return self.flow.forward(z)
      self._sample_fn = sample_fn
    return self._sample_fn(tf.constant(num_samples, tf.int32),
                           tf.constant(temperature, tf.float32),
                           tf.constant(seed, tf.int64)).numpy()

  @property
  def learning_rate(self):
    """The current learning rate (schedule at the optimizer's iteration)."""
    return float(self.schedule(self.optimizer.iterations))

  # -- checkpoints --------------------------------------------------------------
  def _variables_finite(self):
    variables = list(self.flow.variables) + [
        v.value if hasattr(v, 'value') and not isinstance(v, tf.Variable) else v
        for v in self.optimizer.variables]
    return all(bool(np.all(np.isfinite(v.numpy())))
               for v in variables if v.dtype.is_floating)

  def save(self, epoch):
    """Writes a checkpoint of the current state (numbered by step).

    Returns the path, or None when there is no checkpoint directory. Raises
    `FloatingPointError` if a variable is not finite (nothing is written).
    """
    if self.manager is None:
      return None
    if not self._variables_finite():
      raise FloatingPointError(f'non-finite variable at step {self.step}: '
                               f'not saved')
    self.step_variable.assign(self.step)
    self.epoch_variable.assign(epoch)
    path = self.manager.save(checkpoint_number=self.step)
    logger.info('saved checkpoint %s (step %d, %d epoch(s) done)', path,
                self.step, epoch)
    return path

  def restore(self, path=None):
    """Restores a checkpoint (default: the latest in `checkpoint_dir`).

    Returns the restored step, or None when there is no checkpoint.
    """
    if path is None:
      if self.checkpoint_dir is None:
        return None
      path = tf.train.latest_checkpoint(self.checkpoint_dir)
      if path is None:
        return None
    status = self.checkpoint.restore(path)
    status.assert_existing_objects_matched()
    self.step = int(self.step_variable.numpy())
    self._bad_steps = 0
    logger.info('restored checkpoint %s: step %d, %d epoch(s) done, optimizer '
                'iterations %d, learning rate %.3g', path, self.step,
                int(self.epoch_variable.numpy()),
                int(self.optimizer.iterations.numpy()), self.learning_rate)
    return self.step

  def _rollback(self, reason):
    latest = self.manager.latest_checkpoint if self.manager else None
    if latest is None:
      raise FloatingPointError(f'{reason}, and there is no checkpoint to go '
                               f'back to.')
    rollbacks = int(self.rollbacks_variable.numpy()) + 1
    if rollbacks > self.config.max_rollbacks:
      raise FloatingPointError(
          f'{reason}; already rolled back {rollbacks - 1} times (max_rollbacks'
          f'={self.config.max_rollbacks}). Try a lower learning rate, float32 '
          f'or a smaller clip_norm.')
    failed_step = self.step
    self.restore(latest)
    factor = float(self.lr_factor.numpy()) * self.config.rollback_lr_factor
    self.lr_factor.assign(factor)
    self.rollbacks_variable.assign(rollbacks)
    logger.warning('%s at step %d: went back to %s (step %d) and lowered the '
                   'learning rate to %.3g (factor %.3g, rollback %d of at most '
                   '%d).', reason, failed_step, latest, self.step,
                   self.learning_rate, factor, rollbacks,
                   self.config.max_rollbacks)

  # -- the loop -----------------------------------------------------------------
  def fit(self, dataset_fn, epochs, steps_per_epoch, *, resume=False,
          on_epoch_end=None, max_seconds=None, verbose=1):
    """Trains until `epochs * steps_per_epoch` steps are done.

    Args:
      dataset_fn: see `distribute`.
      epochs: epochs to reach (a resumed run continues to this many).
      steps_per_epoch: global steps per epoch.
      resume: continue from the latest checkpoint in `checkpoint_dir` (its
        step, data position, optimizer state and learning-rate factor); a
        fresh start when there is none.
      on_epoch_end: optional `fn(epoch, logs)` called at the end of each
        epoch, before the epoch's checkpoint is written (a run killed in it
        resumes before the epoch's end and calls it again), with `logs` =
        dict(epoch, step, partial, train_bits_per_dim, images_per_second,
        seconds, learning_rate, skipped_steps); `epoch` counts from 1.
      max_seconds: optional wall-clock budget of this call: after the step
        that exhausts it the run ends its epoch early (`logs['partial']` is
        True, `on_epoch_end` and a checkpoint as at an epoch's end) and
        returns; `stopped_early` is then True.
      verbose: 1 shows a progress bar (chief only); 0 shows nothing.

    Returns:
      A list of the `logs` of the epochs run by this call.
    """
    if steps_per_epoch < 1 or epochs < 0:
      raise ValueError(f'need steps_per_epoch >= 1 and epochs >= 0, got '
                       f'{steps_per_epoch} and {epochs}.')
    deadline = (None if max_seconds is None
                else time.monotonic() + float(max_seconds))
    self.stopped_early = False
    total_steps = epochs * steps_per_epoch
    restored = self.restore() if resume else None
    if resume and restored is None:
      logger.info('no checkpoint in %s: starting from step 0',
                  self.checkpoint_dir)
    if restored is None and self.manager is not None:
      self.save(epoch=0)
    if restored is not None:
      saved_epoch = int(self.epoch_variable.numpy())
      if saved_epoch != self.step // steps_per_epoch:
        logger.warning('the checkpoint was written at epoch %d, but step %d '
                       'is in epoch %d with steps_per_epoch=%d: counting '
                       'epochs from the step.', saved_epoch, self.step,
                       self.step // steps_per_epoch + 1, steps_per_epoch)
    history = []
    iterator = None
    while self.step < total_steps:
      epoch = self.step // steps_per_epoch          # 0-based, running
      epoch_end = (epoch + 1) * steps_per_epoch
      progbar = None
      if verbose and self.is_chief:
        print(f'Epoch {epoch + 1}/{epochs}', flush=True)
        progbar = keras.utils.Progbar(
            steps_per_epoch, stateful_metrics=['bits/dim', 'images/s'])
        if self.step % steps_per_epoch:
          progbar.update(self.step % steps_per_epoch)
      nll_sum, nll_count, skipped, images, seconds = 0., 0, 0, 0, 0.
      epoch_start = time.time()
      restart = timed_out = False
      while self.step < epoch_end and not (restart or timed_out):
        if iterator is None:
          iterator = iter(self.distribute(dataset_fn, self.step))
        batch = next(iterator)
        first_call = self._train_fn is None
        tic = time.perf_counter()
        result = self.train_step(batch)
        elapsed = time.perf_counter() - tic
        if first_call:
          logger.info('first step (tracing and compiling): %.1f s', elapsed)
        else:
          images += self.config.global_batch_size
          seconds += elapsed
        if result.applied:
          self._bad_steps = 0
          nll_sum += result.nll
          nll_count += 1
        else:
          skipped += 1
          self._bad_steps += 1
          what = ('non-finite loss' if not result.loss_finite else
                  'non-finite gradient')
          if self.config.mixed_precision == 'float16' and result.loss_finite:
            logger.info('step %d: %s with loss scale %g: skipped the update '
                        '(loss scale halved)', self.step, what,
                        float(self.loss_scale.numpy()) * 2)
            self._bad_steps = 0
          else:
            logger.warning('step %d: %s (nll %s): skipped the update and kept '
                           'the batch-norm statistics', self.step, what,
                           result.nll)
          if self._bad_steps >= self.config.max_bad_steps:
            self._rollback(f'{self._bad_steps} non-finite steps in a row')
            restart = True
            continue
        if progbar is not None:
          running = (float(bits_per_dim(-nll_sum / nll_count, self.event_shape,
                                        self.num_levels))
                     if nll_count else float('nan'))
          values = [('bits/dim', running)]
          if seconds:
            values.append(('images/s', images / seconds))
          progbar.update(self.step - epoch * steps_per_epoch, values=values)
        at_interval = (self.config.checkpoint_every and
                       self.step % self.config.checkpoint_every == 0)
        if at_interval and self.step < epoch_end:
          restart = not self._checked_save(epoch)
        timed_out = deadline is not None and time.monotonic() >= deadline
      if restart:
        iterator = None
        continue
      # The epoch is complete (or the time is up): its callback runs before
      # its checkpoint is written, so a run killed in the callback repeats
      # the epoch's end.
      partial = self.step < epoch_end
      if partial:
        logger.info('time limit of %.0f s reached at step %d (epoch %d, step '
                    '%d of %d)', max_seconds, self.step, epoch + 1,
                    self.step - epoch * steps_per_epoch, steps_per_epoch)
      logs = dict(
          epoch=epoch + 1, step=self.step, partial=partial,
          train_bits_per_dim=(float(bits_per_dim(
              -nll_sum / nll_count, self.event_shape, self.num_levels))
                              if nll_count else float('nan')),
          images_per_second=images / seconds if seconds else float('nan'),
          seconds=time.time() - epoch_start,
          learning_rate=self.learning_rate, skipped_steps=skipped)
      if on_epoch_end is not None:
        on_epoch_end(epoch + 1, logs)
      if not self._checked_save(epoch if partial else epoch + 1):
        iterator = None
        continue
      history.append(logs)
      if timed_out:
        self.stopped_early = self.step < total_steps
        break
    return history

  def _checked_save(self, epoch):
    """Saves, or rolls back when a variable is not finite. True if saved."""
    try:
      self.save(epoch)
      return True
    except FloatingPointError as err:
      self._rollback(str(err))
      return False

  # -- export -------------------------------------------------------------------
  def export(self, path, flow_fn=None):
    """Writes a SavedModel of the current flow (see `export_saved_model`).

    The flow is rebuilt with `flow_fn` (default: the one the trainer was
    built with) outside the strategy and the trained values are copied into
    it, so the export holds plain float32 variables whatever the strategy.
    """
    from tfp_realnvp.train.export import export_saved_model  # pylint: disable=g-import-not-at-top
    copy = (flow_fn or self._flow_fn)()
    source = list(self.flow.variables)
    target = list(copy.variables)
    if len(source) != len(target) or any(
        tuple(s.shape) != tuple(t.shape) for s, t in zip(source, target)):
      raise ValueError('flow_fn builds a flow whose variables do not match the '
                       'trained one.')
    for s, t in zip(source, target):
      t.assign(s.read_value())
    return export_saved_model(copy, self.event_shape, path,
                              num_levels=self.num_levels)
