"""The bijectors of Real NVP, each a `tfp.bijectors.Bijector`.

Every bijector here follows TFP's direction convention: `forward` maps latent
to data (sampling), `inverse` is the paper's `f`, data to latent (density).
"""

from tfp_realnvp.bijectors.composition import FlowSequence
from tfp_realnvp.bijectors.composition import Inverted
from tfp_realnvp.bijectors.factor_out import FactorOut
from tfp_realnvp.bijectors.flow_bijector import FlowBijector
from tfp_realnvp.bijectors.invertible_batch_norm import InvertibleBatchNorm
from tfp_realnvp.bijectors.logit_transform import LogitTransform
from tfp_realnvp.bijectors.masked_affine_coupling import checkerboard_mask
from tfp_realnvp.bijectors.masked_affine_coupling import half_mask
from tfp_realnvp.bijectors.masked_affine_coupling import MaskedAffineCoupling
from tfp_realnvp.bijectors.squeeze import Squeeze

try:  # Added by a parallel piece of work; optional until it lands.
  from tfp_realnvp.bijectors.piecewise_linear import PiecewiseLinear
except ImportError:  # pragma: no cover
  pass

__all__ = [
    'MaskedAffineCoupling', 'InvertibleBatchNorm', 'Squeeze', 'LogitTransform',
    'FactorOut', 'FlowBijector', 'FlowSequence', 'Inverted',
    'checkerboard_mask', 'half_mask', 'PiecewiseLinear',
]
