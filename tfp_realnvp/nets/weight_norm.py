"""Weight-normalised 2-D convolution (Salimans & Kingma, 2016) as a Keras 3 layer."""

import keras
from keras import ops

__all__ = ['WeightNormConv2D']


class WeightNormConv2D(keras.layers.Layer):
  """A 2-D convolution whose kernel is `g * v / ||v||`, per output channel.

  The direction `v` and the length `g` are trained separately, which is the
  reparameterisation Real NVP uses inside its s/t ResNets. With
  `zero_init=True` the gain `g` (and the bias) start at zero, so the layer
  outputs exactly zero at initialisation while `v` stays random: a coupling
  whose last layer is zero-initialised starts as the identity and still
  receives gradients through `g`.

  Args:
    filters: number of output channels.
    kernel_size: int or pair, the spatial size of the kernel.
    zero_init: start `g` and the bias at zero (output layers).
    use_bias: add a learned bias.
    **kwargs: passed to `keras.layers.Layer` (e.g. `name`, `dtype`).

  #### References
  [1]: Tim Salimans, Diederik P. Kingma. Weight Normalization: A Simple
       Reparameterization to Accelerate Training of Deep Neural Networks.
       NeurIPS 2016. https://arxiv.org/abs/1602.07868
  """

  def __init__(self, filters, kernel_size=3, zero_init=False, use_bias=True,
               **kwargs):
    super().__init__(**kwargs)
    self.filters = int(filters)
    self.kernel_size = ((kernel_size, kernel_size)
                        if isinstance(kernel_size, int) else tuple(kernel_size))
    self.zero_init = zero_init
    self.use_bias = use_bias

  def build(self, input_shape):
    in_channels = int(input_shape[-1])
    self.direction = self.add_weight(
        name='direction', shape=self.kernel_size + (in_channels, self.filters),
        initializer=keras.initializers.HeNormal())
    self.gain = self.add_weight(
        name='gain', shape=(self.filters,),
        initializer='zeros' if self.zero_init else 'ones')
    self.bias = (self.add_weight(name='bias', shape=(self.filters,),
                                 initializer='zeros')
                 if self.use_bias else None)

  def call(self, inputs):
    norm = ops.sqrt(ops.sum(ops.square(self.direction), axis=(0, 1, 2)) + 1e-12)
    kernel = self.direction * (self.gain / norm)
    outputs = ops.conv(inputs, kernel, strides=1, padding='same')
    if self.use_bias:
      outputs = outputs + self.bias
    return outputs

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:-1]) + (self.filters,)

  def get_config(self):
    return dict(super().get_config(), filters=self.filters,
                kernel_size=self.kernel_size, zero_init=self.zero_init,
                use_bias=self.use_bias)
