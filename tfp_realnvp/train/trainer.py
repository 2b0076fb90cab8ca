"""`Trainer`: maximum likelihood under a `tf.distribute` strategy, with guarded checkpoints."""

import dataclasses
import logging
import math
import time

import keras
import numpy as np
import tensorflow as tf

from tfp_realnvp.batch_norm_statistics import recompute_batch_norm_statistics
from tfp_realnvp.bijectors.act_norm import ActNorm
from tfp_realnvp.bijectors.act_norm import initialize_act_norms
from tfp_realnvp.bits import bits_per_dim
from tfp_realnvp.latents import sample_latents
from tfp_realnvp.train import recipe
from tfp_realnvp.train import strategy as strategy_lib
from tfp_realnvp.train.checkpoints import CheckpointStore
from tfp_realnvp.train.checkpoints import NonFiniteStateError
from tfp_realnvp.train.checkpoints import restore_checkpoint
from tfp_realnvp.train.config import TrainConfig
from tfp_realnvp.train.export import export_saved_model
from tfp_realnvp.train.health import HealthJudge
from tfp_realnvp.train.health import RunDivergedError
from tfp_realnvp.train.progress import make_progress
from tfp_realnvp.train.schedule import WarmupDecay

__all__ = ['StepResult', 'Trainer']

logger = logging.getLogger('tfp_realnvp.train')


@dataclasses.dataclass
class StepResult:
  """What one training step reports (host values)."""
  nll: float            # mean negative log-likelihood (nats per example)
  bits_per_dim: float
  grad_norm: float      # global gradient norm before clipping
  applied: bool         # the update was applied
  loss_finite: bool
  grads_finite: bool
  batch_finite: bool = True   # False: the batch held NaN or inf (the step was skipped)


@dataclasses.dataclass
class _EpochStats:
  """Running sums of one epoch's steps."""
  nll_sum: float = 0.
  nll_count: int = 0
  skipped: int = 0
  images: int = 0
  seconds: float = 0.
  timed_out: bool = False
  started: float = dataclasses.field(default_factory=time.time)


@dataclasses.dataclass(frozen=True)
class _TimeBudget:
  """`fit`'s wall-clock budget: its start (monotonic seconds), its length, and the
  decay's progress at the start (None: the decay follows the steps alone)."""
  started: float
  seconds: float
  decay_start: float = None


class _PreReducedAdam(keras.optimizers.Adam):
  """Adam fed gradients that the trainer has already summed over replicas.

  Keras optimizers all-reduce gradients inside `apply`; the trainer reduces them itself
  first, so that it can clip the global gradient and decide on one finite check for all
  replicas. This skips the second reduction.
  """

  def _all_reduce_sum_gradients(self, grads_and_vars):
    return list(grads_and_vars)


class Trainer:
  """Trains a flow by maximum likelihood under a `tf.distribute` strategy.

  ```python
  trainer = Trainer(lambda: make_flow((28, 28, 1), hidden_channels=32),
                    (28, 28, 1), TrainConfig(global_batch_size=64),
                    num_levels=256, checkpoint_dir='run/checkpoints')
  history = trainer.fit(lambda: image_pipeline(train_images, 256, 64, seed=0),
                        epochs=3, steps_per_epoch=500,
                        validation_fn=lambda: image_pipeline(
                            validation_images, 256, 500, training=False))
  trainer.export('run/saved_model', checkpoint=trainer.best_checkpoint)
  ```

  One step (the recipe of `tfp_realnvp.train.recipe`): every replica computes the
  negative log-likelihood of its share of the global batch in training mode (batch-norm
  statistics of the global batch, running averages updated once), its gradient (of
  `nll_sum / global batch + l2 / replicas`, times the loss scale for float16); the
  gradients are summed over replicas, unscaled, clipped to `clip_norm` (global norm),
  and Adam applies them, unless the loss or a gradient is not finite: then the update is
  skipped and the running statistics are put back as they were. A batch that holds NaN
  or inf never reaches the flow: its step is skipped the same way. Image batches must
  hold pixels in [0, 1] otherwise: anything else stops the run with an
  `InvalidArgumentError` that says so.

  Class-conditional flows (`make_flow(..., num_classes=K)`, modelling `p(x | y)`) train
  on `(images, labels)` batches (`image_pipeline(..., labels=train_labels)`): the integer
  labels are split over the replicas exactly like the images and reach the flow as its
  `conditional_input`; `evaluate` takes the same pairs, `log_prob(x, labels)` and
  `sample(n, labels=...)` the labels of their events. Labels missing for a conditional
  flow (or given to an unconditional one), labels that are not integer class indices of
  shape `(batch,)`, and labels outside `[0, K)` stop with an error that says so.

  Flows with Glow's ActNorm layers (`make_flow(..., act_norm=True, batch_norm=False)`)
  get their data-dependent start from the first global batch of a fresh run
  (`initialize_act_norms`, outside the replicas, so every replica count starts alike);
  a resumed run keeps the values of its checkpoint.

  Each epoch ends with a score: the validation bits/dim (`validation_fn`), or else the
  epoch's training bits/dim. `tfp_realnvp.train.health` judges it against the best so
  far; a healthy epoch's checkpoint is kept as the last good one (and as the best one
  when its validation score is the lowest). A rollback (after `max_bad_steps`
  non-finite steps in a row, a non-finite variable before a save, or an unhealthy epoch)
  restores the last good checkpoint and multiplies the learning rate by
  `rollback_lr_factor`; beyond `max_rollbacks` the run raises `RunDivergedError`, which
  names the last good checkpoint. So a non-finite value never reaches a checkpoint, and
  a diverged run never passes for a trained one.

  Checkpoints (`tfp_realnvp.train.checkpoints`, in `checkpoint_dir`) hold the flow, the
  optimizer, the step, the epoch, the learning-rate factor, the loss scale and the best
  score. The step is also the data position: `distribute` skips that many global
  batches of the (deterministic) dataset. Building a `Trainer` reads and writes nothing
  on disk; the checkpoint folder is opened at the first save or restore.

  Args:
    flow_fn: zero-argument callable returning the flow bijector (called under the
      strategy's scope, and again for `export`).
    event_shape: the data's event shape.
    config: a `TrainConfig`.
    num_levels: levels of the quantized data, for bits/dim.
    strategy: a `tf.distribute.Strategy`; default `pick_strategy()`.
    checkpoint_dir: where checkpoints go; None: no checkpoints (and no rollback).
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
    self._build_model()
    self.checkpoint = tf.train.Checkpoint(
        flow=self.flow, optimizer=self.optimizer, step=self.step_variable,
        epoch=self.epoch_variable, lr_factor=self.lr_factor,
        loss_scale=self.loss_scale, good_steps=self.good_steps,
        rollbacks=self.rollbacks_variable, best_score=self.best_score,
        best_epoch=self.best_epoch)
    self.checkpoint_dir = checkpoint_dir
    self._store = None
    self._health = HealthJudge(self.config.max_bits_per_dim_rise)
    self.step = 0
    self.stopped_early = False
    self.stop_reason = None
    self.restored_from = None
    self.skipped_checkpoints = ()
    self._started = False
    self._bad_steps = 0
    self._iterator = None
    self._budget = None
    self._in_cluster = strategy_lib.worker_id(self.strategy)[0] is not None
    self._train_fn = None
    self._eval_fn = None
    self._sample_fn = None

  def _build_model(self):
    cfg = self.config
    fp16 = cfg.mixed_precision == 'float16'
    with self.strategy.scope():
      self.flow = self._flow_fn()
      self.num_classes = recipe.flow_num_classes(self.flow)
      self._act_norms = tuple(m for m in [self.flow] + list(self.flow.submodules)
                              if isinstance(m, ActNorm))
      self.distribution = recipe.make_distribution(self.flow, self.event_shape)
      self.trainable_variables = tuple(self.distribution.trainable_variables)
      if not self.trainable_variables:
        raise ValueError('the flow has no trainable variables.')
      trainable_ids = {id(v) for v in self.trainable_variables}
      # Batch-norm running statistics: put back when a step is skipped.
      self.state_variables = tuple(v for v in self.flow.variables
                                   if id(v) not in trainable_ids)
      self._l2_variables = tuple(getattr(self.flow, 'l2_regularized_variables', ()))
      stat = dict(trainable=False,
                  aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
      self.lr_factor = tf.Variable(1., name='lr_factor', **stat)
      self.loss_scale = tf.Variable(cfg.initial_loss_scale if fp16 else 1.,
                                    name='loss_scale', **stat)
      self.good_steps = tf.Variable(0, dtype=tf.int64, name='good_steps', **stat)
      self.step_variable = tf.Variable(0, dtype=tf.int64, name='step', **stat)
      self.epoch_variable = tf.Variable(0, dtype=tf.int64, name='epoch', **stat)
      self.rollbacks_variable = tf.Variable(0, dtype=tf.int64, name='rollbacks', **stat)
      # The best epoch score so far (inf: none yet) and its epoch (0: the untrained
      # model), saved with every checkpoint so that a resumed run judges alike.
      self.best_score = tf.Variable(math.inf, dtype=tf.float64, name='best_score',
                                    **stat)
      self.best_epoch = tf.Variable(-1, dtype=tf.int64, name='best_epoch', **stat)
      # The decay's progress by the clock (`decay_to_deadline`); not saved: a run
      # resumed in a new process takes up its decay from its step.
      self.decay_progress = tf.Variable(0., name='decay_progress', **stat)
      self.schedule = WarmupDecay(
          cfg.learning_rate, warmup_steps=cfg.warmup_steps, decay=cfg.decay,
          decay_steps=cfg.decay_steps, final_fraction=cfg.final_fraction,
          factor=self.lr_factor, progress=self.decay_progress)
      self.optimizer = _PreReducedAdam(self.schedule)
      # Built here, not lazily inside the first tf.function step.
      self.optimizer.build(list(self.trainable_variables))

  # -- the step -----------------------------------------------------------------
  def _replica_gradients(self, x, labels=None):
    cfg = self.config
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync
    backup = [tf.identity(v.read_value()) for v in self.state_variables]
    loss_scale = tf.convert_to_tensor(self.loss_scale)
    # A batch holding NaN or inf never reaches the flow: the step runs on a stand-in
    # (whose statistics are put back) and is skipped.
    bad_batches = 1. - tf.cast(tf.reduce_all(tf.math.is_finite(x)), tf.float32)
    x = tf.where(bad_batches > 0., tf.fill(tf.shape(x), 0.5), x)
    with tf.GradientTape() as tape:
      nll_sum = -tf.reduce_sum(recipe.training_log_prob(self.distribution, x, labels))
      loss = (nll_sum / cfg.global_batch_size
              + recipe.l2_penalty(self._l2_variables, cfg.l2_scale) / replicas)
      scaled = loss * loss_scale
    grads = tape.gradient(scaled, self.trainable_variables)
    grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
             for g, v in zip(grads, self.trainable_variables)]
    if replicas > 1:
      grads, nll_sum, bad_batches = context.all_reduce(
          tf.distribute.ReduceOp.SUM, (grads, nll_sum, bad_batches))
    grads = [g / loss_scale for g in grads]
    batch_finite = tf.equal(bad_batches, 0.)
    nll = tf.where(batch_finite, nll_sum / cfg.global_batch_size, np.nan)
    loss_finite = tf.math.is_finite(nll)
    grads_finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
    grads, norm = recipe.clip_gradients(grads, cfg.clip_norm)
    return nll, norm, loss_finite, grads_finite, batch_finite, grads, backup

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
      args = tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
      nll, norm, loss_finite, grads_finite, batch_finite, grads, backup = strategy.run(
          compute, args=args)
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
                       tf.cast(applied, tf.float32),
                       tf.cast(first(batch_finite), tf.float32)])

    return train_fn

  def train_step(self, batch):
    """Runs one step on a distributed batch (from `distribute`); a `StepResult`.

    The batch is a distributed image batch, or an `(images, labels)` pair of them for a
    class-conditional flow.
    """
    if self._train_fn is None:
      self._train_fn = self._make_train_fn()
    values = self._train_fn(batch).numpy()
    nll = float(values[0])
    result = StepResult(
        nll=nll,
        bits_per_dim=float(bits_per_dim(-nll, self.event_shape, self.num_levels)),
        grad_norm=float(values[1]), loss_finite=bool(values[2]),
        grads_finite=bool(values[3]), applied=bool(values[4]),
        batch_finite=bool(values[5]))
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
  def _check_element_spec(self, spec, what='dataset_fn'):
    """Static checks of a dataset's elements; True when they are (images, labels) pairs."""
    pairs = isinstance(spec, (tuple, list))
    if pairs and len(spec) != 2:
      raise ValueError(f'{what} must yield image batches or (images, labels) pairs; it '
                       f'yields {len(spec)} tensors per element.')
    if self.num_classes is not None and not pairs:
      raise ValueError(
          f'the flow is class-conditional (num_classes={self.num_classes}): {what} must '
          f'yield (images, labels) batches, e.g. image_pipeline(images, num_levels, '
          f'batch_size, labels=train_labels); it yields images only.')
    if self.num_classes is None and pairs:
      raise ValueError(
          f'{what} yields (images, labels) pairs, but the flow is not class-conditional: '
          f'build it with num_classes=K to condition on the labels, or leave them out of '
          f'the pipeline.')
    if pairs:
      _check_label_spec(spec[1].dtype, spec[1].shape, self.num_classes, what)
    return pairs

  def _check_labels_range(self, labels):
    """`labels` as int32, with a run-time check that they lie in [0, num_classes)."""
    labels = tf.cast(labels, tf.int32)
    low, high = tf.reduce_min(labels), tf.reduce_max(labels)
    check = tf.debugging.Assert(
        tf.logical_or(tf.equal(tf.size(labels), 0),
                      tf.logical_and(low >= 0, high < self.num_classes)),
        [f'labels must be class indices in [0, {self.num_classes}) (num_classes of the '
         f'flow); this batch holds labels in', low, high])
    with tf.control_dependencies([check]):
      return tf.identity(labels)

  def _checked_labels(self, labels, num_events, what):
    """Eager labels of `num_events` events: int32 `(num_events,)`, or None; checked."""
    recipe.check_labels_for(self.num_classes, labels, what)
    if labels is None:
      return None
    if isinstance(labels, (list, tuple)) and not labels:
      labels = np.zeros([0], np.int32)
    labels = tf.convert_to_tensor(labels)
    _check_label_spec(labels.dtype, labels.shape, self.num_classes, what, scalar_ok=True)
    if labels.shape.rank == 0:
      labels = tf.fill([num_events], labels)
    if labels.shape[0] != num_events:
      raise ValueError(f'{what}: got {labels.shape[0]} labels for {num_events} events; '
                       f'pass one label per event (or one label for all).')
    labels = labels.numpy()
    if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
      raise ValueError(f'{what}: labels must be class indices in [0, {self.num_classes}) '
                       f'(num_classes of the flow); got labels in [{labels.min()}, '
                       f'{labels.max()}].')
    return tf.constant(labels, tf.int32)

  def _check_batch(self, batch):
    """Image batches: pixels in [0, 1] (NaN and inf pass: the step's guard skips them)."""
    if len(self.event_shape) != 3:
      return batch
    finite = tf.where(tf.math.is_finite(batch), batch, tf.fill(tf.shape(batch), 0.5))
    low, high = tf.reduce_min(finite), tf.reduce_max(finite)
    check = tf.debugging.Assert(
        tf.logical_and(low >= 0., high <= 1.),
        ['training pixels must lie in [0, 1] (dequantized images, see '
         'tfp_realnvp.data.image_pipeline); this batch holds values in', low, high])
    with tf.control_dependencies([check]):
      return tf.identity(batch)

  def distribute(self, dataset_fn, start_step=0):
    """A distributed dataset of the global batches from step `start_step` on.

    `dataset_fn()` must return a deterministic `tf.data.Dataset` of global batches
    (`global_batch_size` examples each, e.g. `image_pipeline(..., drop_remainder=True)`),
    of `(images, labels)` pairs for a class-conditional flow. Each input pipeline (one
    per worker) builds it, skips `start_step` batches (the data position of a resumed
    run), checks the pixel range of image batches (and that labels are class indices in
    `[0, num_classes)`) and keeps its workers' slice of every batch, cut into
    per-replica batches. Replica `r` of every step therefore sees examples
    `r * B / R ... (r + 1) * B / R` of the global batch (and their labels), whatever the
    number of devices and workers.

    Raises:
      ValueError: labels missing for a class-conditional flow, given to an unconditional
        one, or not integer class indices of shape `(batch,)`.
    """
    batch = self.config.global_batch_size
    replicas = self.strategy.num_replicas_in_sync
    per_replica = batch // replicas
    shape = list(self.event_shape)

    def checked(images, labels=None):
      images = self._check_batch(tf.ensure_shape(images, [batch] + shape))
      if labels is None:
        return images
      return images, self._check_labels_range(tf.ensure_shape(labels, [batch]))

    def fn(context):
      pipelines = context.num_input_pipelines
      local = replicas // pipelines
      start = context.input_pipeline_id * local * per_replica
      dataset = dataset_fn()
      pairs = self._check_element_spec(dataset.element_spec)
      if start_step:
        dataset = dataset.skip(start_step)
      dataset = dataset.map(checked)
      if replicas == 1:
        return dataset

      def split(b):
        return tf.reshape(b[start:start + local * per_replica],
                          [local, per_replica] + b.shape[1:].as_list())
      if pairs:
        return dataset.map(lambda x, y: (split(x), split(y))).unbatch()
      return dataset.map(split).unbatch()

    return self.strategy.distribute_datasets_from_function(fn)

  # -- inference ----------------------------------------------------------------
  def log_prob(self, x, labels=None, what='Trainer.log_prob'):
    """`log_prob(x)` in inference mode (running statistics, nothing updated).

    For a class-conditional flow, `log p(x | labels)`: `labels` are integer class
    indices in `[0, num_classes)`, one per event (or one for all). A batch of 0 examples
    gives an empty result.

    Raises:
      ValueError: labels missing for a class-conditional flow, given to an unconditional
        one, of the wrong shape or dtype, or out of range.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    num_events = x.shape[0] if x.shape.rank else None
    if num_events is None and labels is not None:
      raise ValueError(f'{what}: x needs a batch axis (N,) + event_shape to go with labels.')
    labels = self._checked_labels(labels, num_events, what)
    if x.shape.rank and x.shape[0] == 0:
      return tf.zeros([0], tf.float32)
    if self._eval_fn is None:
      self._eval_fn = tf.function(
          lambda x, labels: recipe.inference_log_prob(self.distribution, x, labels),
          reduce_retracing=True)
    return self._eval_fn(x, labels)

  def evaluate(self, dataset):
    """Mean bits/dim over a dataset of batches, in inference mode (NaN if any is NaN).

    The batches are images, or `(images, labels)` pairs for a class-conditional flow
    (then the mean is that of `log p(x | y)`).
    """
    total, count = 0., 0
    for batch in dataset:
      x, labels = _images_and_labels(batch, self.num_classes, 'Trainer.evaluate')
      log_prob = self.log_prob(x, labels, what='Trainer.evaluate').numpy().astype(np.float64)
      total += float(log_prob.sum())
      count += log_prob.shape[0]
    if not count:
      raise ValueError('evaluate: the dataset is empty.')
    return float(bits_per_dim(total / count, self.event_shape, self.num_levels))

  def sample(self, num_samples, temperature=1., seed=0, clip=True, labels=None):
    """`num_samples` images `flow.forward(z)`, `z = sample_latents(...)`, as numpy.

    The latents come from `tfp_realnvp.latents.sample_latents` (stateless, from
    `seed`). With `clip` the images are clipped to [0, 1]: the flow's forward is exact
    on the whole latent space, so a sample may lie slightly outside the pixel range.
    `num_samples=0` gives an empty array. A class-conditional flow draws from
    `p(x | labels)`: `labels` (needed then) is one integer class for all the samples or
    one per sample, in `[0, num_classes)`.

    Raises:
      ValueError: labels missing for a class-conditional flow, given to an unconditional
        one, of the wrong shape or dtype, or out of range.
    """
    num_samples = int(num_samples)
    if num_samples < 0:
      raise ValueError(f'Trainer.sample: num_samples must be >= 0, got {num_samples}.')
    labels = self._checked_labels(labels, num_samples, 'Trainer.sample')
    if num_samples == 0:
      return np.zeros((0,) + self.event_shape, np.float32)
    if self._sample_fn is None:

      @tf.function(reduce_retracing=True)
      def sample_fn(n, temperature, seed, labels):
        z = sample_latents(self.event_shape, n, temperature, seed)
        if labels is None:
          return self.flow.forward(z)
        return self.flow.forward(z, conditional_input=labels)
      self._sample_fn = sample_fn
    images = self._sample_fn(tf.constant(num_samples, tf.int32),
                             tf.constant(temperature, tf.float32),
                             tf.constant(seed, tf.int64), labels).numpy()
    return np.clip(images, 0., 1.) if clip else images

  def recompute_batch_norm_statistics(self, dataset, max_batches=None):
    """Recomputes every batch-norm running average over `dataset` (after training).

    `tfp_realnvp.recompute_batch_norm_statistics` on the trainer's flow, outside the
    replicas: the running averages of the flow's `InvertibleBatchNorm`s and of the s/t
    networks' batch norms become the plain average of the statistics of the batches, under
    the current weights. `dataset` yields image batches, or `(images, labels)` pairs for a
    class-conditional flow, in the training dequantization; use the training data without
    shuffling or flips. Returns the number of batches used.

    Raises:
      ValueError: the flow has no batch norm, the dataset is empty, or labels are missing
        or malformed.
    """

    def batches():
      for batch in dataset:
        x, labels = _images_and_labels(batch, self.num_classes,
                                       'Trainer.recompute_batch_norm_statistics')
        x = self._check_batch(tf.convert_to_tensor(x, tf.float32))
        if labels is None:
          yield x
        else:
          yield x, self._checked_labels(labels, int(x.shape[0]),
                                        'Trainer.recompute_batch_norm_statistics')
    return recompute_batch_norm_statistics(self.flow, batches(), max_batches=max_batches)

  @property
  def learning_rate(self):
    """The current learning rate (schedule at the optimizer's iteration)."""
    return float(self.schedule(self.optimizer.iterations))

  # -- checkpoints --------------------------------------------------------------
  @property
  def store(self):
    """The `CheckpointStore` of `checkpoint_dir` (opened at first use), or None."""
    if self._store is None and self.checkpoint_dir is not None:
      optimizer_variables = [v.value if hasattr(v, 'value') and
                             not isinstance(v, tf.Variable) else v
                             for v in self.optimizer.variables]
      self._store = CheckpointStore(
          self.checkpoint, self.checkpoint_dir, max_to_keep=self.config.max_to_keep,
          checked_variables=list(self.flow.variables) + optimizer_variables,
          write_directory=strategy_lib.worker_write_dir(self.strategy,
                                                        self.checkpoint_dir))
    return self._store

  @property
  def manager(self):
    """The rotation's `tf.train.CheckpointManager`, or None."""
    return self.store.manager if self.store is not None else None

  @property
  def good_checkpoint(self):
    """The last good checkpoint (see `tfp_realnvp.train.checkpoints`), or None."""
    return self.store.slot_checkpoint('good') if self.store is not None else None

  @property
  def best_checkpoint(self):
    """The checkpoint of the lowest validation bits/dim so far, or None."""
    return self.store.slot_checkpoint('best') if self.store is not None else None

  def save(self, epoch):
    """Writes a checkpoint of the current state (numbered by step).

    Returns the path, or None when there is no checkpoint directory.

    Raises:
      NonFiniteStateError: (a `FloatingPointError`) if a variable is not finite;
        nothing is written.
    """
    if self.store is None:
      return None
    self.step_variable.assign(self.step)
    self.epoch_variable.assign(epoch)
    path = self.store.save(self.step)
    logger.info('saved checkpoint %s (step %d, %d epoch(s) done)', path, self.step, epoch)
    return path

  def restore(self, path=None):
    """Restores a checkpoint: `path`, or the newest in `checkpoint_dir` that loads.

    Checkpoints that do not load are skipped with a warning naming each and why
    (`skipped_checkpoints`). Returns the restored step, or None when there is no
    checkpoint.

    Raises:
      CheckpointLoadError: `path` does not load.
      NoLoadableCheckpointError: there are checkpoints, but none loads.
    """
    if path is None:
      if self.store is None:
        return None
      result = self.store.restore_newest()
      self.skipped_checkpoints = result.skipped
      path = result.path
      if path is None:
        return None
    else:
      restore_checkpoint(self.checkpoint, path)
    self.step = int(self.step_variable.numpy())
    self.restored_from = path
    self._bad_steps = 0
    self._iterator = None
    logger.info('restored checkpoint %s: step %d, %d epoch(s) done, optimizer '
                'iterations %d, learning rate %.3g', path, self.step,
                int(self.epoch_variable.numpy()),
                int(self.optimizer.iterations.numpy()), self.learning_rate)
    return self.step

  def _rollback(self, reason):
    """Goes back to the last good checkpoint with a lower learning rate, or raises."""
    good = self.good_checkpoint
    if good is None:
      raise RunDivergedError(f'{reason}, and there is no good checkpoint to go back to.')
    rollbacks = int(self.rollbacks_variable.numpy()) + 1
    if rollbacks > self.config.max_rollbacks:
      raise RunDivergedError(
          f'{reason} at step {self.step}; already rolled back {rollbacks - 1} times '
          f'(max_rollbacks={self.config.max_rollbacks}). Try a lower learning rate, '
          f'float32 or a smaller clip_norm.', last_good_checkpoint=good)
    factor = float(self.lr_factor.numpy()) * self.config.rollback_lr_factor
    failed_step = self.step
    self.store.restore(good)
    self.step = int(self.step_variable.numpy())
    self.lr_factor.assign(factor)
    self.rollbacks_variable.assign(rollbacks)
    self._bad_steps = 0
    self._iterator = None
    logger.warning('%s at step %d: went back to %s (step %d) and lowered the learning '
                   'rate to %.3g (factor %.3g, rollback %d of at most %d).', reason,
                   failed_step, good, self.step, self.learning_rate, factor, rollbacks,
                   self.config.max_rollbacks)

  def _checked_save(self, epoch):
    """Saves, or rolls back when a variable is not finite. True if saved."""
    try:
      self.save(epoch)
      return True
    except NonFiniteStateError as err:
      self._rollback(str(err))
      return False

  # -- the loop -----------------------------------------------------------------
  def fit(self, dataset_fn, epochs, steps_per_epoch, *, resume=False, validation_fn=None,
          on_epoch_end=None, max_seconds=None, decay_to_deadline=False, progress='auto',
          log_every=50):
    """Trains until `epochs * steps_per_epoch` steps are done.

    A fresh run (no `resume`, nothing restored) needs an empty `checkpoint_dir`: it
    never writes over the checkpoints of another run.

    Args:
      dataset_fn: see `distribute`.
      epochs: epochs to reach (a resumed run continues to this many).
      steps_per_epoch: global steps per epoch.
      resume: continue from the newest checkpoint in `checkpoint_dir` that loads (its
        step, data position, optimizer state, learning-rate factor and best score); a
        fresh start when there is none. A trainer already restored (`restore`) continues
        from there either way.
      validation_fn: optional zero-argument callable returning a dataset of validation
        batches, scored (bits/dim, inference mode) at step 0 of a fresh run and at each
        epoch's end: the score by which health and the best checkpoint are judged.
      on_epoch_end: optional `fn(epoch, logs)` called at the end of each healthy epoch,
        before the epoch's checkpoint is written (a run killed in it resumes before the
        epoch's end and calls it again), with `logs` = dict(epoch, step, partial,
        train_bits_per_dim, validation_bits_per_dim (None without validation), best,
        images_per_second, seconds, learning_rate, skipped_steps); `epoch` counts from 1;
        `best` says that this epoch's checkpoint becomes the best one.
      max_seconds: optional wall-clock budget of this call: after the step that
        exhausts it the run ends its epoch early (`logs['partial']` is True, evaluation,
        `on_epoch_end` and a checkpoint as at an epoch's end) and returns;
        `stopped_early` is then True. The workers of a cluster act on the mean of their
        clocks (one small all-reduce per step), so all of them end after the same step.
      decay_to_deadline: the config's decay (cosine or exponential) also follows the
        clock: its progress is at least the part of `max_seconds` spent, counted from
        where this call finds it, so the rate reaches its end at the deadline when that
        comes before the decay's last step. A run resumed in a new process takes up the
        decay from its step and spends the rest over its own `max_seconds`.
      progress: 'auto', 'bar', 'lines' or 'none' (see `tfp_realnvp.train.progress`);
        only the chief shows progress.
      log_every: steps between two progress lines (progress 'lines').

    Returns:
      A list of the `logs` of the epochs completed by this call.

    Raises:
      RunDivergedError: the run kept diverging after `max_rollbacks` rollbacks (or had
        no good checkpoint to go back to); it names the last good checkpoint.
      ValueError: bad arguments, or a fresh run in a folder that holds checkpoints.
    """
    if steps_per_epoch < 1 or epochs < 0:
      raise ValueError(f'need steps_per_epoch >= 1 and epochs >= 0, got '
                       f'{steps_per_epoch} and {epochs}.')
    if decay_to_deadline and (max_seconds is None or self.config.decay == 'none'):
      raise ValueError(f'decay_to_deadline needs max_seconds and a decay, got '
                       f'max_seconds={max_seconds} and decay={self.config.decay!r}.')
    printer = make_progress(progress if self.is_chief else 'none', log_every)
    started = time.monotonic()
    self.stopped_early = False
    self.stop_reason = None
    self._start(resume, steps_per_epoch, validation_fn, dataset_fn)
    self._budget = None
    if max_seconds is not None:
      decay_start = (float(self.schedule.decay_fraction(self.optimizer.iterations))
                     if decay_to_deadline else None)
      self._budget = _TimeBudget(started, float(max_seconds), decay_start)
      if decay_to_deadline:
        self.decay_progress.assign(decay_start)
    total_steps = epochs * steps_per_epoch
    history = []
    while self.step < total_steps:
      epoch = self.step // steps_per_epoch          # 0-based, running
      stats = self._train_epoch(dataset_fn, epoch, epochs, steps_per_epoch, printer)
      if stats is None:                             # rolled back: start again from there
        continue
      logs = self._epoch_logs(epoch, steps_per_epoch, stats, validation_fn)
      if not self._judge(logs, validation_fn is not None):
        continue
      if on_epoch_end is not None:
        on_epoch_end(epoch + 1, logs)
      if not self._end_epoch_checkpoints(logs, validation_fn is not None):
        continue
      printer.end_epoch(logs)
      history.append(logs)
      if stats.timed_out:
        self.stopped_early = self.step < total_steps
        self.stop_reason = 'time limit' if self.stopped_early else None
        break
      if self._patience_exhausted(epoch + 1):
        self.stopped_early = self.step < total_steps
        self.stop_reason = 'early stopping' if self.stopped_early else None
        break
    return history

  def _start(self, resume, steps_per_epoch, validation_fn, dataset_fn):
    """Restores (`resume`) or starts afresh: ActNorm's start, the untrained score,
    checkpoints at step 0."""
    if self._started:
      return
    self._started = True
    if self.restored_from is None and resume:
      if self.restore() is None:
        logger.info('no checkpoint in %s: starting from step 0', self.checkpoint_dir)
    if self.restored_from is not None:
      saved_epoch = int(self.epoch_variable.numpy())
      if saved_epoch != self.step // steps_per_epoch:
        logger.warning('the checkpoint was written at epoch %d, but step %d is in epoch '
                       '%d with steps_per_epoch=%d: counting epochs from the step.',
                       saved_epoch, self.step, self.step // steps_per_epoch + 1,
                       steps_per_epoch)
      return
    if self.store is not None and self.store.has_checkpoints():
      raise ValueError(f'{self.checkpoint_dir} holds checkpoints of an earlier run: '
                       f'resume it (resume=True) or use another checkpoint_dir.')
    self.initialize_act_norms(dataset_fn)
    if validation_fn is not None:
      score = self.evaluate(validation_fn())
      logger.info('untrained model: validation %.4f bits/dim', score)
      if math.isfinite(score):
        self.best_score.assign(score)
        self.best_epoch.assign(0)
    if self.store is not None:
      self.save(epoch=0)
      self._keep('good')
      if validation_fn is not None:
        self._keep('best')

  def initialize_act_norms(self, dataset_fn):
    """ActNorm's data-dependent start from the first global batch of `dataset_fn()`.

    Called by `fit` on a fresh start (not on resume). `initialize_act_norms` runs on the
    whole global batch in cross-replica context, so the start is the same for any number
    of replicas. Returns the number of layers started (0 without ActNorm).

    Raises:
      ValueError: the first batch holds NaN or inf, or its labels are malformed.
    """
    if not self._act_norms:
      return 0
    dataset = dataset_fn()
    self._check_element_spec(dataset.element_spec)
    x, labels = _images_and_labels(next(iter(dataset)), self.num_classes,
                                   'Trainer.initialize_act_norms')
    x = self._check_batch(tf.convert_to_tensor(x, tf.float32))
    if not bool(tf.reduce_all(tf.math.is_finite(x))):
      raise ValueError('the first training batch holds NaN or inf: the data-dependent '
                       'start of ActNorm needs finite data.')
    kwargs = {}
    if labels is not None:
      kwargs['conditional_input'] = self._checked_labels(
          labels, int(x.shape[0]), 'Trainer.initialize_act_norms')
    count = initialize_act_norms(self.flow, x, **kwargs)
    logger.info('ActNorm: data-dependent start of %d layer(s) from the first global '
                'batch (%d examples)', count, int(x.shape[0]))
    return count

  def _keep(self, slot):
    path = self.store.keep(slot, self.step)
    logger.info('kept %s as the %s checkpoint', path, slot)
    return path

  def _budget_spent(self):
    """After a step: whether `fit`'s time budget is spent; moves the decay's clock on.

    The workers of a cluster read clocks that differ; they act on the mean of their
    readings (one small all-reduce per step), so all of them end after the same step
    and decay alike.
    """
    budget = self._budget
    if budget is None:
      return False
    spent = (time.monotonic() - budget.started) / budget.seconds
    timed_out = float(spent >= 1.)
    if self._in_cluster:
      timed_out, spent = self._mean_over_workers([timed_out, spent])
    if budget.decay_start is not None:   # `spent` only grows: so does the progress
      self.decay_progress.assign(
          budget.decay_start + (1. - budget.decay_start) * min(1., spent))
    return timed_out > 0.

  def _mean_over_workers(self, values):
    values = tf.constant(values, tf.float32)
    per_replica = self.strategy.experimental_distribute_values_from_function(
        lambda _: tf.identity(values))
    mean = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)
    return [float(v) for v in mean.numpy()]

  def _train_epoch(self, dataset_fn, epoch, epochs, steps_per_epoch, printer):
    """Steps to the epoch's end (or the deadline); None when the run rolled back."""
    epoch_end = (epoch + 1) * steps_per_epoch
    printer.start_epoch(epoch + 1, epochs, self.step - epoch * steps_per_epoch,
                        steps_per_epoch)
    stats = _EpochStats()
    while self.step < epoch_end and not stats.timed_out:
      if self._iterator is None:
        self._iterator = iter(self.distribute(dataset_fn, self.step))
      if not self._step_guarded(next(self._iterator), stats):
        return None
      values = {'bits/dim': self._running_bits_per_dim(stats)}
      if stats.seconds:
        values['images/s'] = stats.images / stats.seconds
      printer.update(self.step - epoch * steps_per_epoch, values)
      interval = self.config.checkpoint_every
      if interval and self.step % interval == 0 and self.step < epoch_end:
        if not self._checked_save(epoch):
          return None
      stats.timed_out = self._budget_spent()
    return stats

  def _step_guarded(self, batch, stats):
    """One step, counted in `stats`; False when non-finite steps forced a rollback."""
    first_call = self._train_fn is None
    fresh_start = self.step == 0
    tic = time.perf_counter()
    result = self.train_step(batch)
    elapsed = time.perf_counter() - tic
    if first_call:
      logger.info('first step (tracing and compiling): %.1f s', elapsed)
    else:
      stats.images += self.config.global_batch_size
      stats.seconds += elapsed
    if result.applied:
      self._bad_steps = 0
      stats.nll_sum += result.nll
      stats.nll_count += 1
      if fresh_start and not math.isfinite(float(self.best_score.numpy())):
        # Without validation data the untrained model's score is its first batch's.
        self.best_score.assign(result.bits_per_dim)
      return True
    stats.skipped += 1
    self._bad_steps += 1
    what = ('non-finite batch' if not result.batch_finite else
            'non-finite loss' if not result.loss_finite else 'non-finite gradient')
    if self.config.mixed_precision == 'float16' and result.loss_finite:
      logger.info('step %d: %s with loss scale %g: skipped the update (loss scale '
                  'halved)', self.step, what, float(self.loss_scale.numpy()) * 2)
      self._bad_steps = 0
    else:
      logger.warning('step %d: %s (nll %s): skipped the update and kept the batch-norm '
                     'statistics', self.step, what, result.nll)
    if self._bad_steps >= self.config.max_bad_steps:
      self._rollback(f'{self._bad_steps} non-finite steps in a row')
      return False
    return True

  def _running_bits_per_dim(self, stats):
    if not stats.nll_count:
      return float('nan')
    return float(bits_per_dim(-stats.nll_sum / stats.nll_count, self.event_shape,
                              self.num_levels))

  def _epoch_logs(self, epoch, steps_per_epoch, stats, validation_fn):
    partial = self.step < (epoch + 1) * steps_per_epoch
    if partial:
      logger.info('time limit reached at step %d (epoch %d, step %d of %d)', self.step,
                  epoch + 1, self.step - epoch * steps_per_epoch, steps_per_epoch)
    validation = None if validation_fn is None else self.evaluate(validation_fn())
    return dict(
        epoch=epoch + 1, step=self.step, partial=partial,
        train_bits_per_dim=self._running_bits_per_dim(stats),
        validation_bits_per_dim=validation, best=False,
        images_per_second=(stats.images / stats.seconds if stats.seconds
                           else float('nan')),
        seconds=time.time() - stats.started, learning_rate=self.learning_rate,
        skipped_steps=stats.skipped)

  def _judge(self, logs, has_validation):
    """Judges the epoch's score; rolls back and returns False when it is unhealthy."""
    score = logs['validation_bits_per_dim'] if has_validation else logs[
        'train_bits_per_dim']
    what = 'validation bits/dim' if has_validation else 'training bits/dim'
    verdict = self._health.judge(score, float(self.best_score.numpy()), what)
    if not verdict.healthy:
      self._rollback(f'epoch {logs["epoch"]} is unhealthy: {verdict.reason}')
      return False
    if verdict.improved:
      self.best_score.assign(score)
      self.best_epoch.assign(logs['epoch'])
      logs['best'] = has_validation
    return True

  def _end_epoch_checkpoints(self, logs, has_validation):
    """The epoch's checkpoint, kept as the last good (and best) one. False: rolled back."""
    epoch = logs['epoch'] - 1 if logs['partial'] else logs['epoch']
    if not self._checked_save(epoch):
      return False
    if self.store is not None:
      self._keep('good')
      if has_validation and logs['best']:
        self._keep('best')
    return True

  def _patience_exhausted(self, epoch):
    patience = self.config.patience
    best_epoch = int(self.best_epoch.numpy())
    if patience is None or best_epoch < 0 or epoch - best_epoch < patience:
      return False
    logger.info('early stopping: no better validation bits/dim for %d epoch(s) (best: '
                'epoch %d, %.4f)', epoch - best_epoch, best_epoch,
                float(self.best_score.numpy()))
    return True

  # -- export -------------------------------------------------------------------
  def export(self, path, checkpoint=None, check_images=None, flow_fn=None, check_labels=None):
    """Writes a SavedModel (see `export_saved_model`); returns `path`.

    The flow is rebuilt with `flow_fn` (default: the one the trainer was built with)
    outside the strategy and given either the values of `checkpoint` (e.g.
    `best_checkpoint`) or the trainer's current ones, so the export holds plain float32
    variables whatever the strategy.

    Args:
      path: the SavedModel folder.
      checkpoint: optional checkpoint path to export instead of the current state.
      check_images: optional batch of real images (dequantized, in [0, 1]) on which
        `log_prob` and `sample` must be finite before anything is written.
      flow_fn: optional builder of the flow (same variables as the trained one).
      check_labels: the integer classes of `check_images` (class-conditional flows).
    """
    copy = (flow_fn or self._flow_fn)()
    if checkpoint is not None:
      restore_checkpoint(tf.train.Checkpoint(flow=copy), checkpoint, partial=True)
    else:
      source, target = list(self.flow.variables), list(copy.variables)
      if len(source) != len(target) or any(
          tuple(s.shape) != tuple(t.shape) for s, t in zip(source, target)):
        raise ValueError('flow_fn builds a flow whose variables do not match the '
                         'trained one.')
      for s, t in zip(source, target):
        t.assign(s.read_value())
    return export_saved_model(copy, self.event_shape, path, num_levels=self.num_levels,
                              check_images=check_images, check_labels=check_labels)


def _check_label_spec(dtype, shape, num_classes, what, scalar_ok=False):
  """Raises `ValueError` unless labels of `dtype` and `shape` are integer class indices."""
  shape = tf.TensorShape(shape)
  if not dtype.is_integer:
    hint = (' (one-hot rows? pass their argmax, tf.argmax(labels, -1))'
            if dtype.is_floating and shape.rank == 2 else '')
    raise ValueError(f'{what}: labels must be integer class indices in [0, {num_classes}) '
                     f'of shape (batch,); got {dtype.name} labels of shape '
                     f'{tuple(shape.as_list()) if shape.rank is not None else shape}'
                     f'{hint}.')
  ranks = (0, 1) if scalar_ok else (1,)
  if shape.rank is not None and shape.rank not in ranks:
    raise ValueError(f'{what}: labels must have shape (batch,), one class index per '
                     f'example; got shape {tuple(shape.as_list())}.')


def _images_and_labels(batch, num_classes, what):
  """`(images, labels)` of a batch (labels None for image batches), checked against K."""
  if isinstance(batch, (tuple, list)):
    if len(batch) != 2:
      raise ValueError(f'{what}: expected image batches or (images, labels) pairs; got '
                       f'{len(batch)} tensors per batch.')
    images, labels = batch
  else:
    images, labels = batch, None
  recipe.check_labels_for(num_classes, labels, what)
  return images, labels
