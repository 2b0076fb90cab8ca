"""The image architecture's builder with another s/t network, and the walk over its steps."""

import keras
import numpy as np
import tensorflow as tf

from tfp_realnvp import RealNVPChain
from tfp_realnvp import architectures
from tfp_realnvp.architectures.normalization import Steps
from tfp_realnvp.bijectors import FlowSequence
from tfp_realnvp.bijectors import InvertibleBatchNorm
from tfp_realnvp.bijectors import MaskedAffineCoupling


def _conv_network(input_shape, output_channels, features, mask_type, name):
  del mask_type
  inputs = keras.Input(shape=tuple(input_shape))
  h = keras.layers.Conv2D(features, 3, padding='same', activation='relu')(inputs)
  outputs = keras.layers.Conv2D(2 * output_channels, 3, padding='same',
                                kernel_initializer=keras.initializers.RandomNormal(0., 0.01))(h)
  return keras.Model(inputs, outputs, name=name)


def _build(shape, network=None):
  return architectures.build_image_flow(
      shape, 2, 4, 1, dropout_rate=0., logit_alpha=0.05, normalization=Steps(),
      network_dtype=None, num_classes=None, validate_args=False, network=network)


def test_a_network_factory_builds_every_coupling_with_its_scale_and_mask():
  calls = []

  def network(input_shape, output_channels, features, mask_type, name):
    calls.append((tuple(input_shape), output_channels, features, mask_type, name))
    return _conv_network(input_shape, output_channels, features, mask_type, name)

  logit, scales = _build((8, 8, 1), network)
  flow = FlowSequence([logit, scales[0]], event_ndims=3)
  couplings = [s for s in architectures.walk_steps(flow.steps)
               if isinstance(s, MaskedAffineCoupling)]
  # The inner scale is built first (the outer one's factor-out holds it).
  assert [c[:4] for c in calls] == (
      [((4, 4, 2), 2, 8, 'checkerboard')] * 4
      + [((8, 8, 1), 1, 4, 'checkerboard')] * 3 + [((4, 4, 2), 2, 4, 'channel')] * 3)
  # ... and walked after the outer one's couplings.
  assert [c.network.name for c in couplings] == [c[4] for c in calls[4:] + calls[:4]]

  x = tf.constant(np.random.default_rng(0).uniform(0.01, 0.99, (3, 8, 8, 1)), tf.float32)
  z = flow.forward(x)
  np.testing.assert_allclose(flow.inverse(z), x, atol=1e-5)
  assert np.all(np.isfinite(flow.forward_log_det_jacobian(x, event_ndims=3)))


def test_walk_steps_yields_the_chains_steps_in_the_papers_order():
  chain = RealNVPChain((8, 8, 1), num_scales=2, hidden_channels=4, num_res_blocks=1)
  steps = list(architectures.walk_steps(chain.steps))
  names = [s.name for s in steps]
  first_inner = names.index('scale_1_checkerboard_coupling_0')
  assert names.index('scale_0_checkerboard_coupling_2') < names.index('scale_0_squeeze')
  assert names.index('scale_0_channel_coupling_2') < names.index('scale_0_factor_out')
  assert names.index('scale_0_factor_out') < first_inner < names.index('scale_0_unsqueeze')
  assert [s.name for s in steps if isinstance(s, MaskedAffineCoupling)] == [
      c.name for c in chain.couplings]
  assert sum(isinstance(s, InvertibleBatchNorm) for s in steps) == 10


def test_the_default_network_is_the_papers_resnet():
  logit, scales = _build((8, 8, 1))
  flow = FlowSequence([logit, scales[0]], event_ndims=3)
  couplings = [s for s in architectures.walk_steps(flow.steps)
               if isinstance(s, MaskedAffineCoupling)]
  reference = RealNVPChain((8, 8, 1), num_scales=2, hidden_channels=4, num_res_blocks=1)
  assert [c.name for c in couplings] == [c.name for c in reference.couplings]
  for ours, theirs in zip(couplings, reference.couplings):
    assert ([tuple(w.shape) for w in ours.network.weights]
            == [tuple(w.shape) for w in theirs.network.weights])
