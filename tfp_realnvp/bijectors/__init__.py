"""The bijectors of Real NVP, each a `tfp.bijectors.Bijector`.

Every bijector here follows TFP's direction convention: `forward` maps latent to data
(sampling), `inverse` is the paper's `f`, data to latent (density). They share one contract,
stated in `flow_bijector`: value and log-det from one pass, any batch shape, keyword arguments
`training` and `conditional_input` routed per call.
"""

from tfp_realnvp.bijectors.act_norm import ActNorm
from tfp_realnvp.bijectors.act_norm import initialize_act_norms
from tfp_realnvp.bijectors.class_conditional_affine import ClassConditionalAffine
from tfp_realnvp.bijectors.composition import FlowSequence
from tfp_realnvp.bijectors.composition import Inverted
from tfp_realnvp.bijectors.factor_out import FactorOut
from tfp_realnvp.bijectors.flow_bijector import FlowBijector
from tfp_realnvp.bijectors.invertible_1x1_conv import Invertible1x1Conv
from tfp_realnvp.bijectors.invertible_batch_norm import InvertibleBatchNorm
from tfp_realnvp.bijectors.logit_transform import LogitTransform
from tfp_realnvp.bijectors.masked_affine_coupling import MaskedAffineCoupling
from tfp_realnvp.bijectors.masks import checkerboard_mask
from tfp_realnvp.bijectors.masks import half_mask
from tfp_realnvp.bijectors.piecewise_linear import PiecewiseLinear
from tfp_realnvp.bijectors.squeeze import Squeeze

__all__ = [
    'ActNorm',
    'Invertible1x1Conv',
    'ClassConditionalAffine',
    'FactorOut',
    'FlowBijector',
    'FlowSequence',
    'InvertibleBatchNorm',
    'Inverted',
    'LogitTransform',
    'MaskedAffineCoupling',
    'PiecewiseLinear',
    'Squeeze',
    'checkerboard_mask',
    'half_mask',
    'initialize_act_norms',
]
