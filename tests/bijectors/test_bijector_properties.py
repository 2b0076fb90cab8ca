"""TFP's bijector properties, checked over every bijector of the registry.

The checks follow TFP's own `bijector_test_util` and `bijector_properties_test.py` (written
anew here: the TFP wheel does not ship them): bijective and finite, any batch rank (none
included), eager = `tf.function` = XLA, composition with `tfb.Chain` and `tfb.Invert` running
each network once, `experimental_sample_and_log_prob` = `log_prob(sample)`, copies and
equality, dtypes, event-shape methods.
"""

import flowtest
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from flowtest import REGISTRY
from flowtest import fresh
from flowtest import perturb

from tfp_realnvp.bijectors import keras_tracking

tfb = tfp.bijectors
tfd = tfp.distributions
NAMES = sorted(REGISTRY)
# The image chains cost the most to trace and compile: checks that add nothing for a second
# or third chain run on one of them (the batch-rank and log-det checks cover all).
IMAGE_CHAINS = ('chain_image', 'chain_image_rgb', 'chain_image_conditional',
                'chain_image_glow_layers')
ONE_IMAGE_CHAIN = [n for n in NAMES if n not in IMAGE_CHAINS[1:]]


def _built(name, seed=7):
  case = REGISTRY[name]
  return case, perturb(case.build(), seed=seed, scale=case.perturb_scale)


def _flat(t, event_rank):
  t = np.asarray(t)
  return t.reshape((-1,) + t.shape[t.ndim - event_rank:]) if event_rank else t.reshape(-1)


@pytest.mark.parametrize('name', NAMES)
def test_any_batch_rank_agrees_with_the_flat_batch(name):
  case, bijector = _built(name)
  rank = len(case.data_shape)
  x = case.make_data(case.data_shape, batch=6, seed=1)
  flat_kwargs = case.kwargs((6,))
  z_flat = bijector.inverse(fresh(x), **flat_kwargs).numpy()
  ildj_flat = bijector.inverse_log_det_jacobian(fresh(x), event_ndims=rank,
                                                **flat_kwargs).numpy()
  for batch_shape in [(), (6,), (2, 3)]:
    count = int(np.prod(batch_shape, dtype=np.int64))
    xb = tf.reshape(x[:count], batch_shape + case.data_shape)
    kwargs = case.kwargs(batch_shape)
    z = bijector.inverse(fresh(xb), **kwargs)
    ildj = bijector.inverse_log_det_jacobian(fresh(xb), event_ndims=rank, **kwargs)
    assert z.shape == batch_shape + tuple(z_flat.shape[1:])
    assert ildj.shape == batch_shape
    np.testing.assert_allclose(_flat(z, z_flat.ndim - 1), z_flat[:count], atol=1e-5)
    np.testing.assert_allclose(np.reshape(ildj, [-1]), ildj_flat[:count], rtol=1e-5,
                               atol=1e-4)
    x_back = bijector.forward(fresh(z), **kwargs)
    fldj = bijector.forward_log_det_jacobian(fresh(z), event_ndims=rank, **kwargs)
    assert x_back.shape == xb.shape and fldj.shape == batch_shape
    np.testing.assert_allclose(x_back, xb, atol=1e-4)
    np.testing.assert_allclose(fldj, -np.reshape(ildj_flat[:count], batch_shape),
                               rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize('name', ONE_IMAGE_CHAIN)
def test_eager_function_and_xla_agree(name):
  case, bijector = _built(name)
  rank = len(case.data_shape)
  x = case.make_data(case.data_shape, batch=4, seed=2)
  kwargs = case.kwargs((4,))

  def both(t):
    return (bijector.inverse(t, **kwargs),
            bijector.inverse_log_det_jacobian(t, event_ndims=rank, **kwargs))

  eager = both(fresh(x))
  for jit in (False, True):
    traced = tf.function(both, jit_compile=jit)(fresh(x))
    for a, b in zip(eager, traced):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('name', ONE_IMAGE_CHAIN)
def test_vectorized_map_agrees_with_the_batch(name):
  case, bijector = _built(name)
  if case.kwargs_fn:
    pytest.skip('per-call labels are not mapped by tf.vectorized_map')
  x = case.make_data(case.data_shape, batch=3, seed=3)
  z = tf.vectorized_map(bijector.inverse, x, fallback_to_while_loop=False)
  np.testing.assert_allclose(z, bijector.inverse(fresh(x)), atol=1e-5)


class _NetworkCalls:
  """Counts the s/t network runs of every coupling."""

  def __init__(self, monkeypatch):
    self.count = 0
    original = keras_tracking.call

    def counting(model, inputs, training):
      self.count += 1
      return original(model, inputs, training)
    monkeypatch.setattr(keras_tracking, 'call', counting)


def _num_couplings(bijector):
  return sum(1 for v in bijector.variables if v.name.endswith('scale:0')
             and 'log_scale' not in v.name)


@pytest.mark.parametrize('name,wrap', [
    (name, wrap) for name in NAMES if REGISTRY[name].has_networks
    for wrap in (['plain', 'chain', 'chain_of_two', 'invert_twice']
                 if name in ('chain_image_conditional', 'coupling_checkerboard')
                 else ['plain', 'chain'] if name not in IMAGE_CHAINS else ['chain'])])
def test_each_network_runs_once_per_log_prob_and_sample(name, wrap, monkeypatch):
  case, bijector = _built(name)
  calls = _NetworkCalls(monkeypatch)
  by_name = wrap in ('chain', 'chain_of_two')   # tfb.Chain routes keyword arguments by name
  if wrap == 'chain':
    flow = tfb.Chain([bijector])
  elif wrap == 'chain_of_two':
    flow = tfb.Chain([tfb.Identity(), bijector])
  elif wrap == 'invert_twice':
    flow = tfb.Invert(tfb.Invert(bijector))
  else:
    flow = bijector

  def kwarg_route(kwargs):
    return {bijector.name: kwargs} if by_name else kwargs

  dist = flowtest.distribution(flow, case.data_shape)
  x = case.make_data(case.data_shape, batch=4, seed=4)
  couplings = _num_couplings(bijector)
  assert couplings >= 1
  kwargs = kwarg_route(case.kwargs((4,)))
  lp = dist.log_prob(fresh(x), bijector_kwargs=kwargs)
  assert calls.count == couplings, f'{calls.count} network runs for {couplings} couplings'
  calls.count = 0
  sample, lp_sample = dist.experimental_sample_and_log_prob(4, seed=5, bijector_kwargs=kwargs)
  assert calls.count == couplings
  assert np.all(np.isfinite(lp)) and np.all(np.isfinite(lp_sample))
  np.testing.assert_allclose(lp_sample, dist.log_prob(fresh(sample), bijector_kwargs=kwargs),
                             rtol=1e-4, atol=1e-3)


def test_training_statistics_update_once_through_tfb_chain():
  case = REGISTRY['chain_image']
  direct, wrapped = case.build(), case.build()
  for a, b in zip(direct.variables, wrapped.variables):
    b.assign(a)
  x = case.make_data(case.data_shape, batch=8, seed=6)
  flowtest.distribution(direct).log_prob(fresh(x), bijector_kwargs={'training': True})
  chained = flowtest.distribution(tfb.Chain([wrapped]), case.data_shape)
  chained.log_prob(fresh(x), bijector_kwargs={wrapped.name: {'training': True}})
  for a, b in zip(direct.batch_norms, wrapped.batch_norms):
    np.testing.assert_allclose(a.moving_mean.numpy(), b.moving_mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(a.moving_variance.numpy(), b.moving_variance.numpy(),
                               atol=1e-6)


@pytest.mark.parametrize('name', ONE_IMAGE_CHAIN)
def test_copies_slices_and_equality(name):
  case, bijector = _built(name)
  x = case.make_data(case.data_shape, batch=3, seed=7)
  kwargs = case.kwargs((3,))
  expected = bijector.inverse(fresh(x), **kwargs).numpy()
  for same in (bijector.copy(), bijector[...]):
    assert same == bijector and hash(same) == hash(bijector)
    np.testing.assert_allclose(same.inverse(fresh(x), **kwargs), expected, atol=1e-6)
  other = case.build()      # the same arguments, other weights
  assert other != bijector
  if bijector.variables:
    assert bijector.copy(name='renamed') != bijector


@pytest.mark.parametrize('name', ONE_IMAGE_CHAIN)
def test_every_bijector_takes_training_and_rejects_float64(name):
  case, bijector = _built(name)
  x = case.make_data(case.data_shape, batch=2, seed=8)
  kwargs = case.kwargs((2,))
  bijector.forward(fresh(bijector.inverse(fresh(x), training=False, **kwargs)), training=True,
                   **kwargs)
  with pytest.raises(TypeError, match='expected a float32 input, got float64'):
    bijector.inverse(tf.cast(x, tf.float64), **kwargs)
  with pytest.raises(TypeError, match='unexpected keyword'):
    bijector.inverse(fresh(x), trainingg=True)
  np.testing.assert_allclose(   # NumPy float64 is cast, as TFP does
      bijector.inverse(np.asarray(x, np.float64), **kwargs),
      bijector.inverse(fresh(x), **kwargs), atol=1e-5)


@pytest.mark.parametrize('name', ['squeeze', 'chain_image', 'coupling_channel',
                                  'sequence_with_squeeze'])
def test_event_shape_methods_keep_batch_dims_and_validate(name):
  case, bijector = _built(name)
  data = tf.TensorShape(case.data_shape)
  latent = bijector.inverse_event_shape(data)
  assert bijector.forward_event_shape(latent) == data
  assert bijector.inverse_event_shape([5, 2] + data.as_list()) == [5, 2] + latent.as_list()
  assert list(bijector.inverse_event_shape_tensor([5] + data.as_list()).numpy()) == (
      [5] + latent.as_list())
  wrong = data.as_list()[:-1] + [data[-1] + 1]
  with pytest.raises(ValueError, match='expected an event shape'):
    bijector.inverse_event_shape(wrong)
  with pytest.raises(ValueError, match='expected'):
    bijector.inverse(tf.zeros([2] + wrong))


def test_act_norm_starts_from_the_first_training_batch():
  act_norm = REGISTRY['act_norm_image'].build()
  x = flowtest.real_data((3, 2, 3), batch=16, seed=3) * 3. + 2.
  identity = act_norm.inverse(fresh(x))                  # inference before the start
  np.testing.assert_allclose(identity, x, atol=1e-6)
  z = act_norm.inverse(fresh(x), training=True).numpy()
  np.testing.assert_allclose(z.mean(axis=(0, 1, 2)), 0., atol=1e-4)
  np.testing.assert_allclose(z.std(axis=(0, 1, 2)), 1., atol=1e-3)
  assert bool(act_norm.initialized.numpy())
  loc = act_norm.loc.numpy().copy()
  act_norm.inverse(fresh(x * 5.), training=True)          # started: no second start
  np.testing.assert_array_equal(act_norm.loc.numpy(), loc)


def test_squeeze_is_a_permutation():
  assert REGISTRY['squeeze'].build()._is_permutation  # pylint: disable=protected-access


def test_two_flows_with_the_same_arguments_never_share_a_pass():
  case = REGISTRY['chain_image']
  flow_a, flow_b = perturb(case.build(), seed=1), perturb(case.build(), seed=2)
  x = case.make_data(case.data_shape, batch=3, seed=9)
  alone = flow_b.inverse_log_det_jacobian(fresh(x), event_ndims=3).numpy()
  z_a = flow_a.inverse(x)
  after_a = flow_b.inverse_log_det_jacobian(x, event_ndims=3).numpy()
  np.testing.assert_allclose(after_a, alone, rtol=1e-5)
  assert not np.allclose(after_a, flow_a.inverse_log_det_jacobian(x, event_ndims=3))
  del z_a


@pytest.mark.parametrize('order', ['log_det_first', 'value_first', 'value_kept'])
def test_log_det_after_a_variable_update_is_never_stale(order):
  """An eager loop over one batch tensor: every step sees the current weights."""
  case = REGISTRY['chain_image']
  flow = perturb(case.build(), seed=3)
  base = flowtest.standard_normal_base(case.data_shape)
  x = case.make_data(case.data_shape, batch=4, seed=10)   # one tensor, reused every step
  kept = []
  for step in range(3):
    with tf.GradientTape() as tape:
      if order == 'log_det_first':
        log_prob = (flow.inverse_log_det_jacobian(x, event_ndims=3)
                    + base.log_prob(flow.inverse(x)))
      else:
        z = flow.inverse(x)
        if order == 'value_kept':
          kept.append(z)
        log_prob = base.log_prob(z) + flow.inverse_log_det_jacobian(x, event_ndims=3)
      loss = -tf.reduce_mean(log_prob)
    expected = -tf.reduce_mean(flowtest.distribution(flow).log_prob(fresh(x)))
    np.testing.assert_allclose(loss, expected, rtol=1e-5, err_msg=f'step {step}')
    grads = tape.gradient(loss, flow.trainable_variables)
    assert all(g is not None for g in grads)
    for v, g in zip(flow.trainable_variables, grads):
      v.assign_sub(0.05 * tf.sign(g))


def test_a_pass_outside_a_tape_is_not_reused_inside_one():
  case = REGISTRY['chain_vector']
  flow = perturb(case.build(), seed=4)
  x = case.make_data(case.data_shape, batch=4, seed=11)
  z = flow.inverse(x)   # no tape
  with tf.GradientTape() as tape:
    ildj = flow.inverse_log_det_jacobian(x, event_ndims=1)
  grads = tape.gradient(ildj, flow.trainable_variables)
  assert any(g is not None for g in grads)
  del z


def test_unbatched_single_channel_image_log_prob_is_a_scalar():
  case = REGISTRY['chain_image']
  flow = perturb(case.build(), seed=5)
  dist = flowtest.distribution(flow)
  x = case.make_data(case.data_shape, batch=1, seed=12)
  one = dist.log_prob(fresh(x[0]))
  assert one.shape == ()
  np.testing.assert_allclose(one, dist.log_prob(fresh(x))[0], rtol=1e-6)
  assert dist.sample(seed=1).shape == case.data_shape
  assert dist.sample((2, 3), seed=1).shape == (2, 3) + case.data_shape


def test_a_base_with_a_batch_shape():
  case = REGISTRY['chain_image']
  flow = perturb(case.build(), seed=6)
  base = tfd.Sample(tfd.Normal(tf.zeros([3]), 1.), case.data_shape)
  dist = tfd.TransformedDistribution(base, flow)
  x = dist.sample(2, seed=3)
  assert x.shape == (2, 3) + case.data_shape
  lp = dist.log_prob(fresh(x))
  assert lp.shape == (2, 3)
  np.testing.assert_allclose(dist[1].log_prob(fresh(x[:, 1])), lp[:, 1], rtol=1e-5)


def test_empty_batches_return_empty_results():
  case = REGISTRY['chain_image']
  flow = case.build()
  dist = flowtest.distribution(flow)
  assert dist.sample(0, seed=1).shape == (0,) + case.data_shape
  assert dist.log_prob(tf.zeros((0,) + case.data_shape)).shape == (0,)
  statistics = [v.numpy().copy() for b in flow.batch_norms for v in (b.moving_mean,)]
  dist.log_prob(tf.zeros((0,) + case.data_shape), bijector_kwargs={'training': True})
  log_prob = tf.function(dist.log_prob, input_signature=[
      tf.TensorSpec((None,) + case.data_shape, tf.float32)])
  assert log_prob(tf.zeros((0,) + case.data_shape)).shape == (0,)
  for before, b in zip(statistics, flow.batch_norms):
    np.testing.assert_array_equal(before, b.moving_mean.numpy())
