"""`TrainConfig`: the settings of a `Trainer`, checked when they are made."""

import dataclasses
import math

from tfp_realnvp.train import recipe
from tfp_realnvp.train.schedule import DECAYS

__all__ = ['TrainConfig']


@dataclasses.dataclass
class TrainConfig:
  """Settings of `Trainer` (defaults: the paper's recipe, see `recipe`).

  Attributes:
    global_batch_size: examples per step, split evenly over the replicas.
    learning_rate: Adam's peak learning rate (paper: 1e-3).
    l2_scale: L2 penalty on the couplings' s-scale vectors (paper: 5e-5).
    clip_norm: clip the (global) gradient to this norm; None: no clipping.
    warmup_steps: linear learning-rate warm-up.
    decay: 'none', 'cosine' or 'exponential' (see `WarmupDecay`).
    decay_steps: length of the decay after the warm-up (needed with a decay).
    final_fraction: floor of the cosine / factor of the exponential decay.
    mixed_precision: None, 'bfloat16' or 'float16': the dtype of the s/t networks (the
      flow must be built with it, see `make_flow`); 'float16' turns on dynamic loss
      scaling.
    initial_loss_scale: starting loss scale (float16 only).
    loss_scale_growth_steps: finite steps before the loss scale doubles.
    jit_compile: compile the step's forward and backward pass with XLA (one replica
      only: with several, it is turned off with a warning).
    checkpoint_every: save every this many steps (and at each epoch's end); None: at
      epoch ends only.
    max_to_keep: checkpoints kept in the rotation (the last good and the best one are
      kept apart from it, see `tfp_realnvp.train.checkpoints`).
    max_bad_steps: consecutive non-finite steps that are skipped before the run goes
      back to its last good checkpoint.
    rollback_lr_factor: the learning rate is multiplied by this at each rollback.
    max_rollbacks: a rollback beyond this many ends the run with `RunDivergedError`.
    max_bits_per_dim_rise: an epoch whose score (validation bits/dim, or the epoch's
      training bits/dim without validation data) is more than this many bits/dim above
      the best score so far, the untrained model's included, is unhealthy, like a
      non-finite score: the run goes back to its last good checkpoint. 1 bit/dim is far
      outside the epoch-to-epoch noise of a healthy run (hundredths).
    patience: early stopping: end the run when its score (the validation bits/dim, or the
      training bits/dim without validation data) has not improved for this many epochs;
      None: never.
  """
  global_batch_size: int = recipe.BATCH_SIZE
  learning_rate: float = recipe.LEARNING_RATE
  l2_scale: float = recipe.L2_SCALE
  clip_norm: float = recipe.CLIP_NORM
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
  max_bits_per_dim_rise: float = 1.
  patience: int = None

  def __post_init__(self):
    if self.global_batch_size < 1:
      raise ValueError(f'global_batch_size must be >= 1, got '
                       f'{self.global_batch_size}.')
    if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
      raise ValueError(f'learning_rate must be a positive number, got '
                       f'{self.learning_rate}.')
    if not (math.isfinite(self.l2_scale) and self.l2_scale >= 0):
      raise ValueError(f'l2_scale must be >= 0, got {self.l2_scale}.')
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
    if self.clip_norm is not None and not self.clip_norm > 0:
      raise ValueError(f'clip_norm must be positive or None, got '
                       f'{self.clip_norm}.')
    if self.checkpoint_every is not None and self.checkpoint_every < 1:
      raise ValueError(f'checkpoint_every must be >= 1 or None, got '
                       f'{self.checkpoint_every}.')
    if self.max_to_keep < 1:
      raise ValueError(f'max_to_keep must be >= 1, got {self.max_to_keep}.')
    if self.max_bad_steps < 1:
      raise ValueError(f'max_bad_steps must be >= 1, got {self.max_bad_steps}.')
    if not 0. < self.rollback_lr_factor <= 1.:
      raise ValueError(f'rollback_lr_factor must be in (0, 1], got '
                       f'{self.rollback_lr_factor}.')
    if self.max_rollbacks < 0:
      raise ValueError(f'max_rollbacks must be >= 0, got {self.max_rollbacks}.')
    if not self.max_bits_per_dim_rise > 0:
      raise ValueError(f'max_bits_per_dim_rise must be positive, got '
                       f'{self.max_bits_per_dim_rise}.')
    if self.patience is not None and self.patience < 1:
      raise ValueError(f'patience must be >= 1 or None, got {self.patience}.')
