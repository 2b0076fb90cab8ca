"""The paper's multi-scale architecture for images (Dinh et al., 2017, sec. 3.6 and 4.1)."""

import functools

from tfp_realnvp import nets
from tfp_realnvp.bijectors.composition import FlowSequence
from tfp_realnvp.bijectors.composition import Inverted
from tfp_realnvp.bijectors.factor_out import FactorOut
from tfp_realnvp.bijectors.logit_transform import LogitTransform
from tfp_realnvp.bijectors.masked_affine_coupling import MaskedAffineCoupling
from tfp_realnvp.bijectors.squeeze import Squeeze

__all__ = ['build_image_flow', 'check_image_shape', 'walk_steps']


def build_image_flow(event_shape, num_scales, hidden_channels, num_res_blocks, dropout_rate,
                     logit_alpha, normalization, network_dtype, num_classes, validate_args,
                     network=None):
  """`(logit, scales)`: the preprocessing and the scales' `FlowSequence`s, outermost first.

  In the paper's order (data to latent), for `num_scales = S` and features `F`:

  ```none
  logit(a + (1 - 2a) x)
  scale i < S - 1 on (H/2^i, W/2^i, C 2^i), nets with F 2^i features:
    3 x [checkerboard coupling + batch norm]; squeeze;
    3 x [channel coupling + batch norm];
    factor out half of the channels; scale i + 1 on the other half; un-squeeze
  scale S - 1: 4 x [checkerboard coupling + batch norm]
  ```

  `scales[0]` holds `scales[1]` inside its factor-out, and so on. `normalization` is a
  `normalization.Steps` (the batch norm after each coupling, or Glow's layers).

  `network=None` gives every coupling the paper's ResNet
  (`nets.resnet_shift_and_log_scale` with `num_res_blocks`, `dropout_rate` and
  `network_dtype`). Another s/t network comes from a factory
  `network(input_shape, output_channels, features=F, mask_type=M, name=N) -> model`,
  called once per coupling with the scale's features `F` and the coupling's mask type.
  """
  check_image_shape(event_shape, num_scales)
  height, width, channels = event_shape

  if network is None:
    def network(input_shape, output_channels, features, mask_type, name):
      del mask_type
      return nets.resnet_shift_and_log_scale(
          input_shape, output_channels, hidden_channels=features,
          num_res_blocks=num_res_blocks, dropout_rate=dropout_rate, dtype=network_dtype,
          name=name)

  def couplings(shape, mask_type, count, features, prefix):
    steps = []
    for k in range(count):
      name = f'{prefix}_{mask_type}_coupling_{k}'
      steps += normalization.before_coupling(shape, name)
      steps.append(MaskedAffineCoupling(
          shape, mask_type=mask_type, parity=k % 2, num_classes=num_classes,
          network=functools.partial(network, features=features, mask_type=mask_type,
                                    name=f'{name}_net'),
          name=name))
      steps += normalization.after_coupling(shape, f'{prefix}_', f'{mask_type}_{k}')
    return steps

  scales = [None] * num_scales
  inner = None
  for i in reversed(range(num_scales)):
    shape = (height >> i, width >> i, channels << i)
    features = hidden_channels << i
    prefix = f'scale_{i}'
    if i == num_scales - 1:
      steps = couplings(shape, 'checkerboard', 4, features, prefix)
    else:
      squeeze = Squeeze(shape, name=f'{prefix}_squeeze')
      squeezed = squeeze.latent_shape
      steps = (couplings(shape, 'checkerboard', 3, features, prefix)
               + [squeeze]
               + couplings(squeezed, 'channel', 3, features, prefix)
               + [FactorOut(inner, squeezed, name=f'{prefix}_factor_out'),
                  Inverted(squeeze, name=f'{prefix}_unsqueeze')])
    inner = FlowSequence(steps, event_ndims=3, name=prefix)
    scales[i] = inner
  logit = LogitTransform(event_ndims=3, alpha=logit_alpha, validate_args=validate_args)
  return logit, scales


def walk_steps(steps):
  """Yields every step of `steps` and of the sequences and factor-outs inside, data first."""
  pending = list(steps)
  while pending:
    step = pending.pop(0)
    yield step
    if isinstance(step, FlowSequence):
      pending = list(step.steps) + pending
    elif isinstance(step, FactorOut):
      pending = [step.bijector] + pending


def check_image_shape(event_shape, num_scales):
  """Raises `ValueError`, saying what to change, for a shape the scales cannot squeeze."""
  height, width, channels = event_shape
  if min(event_shape) < 1:
    raise ValueError(f'event_shape must be positive, got {event_shape}.')
  if num_scales < 1:
    raise ValueError(f'num_scales must be >= 1, got {num_scales}.')
  factor = 2 ** (num_scales - 1)
  if height % factor or width % factor:
    raise ValueError(
        f'an image of spatial size {height}x{width} cannot be squeezed {num_scales - 1} '
        f'time(s): H and W must divide by 2**(num_scales - 1) = {factor}. Use fewer scales or '
        f'pad/crop the images to a multiple of {factor}.')
  if height // factor < 2 or width // factor < 2:
    most = 1
    while height % (2 ** most) == 0 and width % (2 ** most) == 0 and (
        height // 2 ** most >= 2 and width // 2 ** most >= 2):
      most += 1
    raise ValueError(
        f'too many scales for {height}x{width}: the last scale would be '
        f'{height // factor}x{width // factor}, and its checkerboard couplings need at least '
        f'2x2 pixels. Use num_scales <= {most}.')
  del channels
