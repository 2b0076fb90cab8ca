"""The vector architecture: couplings with 1-D masks and MLP s/t, for events `(D,)`."""

import functools

from tfp_realnvp import nets
from tfp_realnvp.bijectors.masked_affine_coupling import MaskedAffineCoupling
from tfp_realnvp.bijectors.masks import vector_masks

__all__ = ['build_vector_flow']


def build_vector_flow(event_shape, num_couplings, hidden_units, vector_masks_pattern,
                      mask_seed, normalization, network_dtype, num_classes):
  """The steps of a vector flow, data first: `num_couplings x [coupling]`, each with the
  layers `normalization` puts around it (Glow's 1x1 mixing and ActNorm by default, the
  paper's batch norm on request).

  Masks alternate a conditioning half and its complement (`vector_masks`); each coupling's
  s and t come from an MLP with `hidden_units`. No logit step: the data are real vectors.
  """
  size = event_shape[0]
  if size < 2:
    raise ValueError(
        f'a vector Real NVP needs D >= 2 (got event_shape {event_shape}): a coupling must '
        f'condition one part on another. For 1-D data use '
        f'tfp_realnvp.bijectors.PiecewiseLinear.')
  if num_couplings < 1:
    raise ValueError(f'num_couplings must be >= 1, got {num_couplings}.')
  steps = []
  for k, mask in enumerate(vector_masks(size, num_couplings, vector_masks_pattern, mask_seed)):
    network = functools.partial(nets.mlp_shift_and_log_scale,
                                hidden_units=tuple(hidden_units), dtype=network_dtype,
                                name=f'coupling_{k}_net')
    steps += normalization.before_coupling(event_shape, f'coupling_{k}')
    steps.append(MaskedAffineCoupling(event_shape, mask_type='custom', mask=mask,
                                      network=network,
                                      num_classes=num_classes, name=f'coupling_{k}'))
    steps += normalization.after_coupling(event_shape, '', str(k))
  return steps

