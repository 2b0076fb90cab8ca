"""Helpers shared by the tests: tiny networks, data, perturbation, autodiff log-dets, and a
registry of every bijector of the package (both `RealNVPChain` kinds included).

Import it as `import flowtest` (the tests folder is on `sys.path` under pytest).
"""

import dataclasses
import functools
from typing import Callable
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp import RealNVPChain
from tfp_realnvp import nets
from tfp_realnvp.bijectors import ActNorm
from tfp_realnvp.bijectors import ClassConditionalAffine
from tfp_realnvp.bijectors import FactorOut
from tfp_realnvp.bijectors import FlowSequence
from tfp_realnvp.bijectors import Inverted
from tfp_realnvp.bijectors import Invertible1x1Conv
from tfp_realnvp.bijectors import InvertibleBatchNorm
from tfp_realnvp.bijectors import LogitTransform
from tfp_realnvp.bijectors import MaskedAffineCoupling
from tfp_realnvp.bijectors import PiecewiseLinear
from tfp_realnvp.bijectors import Squeeze

tfd = tfp.distributions

TINY_IMAGE_NET = dict(hidden_channels=4, num_res_blocks=1)
tiny_resnet = functools.partial(nets.resnet_shift_and_log_scale, **TINY_IMAGE_NET)
tiny_mlp = functools.partial(nets.mlp_shift_and_log_scale, hidden_units=(8,))


def pixels(shape, batch=8, seed=0):
  """Dequantized 8-bit pixels in [0, 1), float32 numpy, shape `(batch,) + shape`."""
  rng = np.random.default_rng(seed)
  k = rng.integers(0, 256, (batch,) + tuple(shape))
  return ((k + rng.uniform(size=k.shape)) / 256.).astype(np.float32)


def image_data(shape, batch=3, seed=0):
  """Pixels away from the borders of [0, 1], a float32 tensor."""
  return tf.random.stateless_uniform((batch,) + tuple(shape), [seed, 1], minval=0.02,
                                     maxval=0.98)


def real_data(shape, batch=3, seed=0):
  """Standard-normal values, a float32 tensor."""
  return tf.random.stateless_normal((batch,) + tuple(shape), [seed, 2])


def fresh(t):
  """A new tensor with the same values (float64 lists and arrays become float32): no cached
  pass can match it."""
  value = np.array(t)
  return tf.constant(value.astype(np.float32) if value.dtype == np.float64 else value)


def perturb(bijector, seed=0, scale=0.1):
  """Moves every variable away from its initial value so nothing is trivial.

  Zero-initialised output layers make couplings the identity at the start; a log-det test on
  the identity could not fail. Variances stay positive.
  """
  rng = np.random.default_rng(seed)
  for v in bijector.variables:
    if not v.dtype.is_floating:   # permutations, flags
      continue
    shape = tuple(v.shape)
    if 'variance' in v.name:
      v.assign(rng.uniform(0.5, 2.0, shape).astype(np.float32))
    else:
      v.assign(v.numpy() + scale * rng.standard_normal(shape).astype(np.float32))
  return bijector


def autodiff_log_det(fn, x):
  """log|det J| of `fn` at every example of `x`, by `batch_jacobian` + slogdet (float64)."""
  x = tf.convert_to_tensor(x)
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = fn(x)
  jac = tape.batch_jacobian(y, x).numpy()
  batch = x.shape[0]
  size = int(np.prod(x.shape[1:]))
  assert int(np.prod(y.shape[1:])) == size
  jac = jac.reshape(batch, size, size).astype(np.float64)
  sign, log_det = np.linalg.slogdet(jac)
  assert np.all(sign != 0), 'singular Jacobian'
  return log_det


def standard_normal_base(event_shape):
  return tfd.Sample(tfd.Normal(0., 1.), tuple(event_shape))


def distribution(flow, event_shape=None):
  """`TransformedDistribution` of a standard normal by `flow`."""
  event_shape = event_shape or flow.event_shape
  return tfd.TransformedDistribution(standard_normal_base(event_shape), flow)


def train_a_little(bijector, event_shape, make_data, steps=3, kwargs_fn=None, lr=1e-2):
  """A few Adam steps of maximum likelihood in training mode (eager)."""
  dist = distribution(bijector, event_shape)
  variables = dist.trainable_variables
  if not variables:
    return
  optimizer = keras.optimizers.Adam(lr)
  for step in range(steps):
    x = make_data(event_shape, batch=8, seed=100 + step)
    kwargs = dict(training=True, **(kwargs_fn((8,)) if kwargs_fn else {}))
    with tf.GradientTape() as tape:
      loss = -tf.reduce_mean(dist.log_prob(x, bijector_kwargs=kwargs))
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))


def labels_for(num_classes):
  """`kwargs_fn(batch_shape) -> {'conditional_input': labels}` with fixed integer labels."""
  def kwargs_fn(batch_shape):
    count = int(np.prod(batch_shape, dtype=np.int64))
    labels = np.arange(count) % num_classes
    return {'conditional_input': tf.constant(labels.reshape(batch_shape), tf.int32)}
  return kwargs_fn


@dataclasses.dataclass(frozen=True)
class Case:
  """One bijector of the registry.

  Attributes:
    build: zero-argument constructor.
    data_shape: event shape of `inverse`'s input.
    make_data: `(shape, batch, seed) -> tensor` of valid inputs of `inverse`.
    kwargs_fn: optional `batch_shape -> dict` of per-call keyword arguments (labels).
    has_networks: the bijector runs Keras s/t networks (counted in composition tests).
    perturb_scale: how far `perturb` moves the variables (large enough for a log-det far
      from 0).
  """
  build: Callable
  data_shape: tuple
  make_data: Callable = real_data
  kwargs_fn: Optional[Callable] = None
  has_networks: bool = False
  perturb_scale: float = 0.1

  def kwargs(self, batch_shape):
    return self.kwargs_fn(tuple(batch_shape)) if self.kwargs_fn else {}


def _factor_out():
  return FactorOut(MaskedAffineCoupling((2, 2, 2), 'checkerboard', 1, network=tiny_resnet),
                   (2, 2, 4))


def _sequence_with_squeeze():
  squeeze = Squeeze((4, 2, 1))
  return FlowSequence([
      MaskedAffineCoupling((4, 2, 1), 'checkerboard', 0, network=tiny_resnet),
      squeeze,
      MaskedAffineCoupling((2, 1, 4), 'channel', 1, network=tiny_resnet),
      Inverted(squeeze)], event_ndims=3)


REGISTRY = {
    'coupling_checkerboard': Case(
        lambda: MaskedAffineCoupling((4, 4, 2), 'checkerboard', 0, network=tiny_resnet),
        (4, 4, 2), has_networks=True),
    'coupling_checkerboard_odd': Case(
        lambda: MaskedAffineCoupling((3, 3, 1), 'checkerboard', 1, network=tiny_resnet),
        (3, 3, 1), has_networks=True),
    'coupling_channel': Case(
        lambda: MaskedAffineCoupling((2, 2, 4), 'channel', 0, network=tiny_resnet),
        (2, 2, 4), has_networks=True),
    'coupling_channel_parity1': Case(
        lambda: MaskedAffineCoupling((2, 2, 4), 'channel', 1, network=tiny_resnet),
        (2, 2, 4), has_networks=True),
    'coupling_vector_half': Case(
        lambda: MaskedAffineCoupling((5,), 'half', 1, network=tiny_mlp), (5,),
        has_networks=True),
    'coupling_vector_custom': Case(
        lambda: MaskedAffineCoupling((6,), 'custom', mask=[1, 0, 0, 1, 1, 0],
                                     network=tiny_mlp), (6,), has_networks=True),
    'coupling_conditional': Case(
        lambda: MaskedAffineCoupling((4, 4, 1), 'checkerboard', 0, network=tiny_resnet,
                                     num_classes=3),
        (4, 4, 1), kwargs_fn=labels_for(3), has_networks=True),
    'batch_norm_image': Case(lambda: InvertibleBatchNorm((3, 2, 3)), (3, 2, 3)),
    'batch_norm_vector': Case(lambda: InvertibleBatchNorm((4,)), (4,)),
    'act_norm_image': Case(lambda: ActNorm((3, 2, 3)), (3, 2, 3), perturb_scale=0.5),
    'act_norm_vector': Case(lambda: ActNorm((4,)), (4,), perturb_scale=0.5),
    'invertible_1x1_conv': Case(lambda: Invertible1x1Conv((2, 3, 4), seed=1), (2, 3, 4)),
    'squeeze': Case(lambda: Squeeze((4, 2, 3)), (4, 2, 3)),
    'logit': Case(lambda: LogitTransform(event_ndims=3), (3, 3, 2), image_data),
    'factor_out': Case(_factor_out, (2, 2, 4), has_networks=True),
    'sequence_with_squeeze': Case(_sequence_with_squeeze, (4, 2, 1), has_networks=True),
    'piecewise_linear': Case(lambda: PiecewiseLinear(6, -2., 2.), (3,)),   # elementwise
    'class_conditional_affine': Case(lambda: ClassConditionalAffine((2, 3), 4), (2, 3),
                                     kwargs_fn=labels_for(4)),
    'chain_image': Case(lambda: RealNVPChain((4, 4, 1), num_scales=2, **TINY_IMAGE_NET),
                        (4, 4, 1), image_data, has_networks=True),
    'chain_image_rgb': Case(lambda: RealNVPChain((4, 4, 3), num_scales=2, **TINY_IMAGE_NET),
                            (4, 4, 3), image_data, has_networks=True),
    'chain_image_conditional': Case(
        lambda: RealNVPChain((4, 4, 1), num_scales=2, num_classes=3, **TINY_IMAGE_NET),
        (4, 4, 1), image_data, kwargs_fn=labels_for(3), has_networks=True),
    'chain_image_glow_layers': Case(
        lambda: RealNVPChain((4, 4, 2), num_scales=1, batch_norm=False, act_norm=True,
                             invertible_1x1_conv=True, **TINY_IMAGE_NET),
        (4, 4, 2), image_data, has_networks=True),
    'chain_vector': Case(lambda: RealNVPChain((4,), num_couplings=4, hidden_units=(8,)),
                         (4,), has_networks=True),
    'chain_vector_batch_norm': Case(
        lambda: RealNVPChain((4,), num_couplings=4, hidden_units=(8,), batch_norm=True),
        (4,), has_networks=True),
    'chain_vector_conditional': Case(
        lambda: RealNVPChain((3,), num_couplings=2, hidden_units=(8,), num_classes=2),
        (3,), kwargs_fn=labels_for(2), has_networks=True),
}
