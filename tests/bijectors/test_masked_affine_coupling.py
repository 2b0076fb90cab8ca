"""MaskedAffineCoupling: masks, identity start, one network run, user networks."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras
from flowtest import fresh
from flowtest import perturb
from flowtest import tiny_mlp
from flowtest import tiny_resnet

from tfp_realnvp.bijectors import MaskedAffineCoupling
from tfp_realnvp.bijectors import checkerboard_mask
from tfp_realnvp.bijectors import keras_tracking

tfd = tfp.distributions
SMALL = dict(network=tiny_resnet)


def test_checkerboard_mask_layout():
  mask = checkerboard_mask(3, 4, parity=0)[..., 0]
  np.testing.assert_array_equal(
      mask, [[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]])
  np.testing.assert_array_equal(checkerboard_mask(3, 4, parity=1)[..., 0],
                                1 - mask)


@pytest.mark.parametrize('mask_type,shape', [('checkerboard', (4, 4, 2)),
                                             ('channel', (2, 2, 4))])
@pytest.mark.parametrize('parity', [0, 1])
def test_conditioning_entries_pass_unchanged(mask_type, shape, parity):
  coupling = perturb(MaskedAffineCoupling(shape, mask_type, parity, **SMALL))
  x = tf.random.normal((2,) + shape)
  y = coupling.inverse(x).numpy()
  changed = np.abs(y - x.numpy()) > 1e-6
  if mask_type == 'checkerboard':
    b = checkerboard_mask(shape[0], shape[1], parity).astype(bool)
    b = np.broadcast_to(b, (2,) + shape)
  else:
    half = shape[-1] // 2
    b = np.zeros((2,) + shape, bool)
    if parity == 0:
      b[..., :half] = True
    else:
      b[..., half:] = True
  assert not changed[b].any(), 'a conditioning entry changed'
  assert changed[~b].mean() > 0.9, 'the transformed entries did not change'


@pytest.mark.parametrize('event_shape,kwargs', [
    ((4, 4, 2), dict(mask_type='checkerboard', **SMALL)),
    ((2, 2, 4), dict(mask_type='channel', **SMALL)),
    ((6,), dict(mask_type='half', network=tiny_mlp)),
])
def test_starts_as_identity(event_shape, kwargs):
  coupling = MaskedAffineCoupling(event_shape, **kwargs)
  x = tf.random.normal((3,) + event_shape)
  np.testing.assert_array_equal(coupling.inverse(x).numpy(), x.numpy())
  np.testing.assert_array_equal(
      coupling.inverse_log_det_jacobian(x, event_ndims=len(event_shape)), 0.)


def test_log_prob_closed_form_with_constant_network():
  """A network emitting constants makes the coupling a known affine map."""
  raw_s = np.array([0.3, -0.2, 0.5, 0.1], np.float32)
  shift = np.array([1.0, -2.0, 0.5, 0.0], np.float32)
  inputs = keras.Input((4,))
  outputs = keras.layers.Dense(
      8, kernel_initializer='zeros',
      bias_initializer=keras.initializers.Constant(np.concatenate([raw_s,
                                                                   shift])))(inputs)
  net = keras.Model(inputs, outputs)
  mask = np.array([1, 0, 1, 0], np.float32)
  coupling = MaskedAffineCoupling((4,), 'custom', mask=mask, network=net)
  coupling.scale.assign([2., 2., 2., 2.])
  s = 2. * np.tanh(raw_s) * (1 - mask)
  t = shift * (1 - mask)
  dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), 4),
                                     coupling)
  x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
  # z = x * exp(s) + t on the transformed entries: x = (z - t) exp(-s), so
  # p(x) = N(x exp(s) + t) exp(sum s).
  z = x * np.exp(s) + t
  expected = (-0.5 * np.sum(z ** 2, -1) - 2 * np.log(2 * np.pi)
              + np.sum(s))
  np.testing.assert_allclose(dist.log_prob(x).numpy(), expected, rtol=1e-5)


def _count_network_calls(monkeypatch):
  calls = []
  original = keras_tracking.call

  def counting_call(model, inputs, training):
    calls.append(model.name)
    return original(model, inputs, training)

  monkeypatch.setattr(keras_tracking, 'call', counting_call)
  return calls


@pytest.mark.parametrize('training', [False, True])
def test_network_runs_once_per_log_prob_and_per_sample(monkeypatch, training):
  coupling = perturb(MaskedAffineCoupling((4, 4, 2), 'checkerboard', **SMALL))
  dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), (4, 4, 2)),
                                     coupling)
  calls = _count_network_calls(monkeypatch)
  x = tf.random.normal((3, 4, 4, 2))
  dist.log_prob(x, bijector_kwargs={'training': training})
  assert len(calls) == 1
  dist.sample(2)
  assert len(calls) == 2


def test_another_threads_call_does_not_evict_this_threads_log_det(
    monkeypatch):
  # MirroredStrategy runs each replica in its own thread on one bijector: a
  # call in one replica must not make another run its network again (its
  # batch-norm all-reduces would then come in a different order).
  import threading
  coupling = perturb(MaskedAffineCoupling((4, 4, 2), 'checkerboard', **SMALL))
  calls = _count_network_calls(monkeypatch)
  y = tf.random.normal((3, 4, 4, 2))
  coupling.inverse(y)
  other = threading.Thread(
      target=lambda: coupling.inverse(tf.random.normal((3, 4, 4, 2))))
  other.start()
  other.join()
  assert len(calls) == 2
  coupling.inverse_log_det_jacobian(y)
  assert len(calls) == 2


def test_eager_loop_reusing_one_tensor_sees_variable_updates():
  coupling = perturb(MaskedAffineCoupling((4,), 'half', network=tiny_mlp))
  dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), 4),
                                     coupling)
  x = tf.random.normal((5, 4))
  before = dist.log_prob(x)
  latent = coupling.inverse(x)   # alive: TFP's cache would keep its entry
  coupling.scale.assign(coupling.scale * 3.)
  with tf.GradientTape() as tape:
    after = dist.log_prob(x)
  assert not np.allclose(after.numpy(), before.numpy())
  assert tape.gradient(after, coupling.scale) is not None
  assert not np.allclose(coupling.inverse(x).numpy(), latent.numpy())


def test_user_keras3_network_is_tracked_and_trained():
  inputs = keras.Input((3, 3, 1))
  h = keras.layers.Conv2D(4, 3, padding='same', activation='relu')(inputs)
  outputs = keras.layers.Conv2D(2, 3, padding='same')(h)
  coupling = MaskedAffineCoupling((3, 3, 1), 'checkerboard',
                                  network=keras.Model(inputs, outputs))
  # 2 convs x (kernel, bias) + scale.
  assert len(coupling.trainable_variables) == 5
  _assert_training_changes_all(coupling, (3, 3, 1))


def test_user_tf_keras_network_is_tracked_and_trained():
  net = tf_keras.Sequential([
      tf_keras.layers.Conv2D(4, 3, padding='same', activation='relu',
                             input_shape=(3, 3, 1)),
      tf_keras.layers.Conv2D(2, 3, padding='same')])
  coupling = MaskedAffineCoupling((3, 3, 1), 'checkerboard', network=net)
  assert len(coupling.trainable_variables) == 5
  _assert_training_changes_all(coupling, (3, 3, 1))


def _assert_training_changes_all(coupling, event_shape):
  dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.),
                                                event_shape), coupling)
  variables = dist.trainable_variables
  before = [v.numpy().copy() for v in variables]
  optimizer = keras.optimizers.Adam(1e-2)
  x = tf.random.normal((8,) + event_shape) * 2. + 1.
  for _ in range(2):
    with tf.GradientTape() as tape:
      loss = -tf.reduce_mean(dist.log_prob(x))
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
  for b, v in zip(before, variables):
    assert np.any(b != v.numpy()), f'{v.name} did not change'


def test_bad_arguments_raise_clear_errors():
  with pytest.raises(ValueError, match='mask_type must be one of'):
    MaskedAffineCoupling((4, 4, 2), 'diagonal')
  with pytest.raises(ValueError, match='num_classes must be >= 2'):
    MaskedAffineCoupling((4, 4, 2), num_classes=1, **SMALL)
  with pytest.raises(ValueError, match='even number of channels'):
    MaskedAffineCoupling((4, 4, 3), 'channel', **SMALL)
  with pytest.raises(ValueError, match='needs an image event'):
    MaskedAffineCoupling((8,), 'checkerboard')
  with pytest.raises(ValueError, match='PiecewiseLinear'):
    MaskedAffineCoupling((1,), 'half')
  with pytest.raises(ValueError, match='does not broadcast'):
    MaskedAffineCoupling((4,), 'custom', mask=[1, 0, 1])
  inputs = keras.Input((3, 3, 1))
  wrong = keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs))
  with pytest.raises(ValueError, match=r'must map \(3, 3, 1\) to \(3, 3, 2\)'):
    MaskedAffineCoupling((3, 3, 1), 'checkerboard', network=wrong)


def test_validate_args_rejects_nan():
  coupling = MaskedAffineCoupling((4,), 'half', network=tiny_mlp,
                                  validate_args=True)
  with pytest.raises(tf.errors.InvalidArgumentError, match='NaN or Inf'):
    coupling.inverse(tf.constant([[0., np.nan, 1., 2.]]))


def test_training_mode_refuses_nan_whatever_validate_args():
  coupling = MaskedAffineCoupling((4, 4, 1), 'checkerboard', validate_args=False, **SMALL)
  net_statistics = [w.numpy().copy() for w in coupling.network.non_trainable_weights]
  x = np.random.default_rng(0).normal(size=(2, 4, 4, 1)).astype(np.float32)
  x[0, 1, 2, 0] = np.nan
  with pytest.raises(tf.errors.InvalidArgumentError, match='NaN or Inf'):
    coupling.inverse(tf.constant(x), training=True)
  for before, w in zip(net_statistics, coupling.network.non_trainable_weights):
    np.testing.assert_array_equal(before, w.numpy())


def test_conditional_coupling_depends_on_the_label():
  coupling = perturb(MaskedAffineCoupling((4, 4, 1), 'checkerboard', num_classes=3,
                                          **SMALL), scale=0.3)
  x = tf.random.normal((2, 4, 4, 1))
  z0 = coupling.inverse(x, conditional_input=tf.constant([0, 0]))
  z2 = coupling.inverse(x, conditional_input=tf.constant([2, 2]))
  one_hot = coupling.inverse(x, conditional_input=tf.one_hot([2, 2], 3))
  assert not np.allclose(z0, z2)
  np.testing.assert_allclose(one_hot, z2, atol=1e-6)
  with pytest.raises(ValueError, match='class-conditional'):
    coupling.inverse(x)
  with pytest.raises(tf.errors.InvalidArgumentError, match=r'labels must be in \[0, 3\)'):
    coupling.inverse(x, conditional_input=tf.constant([0, 3]))
  with pytest.raises(tf.errors.InvalidArgumentError, match='negative label'):
    coupling.inverse(x, conditional_input=tf.constant([-1, 0]))
  with pytest.raises(ValueError, match='does not match the batch shape'):
    coupling.inverse(x, conditional_input=tf.constant([[0, 1]]))
  with pytest.raises(ValueError, match='one-hot labels have shape'):
    coupling.inverse(x, conditional_input=tf.ones((2, 4)) / 4.)
  with pytest.raises(TypeError, match='integers or float one-hot'):
    coupling.inverse(x, conditional_input=tf.constant(['a', 'b']))


def test_tanh_bounds_the_log_scale():
  coupling = perturb(MaskedAffineCoupling((4,), 'half', network=tiny_mlp),
                     scale=5.)
  x = fresh(tf.random.normal((16, 4)) * 100.)
  ildj = coupling.inverse_log_det_jacobian(x, event_ndims=1).numpy()
  bound = np.sum(np.abs(coupling.scale.numpy()))
  assert np.all(np.abs(ildj) <= bound + 1e-4)
