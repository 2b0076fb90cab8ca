"""Weight-normalised 2-D convolution (Salimans & Kingma, 2016) as a Keras 3 layer."""

import keras
import tensorflow as tf
from keras import ops

from tfp_realnvp import _compat

__all__ = ['WeightNormConv2D']


@keras.saving.register_keras_serializable(package='tfp_realnvp')
class WeightNormConv2D(keras.layers.Layer):
  """A 2-D convolution whose kernel is `g * v / ||v||`, per output channel.

  The direction `v` and the length `g` are trained separately, which is the
  reparameterisation Real NVP uses inside its s/t ResNets. With
  `zero_init=True` the gain `g` (and the bias) start at zero, so the layer
  outputs exactly zero at initialisation while `v` stays random: a coupling
  whose last layer is zero-initialised starts as the identity and still
  receives gradients through `g`.

  Speed (training): inside a network whose batch norms normalise every use of this
  layer's output with batch statistics, a per-channel constant added to the output
  changes nothing downstream, so the loss's gradient with respect to the bias is
  exactly zero. The network that owns the layer then sets
  `bias_cancelled_in_training` (a callable returning whether that holds now, e.g.
  that those batch norms are trainable), and a training-mode call returns that zero
  instead of reducing the output's gradient over the whole batch; the bias still
  enters the output (inference-mode batch norms use running averages that include
  it). `resnet_shift_and_log_scale` sets it on every convolution but the last.

  Speed (CPU): with 8 or more input channels, the gradients of the
  convolution run TensorFlow's 'eigen_tensor' CPU kernels in graph mode
  (see `_eigen_gradient_graph`); the bias is a `BiasAdd`, whose gradient is
  a dedicated reduction.

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
    self.bias_cancelled_in_training = None

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

  def _kernel_and_bias(self, out_scale=None, out_shift=None):
    """The effective kernel `g * v / ||v||` and bias, in the compute dtype.

    With `out_scale` and `out_shift` (per output channel), returns the kernel
    and bias of `conv(x) * out_scale + out_shift` instead: a following affine
    map (an inference-mode batch norm) folded into the convolution.
    """
    direction = ops.cast(self.direction, self.compute_dtype)
    gain = ops.cast(self.gain, self.compute_dtype)
    norm = ops.sqrt(ops.sum(ops.square(direction), axis=(0, 1, 2)) + 1e-12)
    factor = gain / norm
    bias = (ops.cast(self.bias, self.compute_dtype) if self.use_bias
            else None)
    if out_scale is not None:
      factor = factor * out_scale
      bias = out_shift if bias is None else bias * out_scale + out_shift
    return direction * factor, bias

  def _convolve(self, inputs, kernel, bias):
    """`conv(inputs, kernel) + bias` with this layer's padding and stride."""
    if kernel.shape[2] >= _MIN_CHANNELS_FOR_EIGEN_GRADIENTS:
      outputs = _conv2d_same_eigen_gradients(inputs, kernel)
    else:
      outputs = tf.nn.conv2d(inputs, kernel, strides=1, padding='SAME')
    if bias is not None:
      outputs = tf.nn.bias_add(outputs, bias)
    return outputs

  def call(self, inputs, training=None):
    kernel, bias = self._kernel_and_bias()
    if (training and bias is not None and self.bias_cancelled_in_training is not None
        and self.bias_cancelled_in_training()):
      bias = _with_zero_gradient(bias)
    return self._convolve(inputs, kernel, bias)

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:-1]) + (self.filters,)

  def get_config(self):
    return dict(super().get_config(), filters=self.filters,
                kernel_size=self.kernel_size, zero_init=self.zero_init,
                use_bias=self.use_bias)


@tf.custom_gradient
def _with_zero_gradient(bias):
  """`bias`, whose gradient is the zero that it is known to be (see the class)."""
  def grad(upstream):
    del upstream  # Not reduced: that reduction over the batch is the cost saved.
    return tf.zeros(bias.shape, bias.dtype)

  return tf.identity(bias), grad


# With fewer input channels TensorFlow's default CPU kernels are the faster.
_MIN_CHANNELS_FOR_EIGEN_GRADIENTS = 8
_EIGEN_LABELS = {'Conv2DBackpropInput': 'eigen_tensor',
                 'Conv2DBackpropFilter': 'eigen_tensor'}


def _eigen_gradient_graph():
  """The graph to label the gradient ops in, or None to use the defaults.

  TensorFlow registers two CPU kernels for each convolution gradient: the
  default ('custom') one and one labelled 'eigen_tensor' (Eigen's tensor
  contractions). With 32-64 channels the latter is the faster here: the
  kernel gradient 1.1-1.4x faster (5x with 2 output channels), the input
  gradient 1.2-1.8x (measured in `benchmarks/README.md`). Labels only make sense in a
  graph (`tf.function`) that runs on CPU and is not compiled by XLA (which
  has no labelled kernels); anywhere else the defaults are used.
  """
  if tf.executing_eagerly() or tf.config.list_logical_devices('GPU'):
    return None
  graph = tf.compat.v1.get_default_graph()
  if _compat.in_xla_context(graph):
    return None
  return graph


@tf.custom_gradient
def _conv2d_same_eigen_gradients(inputs, kernel):
  """`tf.nn.conv2d(inputs, kernel, 1, 'SAME')`, NHWC, faster gradients on CPU.

  The value and the gradient are those of `tf.nn.conv2d`; only the CPU
  kernels that compute the gradient are chosen (see `_eigen_gradient_graph`).
  """
  outputs = tf.nn.conv2d(inputs, kernel, strides=1, padding='SAME')
  # Name the gradient ops after the layer, as TensorFlow's own gradients are
  # (profiles then attribute them).
  scope = ('' if tf.executing_eagerly()
           else tf.compat.v1.get_default_graph().get_name_scope())

  def grad(upstream):
    def gradients():
      d_inputs = tf.raw_ops.Conv2DBackpropInput(
          input_sizes=tf.shape(inputs), filter=kernel, out_backprop=upstream,
          strides=[1, 1, 1, 1], padding='SAME')
      d_kernel = tf.raw_ops.Conv2DBackpropFilter(
          input=inputs, filter_sizes=tf.shape(kernel), out_backprop=upstream,
          strides=[1, 1, 1, 1], padding='SAME')
      return d_inputs, d_kernel

    with tf.compat.v1.name_scope(f'gradient_tape/{scope}/' if scope else None):
      with _compat.kernel_label_map(_eigen_gradient_graph(), _EIGEN_LABELS):
        return gradients()

  return outputs, grad
