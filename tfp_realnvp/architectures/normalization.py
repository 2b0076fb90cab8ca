"""What surrounds each coupling: Real NVP's batch norm, or Glow's ActNorm and 1x1 convolution."""

import dataclasses
import zlib

from tfp_realnvp.bijectors.act_norm import ActNorm
from tfp_realnvp.bijectors.invertible_1x1_conv import Invertible1x1Conv
from tfp_realnvp.bijectors.invertible_batch_norm import InvertibleBatchNorm

__all__ = ['Steps']


@dataclasses.dataclass(frozen=True)
class Steps:
  """The steps around every coupling, in the paper's order (data first).

  ```none
  [Invertible1x1Conv]   if invertible_1x1_conv     (Glow, sec. 3.2)
  coupling
  [InvertibleBatchNorm] if batch_norm              (Real NVP, sec. 3.7)
  [ActNorm]             if act_norm                (Glow, sec. 3.1)
  ```
  """
  batch_norm: bool = True
  batch_norm_momentum: float = 0.95
  act_norm: bool = False
  invertible_1x1_conv: bool = False

  def __post_init__(self):
    if self.batch_norm and self.act_norm:
      raise ValueError('batch_norm and act_norm are two normalisations of the same place: '
                       'choose one (batch_norm=False, act_norm=True for Glow\'s).')

  def before_coupling(self, shape, name):
    if not self.invertible_1x1_conv:
      return []
    return [Invertible1x1Conv(shape, seed=zlib.crc32(name.encode()),
                              name=f'{name}_1x1_conv')]

  def after_coupling(self, shape, prefix, suffix):
    if self.batch_norm:
      return [InvertibleBatchNorm(shape, momentum=self.batch_norm_momentum,
                                  name=f'{prefix}batch_norm_{suffix}')]
    if self.act_norm:
      return [ActNorm(shape, name=f'{prefix}act_norm_{suffix}')]
    return []
