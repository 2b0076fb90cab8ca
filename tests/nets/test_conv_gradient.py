"""The custom convolution gradient (TensorFlow's 'eigen_tensor' CPU kernels) against
autodiff of `tf.nn.conv2d`."""

import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp.nets import weight_norm

TOLERANCE = 1e-4


def value_and_gradients(conv, inputs, kernel, upstream):
  with tf.GradientTape() as tape:
    tape.watch([inputs, kernel])
    outputs = conv(inputs, kernel)
  return (outputs,) + tuple(tape.gradient(outputs, [inputs, kernel],
                                          output_gradients=upstream))


def reference(inputs, kernel):
  return tf.nn.conv2d(inputs, kernel, strides=1, padding='SAME')


@tf.custom_gradient
def flipped_kernel_gradient(inputs, kernel):
  """A deliberately wrong gradient: the input gradient of the spatially flipped kernel."""
  outputs = reference(inputs, kernel)

  def grad(upstream):
    d_inputs = tf.raw_ops.Conv2DBackpropInput(
        input_sizes=tf.shape(inputs), filter=tf.reverse(kernel, [0, 1]),
        out_backprop=upstream, strides=[1, 1, 1, 1], padding='SAME')
    d_kernel = tf.raw_ops.Conv2DBackpropFilter(
        input=inputs, filter_sizes=tf.shape(kernel), out_backprop=upstream,
        strides=[1, 1, 1, 1], padding='SAME')
    return d_inputs, d_kernel
  return outputs, grad


def problem(seed, in_channels=16, out_channels=12, kernel_size=3):
  rng = np.random.default_rng(seed)
  inputs = tf.constant(rng.normal(size=(3, 7, 6, in_channels)).astype(np.float32))
  kernel = tf.constant(rng.normal(size=(kernel_size, kernel_size, in_channels, out_channels))
                       .astype(np.float32))
  upstream = tf.constant(rng.normal(size=(3, 7, 6, out_channels)).astype(np.float32))
  return inputs, kernel, upstream


def assert_close(actual, expected):
  scale = np.abs(expected.numpy()).max()
  np.testing.assert_allclose(actual.numpy(), expected.numpy(), atol=TOLERANCE * scale)


@pytest.mark.parametrize('kernel_size', [1, 3])
def test_gradients_in_a_graph_equal_autodiff_of_conv2d(kernel_size):
  inputs, kernel, upstream = problem(0, kernel_size=kernel_size)
  custom = tf.function(lambda *args: value_and_gradients(
      weight_norm._conv2d_same_eigen_gradients, *args))
  expected = tf.function(lambda *args: value_and_gradients(reference, *args))(
      inputs, kernel, upstream)
  for actual, wanted in zip(custom(inputs, kernel, upstream), expected):
    assert_close(actual, wanted)
  # The graph really runs the labelled kernels this module chooses.
  graph = custom.get_concrete_function(inputs, kernel, upstream).graph
  labels = {op.type: op.get_attr('_kernel') for op in graph.get_operations()
            if op.type in ('Conv2DBackpropInput', 'Conv2DBackpropFilter')}
  assert labels == {'Conv2DBackpropInput': b'eigen_tensor',
                    'Conv2DBackpropFilter': b'eigen_tensor'}


def test_gradients_eagerly_equal_autodiff_of_conv2d():
  inputs, kernel, upstream = problem(1)
  actual = value_and_gradients(weight_norm._conv2d_same_eigen_gradients, inputs, kernel,
                               upstream)
  for got, wanted in zip(actual, value_and_gradients(reference, inputs, kernel, upstream)):
    assert_close(got, wanted)


def test_a_wrong_gradient_would_be_caught():
  inputs, kernel, upstream = problem(2)
  _, wrong_inputs_grad, _ = tf.function(lambda *args: value_and_gradients(
      flipped_kernel_gradient, *args))(inputs, kernel, upstream)
  _, right_inputs_grad, _ = value_and_gradients(reference, inputs, kernel, upstream)
  with pytest.raises(AssertionError):
    assert_close(wrong_inputs_grad, right_inputs_grad)


def test_weight_norm_conv_gradients_through_the_layer():
  layer = weight_norm.WeightNormConv2D(12, 3)
  inputs, _, upstream = problem(3)
  layer.build(inputs.shape)
  layer.gain.assign(np.linspace(0.5, 1.5, 12))

  def layer_gradients(inputs, use_reference):
    with tf.GradientTape() as tape:
      tape.watch(inputs)
      if use_reference:
        kernel, bias = layer._kernel_and_bias()
        outputs = reference(inputs, kernel) + bias
      else:
        outputs = layer(inputs)
    return tape.gradient(outputs, [inputs] + layer.trainable_variables,
                         output_gradients=upstream)

  custom = tf.function(lambda x: layer_gradients(x, False))(inputs)
  expected = tf.function(lambda x: layer_gradients(x, True))(inputs)
  for got, wanted in zip(custom, expected):
    assert_close(got, wanted)
