"""`RealNVPChain`: the paper's multi-scale flow as one TFP bijector."""

import numpy as np
import tensorflow as tf

from tfp_realnvp.bijectors.composition import FlowSequence
from tfp_realnvp.bijectors.composition import Inverted
from tfp_realnvp.bijectors.factor_out import FactorOut
from tfp_realnvp.bijectors.invertible_batch_norm import InvertibleBatchNorm
from tfp_realnvp.bijectors.logit_transform import LogitTransform
from tfp_realnvp.bijectors.masked_affine_coupling import MaskedAffineCoupling
from tfp_realnvp.bijectors.squeeze import Squeeze

__all__ = ['RealNVPChain']


class RealNVPChain(FlowSequence):
  """Real NVP (Dinh et al., 2017): latent `z` to data `x`, as a `tfb.Bijector`.

  Use it with a standard normal base over the whole event:

  ```python
  flow = RealNVPChain(event_shape=(28, 28, 1), num_scales=2)
  dist = tfd.TransformedDistribution(
      tfd.Sample(tfd.Normal(0., 1.), (28, 28, 1)), flow)
  x = dist.sample(16)                                   # pixels in [0, 1]
  nll = -dist.log_prob(x)                               # nats per image
  loss = -dist.log_prob(x, bijector_kwargs={'training': True})  # training
  ```

  Direction: `forward` maps the latent to pixels (sampling); `inverse` is the
  paper's `f`, pixels to latent (density). The latent has the data's shape.

  #### Image events `(H, W, C)`, pixels in [0, 1]

  In the paper's order (data to latent, `inverse`), for `num_scales = S`:

  ```none
  x (H, W, C), dequantized pixels in [0, 1]
   |  LogitTransform: y = logit(a + (1 - 2a) x), a = 0.05
   |  scale 0 (H, W, C), s/t nets with F features:
   |    3 x [checkerboard coupling (parity 0, 1, 0) + InvertibleBatchNorm]
   |    squeeze                 -> (H/2, W/2, 4C)
   |    3 x [channel coupling (parity 0, 1, 0) + InvertibleBatchNorm]
   |    factor out: the first 2C channels go to the latent; the other 2C go on
   |      scale 1 on (H/2, W/2, 2C), nets with 2F features, the same pattern
   |        ...
   |          last scale (H/2^(S-1), W/2^(S-1), C 2^(S-1)), F 2^(S-1) features:
   |            4 x [checkerboard coupling + InvertibleBatchNorm]
   |    un-squeeze the concatenated [factored | transformed] -> (H, W, C)
  z (H, W, C)
  ```

  Each coupling's s and t come from one ResNet (`num_res_blocks` residual
  blocks of `hidden_channels * 2**scale` features, batch and weight norm
  inside, zero-initialised output), so the flow starts near the identity
  (up to the logit step). `log_prob` is the density of the dequantized
  pixels in [0, 1]: use `tfp_realnvp.bits_per_dim` to compare with papers.

  #### Vector events `(D,)`

  `num_couplings` affine couplings, each followed by an
  `InvertibleBatchNorm`, s/t from MLPs with `hidden_units`. Masks
  (`vector_masks`): `'half'` alternates the first `D // 2` entries and the
  rest as the conditioning part (seeds 000 and 003); `'random'` draws a random
  half of the entries (from `mask_seed`) and alternates it with its
  complement, as in Fleuret's lecture (seed 002). No logit step: the data are
  real vectors.

  #### Modes and checks

  Training mode (batch statistics, running averages updated once per pass)
  is asked for per call with `training=True`; without it every call is in
  inference mode. With `validate_args=True` (the default here, it costs a
  few reductions) `inverse` checks that pixels are finite and in [0, 1] and
  `forward` that latents are finite; wrong shapes raise `ValueError` always.

  Args:
    event_shape: `(H, W, C)` for images or `(D,)` for vectors.
    num_scales: S, number of scales (images); H and W must divide by
      `2**(S - 1)` and the last scale must keep at least 2x2 pixels.
    hidden_channels: F, features of the first scale's ResNets (doubled at
      each scale).
    num_res_blocks: B, residual blocks per ResNet.
    num_couplings: couplings of a vector flow.
    hidden_units: hidden widths of a vector flow's MLPs.
    vector_masks: `'half'` or `'random'` (vector flows, see above).
    mask_seed: seed of the random masks.
    logit_alpha: `a` of the logit preprocessing (images).
    batch_norm: put an `InvertibleBatchNorm` after every coupling.
    batch_norm_momentum: momentum of their running averages.
    network_dtype: Keras dtype policy of the s/t networks, e.g.
      `'mixed_bfloat16'`; coupling arithmetic and log-dets stay float32.
    validate_args: run-time checks of inputs (see above).
    name: name of the bijector.

  Raises:
    ValueError: at construction, for an event shape that cannot work (odd
      size for a squeeze, too many scales) with what to change.

  #### References
  [1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation
       using Real NVP. ICLR 2017. https://arxiv.org/abs/1605.08803
  """

  def __init__(self,
               event_shape,
               num_scales=2,
               hidden_channels=64,
               num_res_blocks=8,
               num_couplings=8,
               hidden_units=(128, 128),
               vector_masks='half',
               mask_seed=0,
               logit_alpha=0.05,
               batch_norm=True,
               batch_norm_momentum=0.95,
               network_dtype=None,
               validate_args=True,
               name='real_nvp_chain'):
    event_shape = tuple(int(d) for d in event_shape)
    self._event_shape_tuple = event_shape
    self._num_scales = int(num_scales)
    self._bn_kwargs = dict(momentum=batch_norm_momentum)
    self._batch_norm = batch_norm
    self._network_dtype = network_dtype
    if len(event_shape) == 3:
      _check_image_shape(event_shape, self._num_scales)
      self._logit = LogitTransform(event_ndims=3, alpha=logit_alpha,
                                   validate_args=validate_args)
      self._scales = self._build_scales(event_shape, hidden_channels,
                                        num_res_blocks)
      steps = [self._logit, self._scales[0]]
    elif len(event_shape) == 1:
      if event_shape[0] < 2:
        raise ValueError(
            f'a vector Real NVP needs D >= 2 (got event_shape {event_shape}): '
            f'a coupling must condition one part on another. For 1-D data use '
            f'tfp_realnvp.bijectors.PiecewiseLinear.')
      if num_couplings < 1:
        raise ValueError(f'num_couplings must be >= 1, got {num_couplings}.')
      self._logit = None
      self._scales = []
      steps = []
      masks = _vector_masks(event_shape[0], num_couplings, vector_masks,
                            mask_seed)
      for k, mask in enumerate(masks):
        steps.append(MaskedAffineCoupling(
            event_shape, mask_type='custom', mask=mask,
            hidden_units=tuple(hidden_units), network_dtype=network_dtype,
            name=f'coupling_{k}'))
        if batch_norm:
          steps.append(InvertibleBatchNorm(event_shape, name=f'batch_norm_{k}',
                                           **self._bn_kwargs))
    else:
      raise ValueError(
          f'event_shape must be (H, W, C) for images or (D,) for vectors, got '
          f'{event_shape}.')
    super().__init__(steps, event_ndims=len(event_shape),
                     validate_args=validate_args, name=name)

  # -- construction -----------------------------------------------------------
  def _coupling_block(self, shape, mask_type, count, features, num_res_blocks,
                      prefix):
    steps = []
    for k in range(count):
      steps.append(MaskedAffineCoupling(
          shape, mask_type=mask_type, parity=k % 2, hidden_channels=features,
          num_res_blocks=num_res_blocks, network_dtype=self._network_dtype,
          name=f'{prefix}_{mask_type}_coupling_{k}'))
      if self._batch_norm:
        steps.append(InvertibleBatchNorm(
            shape, name=f'{prefix}_batch_norm_{mask_type}_{k}',
            **self._bn_kwargs))
    return steps

  def _build_scales(self, event_shape, hidden_channels, num_res_blocks):
    """Builds the scales from the last (innermost) to the first."""
    height, width, channels = event_shape
    shapes = [(height >> i, width >> i, channels << i)
              for i in range(self._num_scales)]
    scales = [None] * self._num_scales
    inner = None
    for i in reversed(range(self._num_scales)):
      shape = shapes[i]
      features = hidden_channels << i
      prefix = f'scale_{i}'
      if i == self._num_scales - 1:
        steps = self._coupling_block(shape, 'checkerboard', 4, features,
                                     num_res_blocks, prefix)
      else:
        squeeze = Squeeze(shape, name=f'{prefix}_squeeze')
        squeezed = squeeze.latent_shape
        steps = (
            self._coupling_block(shape, 'checkerboard', 3, features,
                                 num_res_blocks, prefix)
            + [squeeze]
            + self._coupling_block(squeezed, 'channel', 3, features,
                                   num_res_blocks, prefix)
            + [FactorOut(inner, squeezed, name=f'{prefix}_factor_out'),
               Inverted(squeeze, name=f'{prefix}_unsqueeze')])
      inner = FlowSequence(steps, event_ndims=3, name=prefix)
      scales[i] = inner
    return scales

  # -- properties -------------------------------------------------------------
  @property
  def event_shape(self):
    """The data (and latent) event shape."""
    return self._event_shape_tuple

  @property
  def num_scales(self):
    return self._num_scales

  @property
  def scales(self):
    """The scales' `FlowSequence`s, outermost first (images only)."""
    return tuple(self._scales)

  @property
  def preprocessing(self):
    """The `LogitTransform` nearest the data (images), or None."""
    return self._logit

  @property
  def couplings(self):
    """Every `MaskedAffineCoupling`, in the paper's order."""
    return tuple(b for b in self._walk() if isinstance(b, MaskedAffineCoupling))

  @property
  def batch_norms(self):
    """Every `InvertibleBatchNorm`, in the paper's order."""
    return tuple(b for b in self._walk() if isinstance(b, InvertibleBatchNorm))

  @property
  def networks(self):
    """The s/t network of every coupling."""
    return tuple(c.network for c in self.couplings)

  @property
  def l2_regularized_variables(self):
    """The couplings' `scale` vectors, which the paper's L2 (5e-5) applies to."""
    return tuple(c.scale for c in self.couplings)

  def _walk(self):
    """Yields every step, depth first, in the paper's order."""
    pending = list(self._steps)
    while pending:
      step = pending.pop(0)
      yield step
      if isinstance(step, FlowSequence):
        pending = list(step.steps) + pending
      elif isinstance(step, FactorOut):
        pending = [step.bijector] + pending

  def summary(self):
    """A text listing of the steps with their event shapes, data first."""
    lines = [f'{self.name}: event {self._event_shape_tuple}']
    depth = {id(s): 1 for s in self._steps}
    for step in self._walk():
      indent = '  ' * depth.get(id(step), 1)
      children = (step.steps if isinstance(step, FlowSequence)
                  else (step.bijector,) if isinstance(step, FactorOut) else ())
      for child in children:
        depth[id(child)] = depth.get(id(step), 1) + 1
      shape = getattr(step, '_event_shape_tuple', None)
      if isinstance(step, Squeeze):
        shape = f'{step.data_shape} -> {step.latent_shape}'
      elif isinstance(step, Inverted):
        shape = (f'{step.bijector.latent_shape} -> {step.bijector.data_shape}')
      extra = ''
      if isinstance(step, MaskedAffineCoupling):
        extra = f' mask={step.mask_type} parity={step.parity}'
      lines.append(f'{indent}{step.name} [{type(step).__name__}]'
                   f'{" " + str(shape) if shape else ""}{extra}')
    return '\n'.join(lines)

  # -- checks -----------------------------------------------------------------
  def _check_shape(self, x, what):
    expected = self._event_shape_tuple
    rank = x.shape.rank
    if rank is None:
      return
    if rank < len(expected):
      raise ValueError(
          f'{self.name}: expected {what} of shape (..., '
          f'{", ".join(map(str, expected))}), got rank {rank} with shape '
          f'{tuple(x.shape)}.')
    actual = tuple(x.shape[-len(expected):])
    if any(a is not None and a != e for a, e in zip(actual, expected)):
      raise ValueError(
          f'{self.name}: expected {what} of shape (..., '
          f'{", ".join(map(str, expected))}), got {tuple(x.shape)}.')

  def _inverse_and_log_det(self, x, training=False):
    self._check_shape(x, 'data')
    if self.validate_args and self._logit is None:
      x = self._maybe_assert_finite(x)
    return super()._inverse_and_log_det(x, training=training)

  def _forward_and_log_det(self, z, training=False):
    self._check_shape(z, 'latents')
    z = self._maybe_assert_finite(z)
    return super()._forward_and_log_det(z, training=training)


def _vector_masks(size, count, pattern, seed):
  """Alternating 0/1 masks for a vector flow (1 = conditioning entry)."""
  if pattern == 'half':
    first = (np.arange(size) < size // 2).astype(np.float32)
  elif pattern == 'random':
    first = np.zeros(size, np.float32)
    rng = np.random.default_rng(seed)
    first[rng.permutation(size)[:size // 2]] = 1.
  else:
    raise ValueError(f"vector_masks must be 'half' or 'random', got "
                     f'{pattern!r}.')
  masks = []
  for k in range(count):
    if pattern == 'random' and k % 2 == 0 and k > 0:
      first = np.zeros(size, np.float32)
      first[rng.permutation(size)[:size // 2]] = 1.
    masks.append(first if k % 2 == 0 else 1. - first)
  return masks


def _check_image_shape(event_shape, num_scales):
  height, width, channels = event_shape
  if min(event_shape) < 1:
    raise ValueError(f'event_shape must be positive, got {event_shape}.')
  if num_scales < 1:
    raise ValueError(f'num_scales must be >= 1, got {num_scales}.')
  factor = 2 ** (num_scales - 1)
  if height % factor or width % factor:
    raise ValueError(
        f'an image of spatial size {height}x{width} cannot be squeezed '
        f'{num_scales - 1} time(s): H and W must divide by 2**(num_scales - 1) '
        f'= {factor}. Use fewer scales or pad/crop the images to a multiple '
        f'of {factor}.')
  if height // factor < 2 or width // factor < 2:
    most = 1
    while height % (2 ** most) == 0 and width % (2 ** most) == 0 and (
        height // 2 ** most >= 2 and width // 2 ** most >= 2):
      most += 1
    raise ValueError(
        f'too many scales for {height}x{width}: the last scale would be '
        f'{height // factor}x{width // factor}, and its checkerboard couplings '
        f'need at least 2x2 pixels. Use num_scales <= {most}.')
