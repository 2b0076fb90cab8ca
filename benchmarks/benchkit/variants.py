"""Model variants for the per-step comparisons, built from the package's public parts.

Nothing here changes the package: a variant is either `RealNVPChain` with
other arguments, or the same multi-scale architecture assembled from
`tfp_realnvp.bijectors` with another s/t network passed to
`MaskedAffineCoupling(..., network=...)`.

`skip_resnet` is the s/t network shape of the PyTorch reimplementation
chrischute/real-nvp (https://github.com/chrischute/real-nvp), written anew
with the package's layers: batch norm of the input, concatenated ReLU
`[relu(x), relu(-x)]` (Shang et al., "Understanding and Improving
Convolutional Neural Networks via Concatenated Rectified Linear Units",
ICML 2016, https://arxiv.org/abs/1603.05201), a 3x3 input convolution,
residual blocks whose outputs each add a 1x1 convolution into a skip sum,
then batch norm, ReLU and a 1x1 output convolution.

`BatchNormRecomputer` replaces every running average (the
invertible batch norms' and the s/t networks' own) by statistics measured
over a data set, as PyTorch's `torch.optim.swa_utils.update_bn` does.
"""

import dataclasses
import typing

from benchkit.environment import tf_modules
from benchkit.models import count_params


@dataclasses.dataclass
class ImageModel:
  flow: typing.Any
  dist: typing.Any
  couplings: tuple
  batch_norms: tuple       # the flow's InvertibleBatchNorms
  networks: tuple          # the couplings' s/t networks
  l2_variables: tuple
  description: str = ''

  @property
  def num_params(self):
    return count_params(self.dist.trainable_variables)


def distribution(flow, event_shape):
  _, tfp = tf_modules()
  tfd = tfp.distributions
  return tfd.TransformedDistribution(
      tfd.Sample(tfd.Normal(0., 1.), tuple(event_shape)), flow)


def package_model(event_shape, num_scales=2, hidden_channels=32,
                  num_res_blocks=4, precision=None, seed=0, **kwargs):
  """`RealNVPChain` with these arguments (`precision`: 'bfloat16' or None)."""
  import keras  # pylint: disable=g-import-not-at-top

  from tfp_realnvp.train import make_flow  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  flow = make_flow(event_shape, num_scales=num_scales,
                   hidden_channels=hidden_channels,
                   num_res_blocks=num_res_blocks, mixed_precision=precision,
                   **kwargs)
  return ImageModel(flow, distribution(flow, event_shape), flow.couplings,
                    flow.batch_norms, flow.networks,
                    tuple(flow.l2_regularized_variables))


# -- s/t networks ---------------------------------------------------------------
def skip_resnet(input_shape, output_channels, hidden_channels, num_res_blocks,
                double_input=False, concat_relu=True, skips=True,
                input_norm=True, output_kernel=1, name='skip_resnet'):
  """The reference's s/t network shape (see the module docstring).

  Args:
    input_shape: `(H, W, C_in)`.
    output_channels: the network emits `2 * output_channels`.
    hidden_channels: features of the residual blocks.
    num_res_blocks: residual blocks.
    double_input: multiply the normalised input by 2 (the reference does for
      checkerboard couplings, whose input is half zeros).
    concat_relu: `[relu(x), relu(-x)]` on the normalised input (else
      `relu(x)`).
    skips: 1x1 convolutions from the input convolution and every block
      summed into the output (else the last block's output).
    input_norm: batch norm on the input.
    output_kernel: kernel size of the (zero-initialised) output convolution.
    name: model name.
  """
  import keras  # pylint: disable=g-import-not-at-top

  from tfp_realnvp.nets import ResidualBlock  # pylint: disable=g-import-not-at-top
  from tfp_realnvp.nets import WeightNormConv2D  # pylint: disable=g-import-not-at-top
  from tfp_realnvp.nets import resnet as resnet_lib  # pylint: disable=g-import-not-at-top
  batch_norm = resnet_lib._batch_norm  # pylint: disable=protected-access
  inputs = keras.Input(shape=tuple(input_shape), name=f'{name}_input')
  h = batch_norm('bn_in')(inputs) if input_norm else inputs
  if double_input:
    h = h * 2.
  h = keras.ops.concatenate([h, -h], axis=-1) if concat_relu else h
  h = keras.ops.relu(h)
  h = WeightNormConv2D(hidden_channels, 3, name='conv_in')(h)
  total = WeightNormConv2D(hidden_channels, 1, name='skip_in')(h) if skips else None
  for i in range(num_res_blocks):
    h = ResidualBlock(hidden_channels, name=f'block_{i}')(h)
    if skips:
      total = total + WeightNormConv2D(hidden_channels, 1, name=f'skip_{i}')(h)
  h = batch_norm('bn_out')(total if skips else h)
  h = keras.ops.relu(h)
  outputs = WeightNormConv2D(2 * output_channels, output_kernel,
                             zero_init=True, name='conv_out')(h)
  return keras.Model(inputs, outputs, name=name)


def plain_resnet(input_shape, output_channels, hidden_channels,
                 num_res_blocks, name='resnet', **unused):
  """The package's default s/t network."""
  from tfp_realnvp import nets  # pylint: disable=g-import-not-at-top
  return nets.resnet_shift_and_log_scale(
      input_shape, output_channels, hidden_channels=hidden_channels,
      num_res_blocks=num_res_blocks, name=name)


NETWORKS = {'plain': plain_resnet, 'skip': skip_resnet}


def assembled_model(event_shape, num_scales=2, hidden_channels=32,
                    num_res_blocks=4, network='skip', network_kwargs=None,
                    channel_width=1, batch_norm=True, batch_norm_momentum=0.95,
                    seed=0):
  """The package's multi-scale architecture with another s/t network.

  `architectures.build_image_flow`, as `RealNVPChain` builds it, with its
  `network` factory set: `network` names a builder of `NETWORKS`;
  `channel_width` multiplies the features of the channel couplings (the
  reference doubles them: their input is the squeezed image); the reference's
  shape doubles the input of checkerboard couplings (half of it is zeros).
  """
  import keras  # pylint: disable=g-import-not-at-top

  from tfp_realnvp import architectures  # pylint: disable=g-import-not-at-top
  from tfp_realnvp import bijectors as tfb_rnvp  # pylint: disable=g-import-not-at-top
  from tfp_realnvp.architectures.normalization import Steps  # pylint: disable=g-import-not-at-top
  from tfp_realnvp.chain import IMAGE_DEFAULTS  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  builder = NETWORKS[network]

  def build_network(input_shape, output_channels, features, mask_type, name):
    kwargs = dict(network_kwargs or {})
    if network == 'skip' and mask_type == 'checkerboard':
      kwargs.setdefault('double_input', True)
    if mask_type == 'channel':
      features *= channel_width
    return builder(input_shape, output_channels, features, num_res_blocks,
                   name=name, **kwargs)

  logit, scales = architectures.build_image_flow(
      tuple(event_shape), num_scales, hidden_channels, num_res_blocks,
      dropout_rate=0., logit_alpha=IMAGE_DEFAULTS['logit_alpha'],
      normalization=Steps(batch_norm=batch_norm,
                          batch_norm_momentum=batch_norm_momentum),
      network_dtype=None, num_classes=None, validate_args=False,
      network=build_network)
  flow = tfb_rnvp.FlowSequence([logit, scales[0]], event_ndims=3,
                               name='assembled_real_nvp')
  steps = tuple(architectures.walk_steps(flow.steps))
  couplings = tuple(s for s in steps
                    if isinstance(s, tfb_rnvp.MaskedAffineCoupling))
  norms = tuple(s for s in steps
                if isinstance(s, tfb_rnvp.InvertibleBatchNorm))
  return ImageModel(flow, distribution(flow, event_shape), couplings, norms,
                    tuple(c.network for c in couplings),
                    tuple(c.scale for c in couplings))


def set_output_gain(model, gain):
  """Sets the weight-norm gain of every s/t network's output convolution.

  The package (and `skip_resnet`) start it at zero, so that each coupling
  starts as the identity. PyTorch's `weight_norm` starts the gain at the
  norm of the initial direction, which for PyTorch's default convolution
  initialisation (uniform, bound `1 / sqrt(fan_in)`) is about
  `sqrt(1 / 3)` per output channel: the reference's couplings start as
  random affine maps. `gain` ~0.577 mimics that.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  for net in model.networks:
    layer = net.get_layer('conv_out')
    layer.gain.assign(np.full(layer.gain.shape, gain, np.float32))


# -- batch-norm statistics ------------------------------------------------------
def network_batch_norm_layers(networks):
  """Every Keras batch-norm layer inside the s/t networks."""
  import keras  # pylint: disable=g-import-not-at-top
  layers = []
  for net in networks:
    for layer in net._flatten_layers(include_self=False, recursive=True):  # pylint: disable=protected-access
      if isinstance(layer, keras.layers.BatchNormalization):
        layers.append(layer)
  return layers


class BatchNormRecomputer:
  """Sets every running mean/variance to its value over `data.train`.

  Calling it makes one pass over the (dequantized) training images in
  training mode with every momentum at 0, so that each batch norm normalises
  with the batch's own statistics (what a full-data estimate approximates);
  each layer's population mean and variance are then the averages over
  batches (the variance by the law of total variance). The pass is traced
  once and reused by later calls. Returns the number of batches.
  """

  def __init__(self, model, data, batch_size=500, num_examples=None, seed=7):
    tf, _ = tf_modules()
    from tfp_realnvp import data as data_lib  # pylint: disable=g-import-not-at-top
    self._flow_bns = list(model.batch_norms)
    self._net_bns = network_batch_norm_layers(model.networks)
    self._stats = ([(b.moving_mean, b.moving_variance) for b in self._flow_bns]
                   + [(l.moving_mean, l.moving_variance)
                      for l in self._net_bns])
    stats = self._stats

    def batch_stats(x):
      model.dist.log_prob(x, bijector_kwargs={'training': True})
      return [tf.identity(tf.convert_to_tensor(v)) for pair in stats
              for v in pair]

    self._batch_stats = tf.function(batch_stats)
    images = data.train if num_examples is None else data.train[:num_examples]
    self._dataset = data_lib.image_pipeline(
        images, data.num_levels, batch_size, training=True, seed=seed,
        repeat=1)

  def _set_momenta(self, values):
    for b, m in zip(self._flow_bns, values):
      b._momentum = m  # pylint: disable=protected-access
    for l, m in zip(self._net_bns, values[len(self._flow_bns):]):
      l.momentum = m

  def __call__(self):
    import numpy as np  # pylint: disable=g-import-not-at-top
    saved = ([b._momentum for b in self._flow_bns]  # pylint: disable=protected-access
             + [l.momentum for l in self._net_bns])
    # Momenta are read when the pass is traced (the first call).
    self._set_momenta([0.] * len(saved))
    try:
      sums, count = None, 0
      for x in self._dataset:
        values = [v.numpy().astype(np.float64) for v in self._batch_stats(x)]
        moments = [(m, v + m * m) for m, v in zip(values[0::2], values[1::2])]
        sums = moments if sums is None else [
            (a + m, b + q) for (a, b), (m, q) in zip(sums, moments)]
        count += 1
    finally:
      self._set_momenta(saved)
    for (mean_var, var_var), (first, second) in zip(self._stats, sums):
      mean = first / count
      mean_var.assign(mean.astype(np.float32))
      var_var.assign(np.maximum(second / count - mean * mean, 0.).astype(
          np.float32))
    return count


def snapshot_batch_norm_statistics(model):
  """Current running statistics, to restore with `restore_...`."""
  flow_bns = list(model.batch_norms)
  net_bns = network_batch_norm_layers(model.networks)
  variables = ([v for b in flow_bns for v in (b.moving_mean, b.moving_variance)]
               + [v for l in net_bns for v in (l.moving_mean,
                                                l.moving_variance)])
  return [(v, v.numpy()) for v in variables]


def restore_batch_norm_statistics(snapshot):
  for variable, value in snapshot:
    variable.assign(value)
