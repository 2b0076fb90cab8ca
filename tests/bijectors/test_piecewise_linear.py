"""Tests of `PiecewiseLinear`: the 1-D piecewise-linear flow of Fleuret 10.3.

Log-dets are checked against autodiff derivatives and the map against an
independent NumPy reference (`np.interp` between the bin edges and the
knots), always with the variables moved away from the identity. Tensors are
rebuilt before each call (`fresh`) so that a cached pass could not hand back a
stored input and make a round trip pass trivially; a cached pass is never
stale, which `test_no_stale_values_when_a_tensor_is_reused` checks.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from flowtest import fresh

from tfp_realnvp.bijectors.piecewise_linear import PiecewiseLinear

tfd = tfp.distributions

# (num_bins, range_min, range_max, perturbation seed)
CONFIGS = [(1, 0., 1., 0), (5, -2., 3., 1), (16, -4., 4., 2), (7, -1., 0.5, 3)]


def _perturb(bijector, seed, scale=0.5):
  """Random shift and log-widths: knots far from the identity's."""
  rng = np.random.default_rng(seed)
  bijector.alpha.assign(bijector.alpha.numpy() + rng.normal(0., 1.))
  xi = bijector.log_widths.numpy()
  bijector.log_widths.assign(
      (xi + scale * rng.standard_normal(xi.shape)).astype(np.float32))
  return bijector


def _reference(bijector):
  """NumPy forward, inverse and ildj from the variables' values.

  The bins are fixed on the data side: `inverse` (the lecture's f, data to latent) interpolates
  linearly from the bin edges to the knots; `forward` the other way round.
  """
  edges = np.linspace(bijector.range_min, bijector.range_max,
                      bijector.num_bins + 1)
  xi = bijector.log_widths.numpy().astype(np.float64)
  knots = float(bijector.alpha.numpy()) + np.concatenate(
      [[0.], np.cumsum(np.exp(xi))])
  log_slopes = np.log(np.diff(knots) / np.diff(edges))

  def interp(t, src, dst):
    t = np.asarray(t, np.float64)
    out = np.interp(t, src, dst)
    out = np.where(t < src[0], dst[0] + t - src[0], out)
    return np.where(t > src[-1], dst[-1] + t - src[-1], out)

  def ildj(x):
    x = np.asarray(x, np.float64)
    k = np.clip(np.searchsorted(edges, x, side='right') - 1, 0,
                len(log_slopes) - 1)
    inside = (x >= edges[0]) & (x <= edges[-1])
    return np.where(inside, log_slopes[k], 0.)

  return (lambda z: interp(z, knots, edges), lambda x: interp(x, edges, knots),
          ildj, edges, knots)


def _test_points(bijector, seed=0):
  """Data points: bin centres, random points inside and outside, shape [N]."""
  lo, hi = bijector.range_min, bijector.range_max
  span = hi - lo
  edges = np.linspace(lo, hi, bijector.num_bins + 1)
  centres = 0.5 * (edges[:-1] + edges[1:])
  rng = np.random.default_rng(seed)
  random = rng.uniform(lo - span, hi + span, 400)
  far = np.array([lo - 10. * span, lo - 0.3 * span, hi + 0.3 * span,
                  hi + 10. * span])
  x = np.concatenate([centres, random, far])
  # Keep off the edges, where the one-sided derivatives differ.
  dist = np.min(np.abs(x[:, None] - edges[None, :]), axis=1)
  return x[dist > 1e-3 * span].astype(np.float32)


@pytest.fixture(params=CONFIGS, ids=lambda c: f'bins{c[0]}')
def bijector(request):
  num_bins, lo, hi, seed = request.param
  return _perturb(PiecewiseLinear(num_bins, lo, hi), seed)


def _autodiff_derivative(fn, x):
  x = fresh(x)
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = fn(x)
  return tape.gradient(y, x).numpy()


# -- construction ----------------------------------------------------------


@pytest.mark.parametrize('kwargs, message', [
    (dict(num_bins=0, range_min=0., range_max=1.), 'num_bins must be'),
    (dict(num_bins=-3, range_min=0., range_max=1.), 'num_bins must be'),
    (dict(num_bins=2.5, range_min=0., range_max=1.), 'num_bins must be'),
    (dict(num_bins=True, range_min=0., range_max=1.), 'num_bins must be'),
    (dict(num_bins=4, range_min=1., range_max=1.), 'range_min must be <'),
    (dict(num_bins=4, range_min=2., range_max=-1.), 'range_min must be <'),
    (dict(num_bins=4, range_min=-np.inf, range_max=1.), 'must be finite'),
    (dict(num_bins=4, range_min=0., range_max=np.nan), 'must be finite'),
])
def test_bad_arguments_raise(kwargs, message):
  with pytest.raises(ValueError, match=message):
    PiecewiseLinear(**kwargs)


def test_variables_tracked_and_identity_at_init():
  b = PiecewiseLinear(num_bins=8, range_min=-2., range_max=2.)
  names = sorted(v.name for v in b.trainable_variables)
  assert names == ['piecewise_linear/alpha:0', 'piecewise_linear/log_widths:0']
  assert b.log_widths.shape == (8,)
  np.testing.assert_allclose(b.knots().numpy(), np.linspace(-2., 2., 9),
                             atol=1e-6)
  x = np.linspace(-5., 5., 101).astype(np.float32)
  np.testing.assert_allclose(b.forward(fresh(x)).numpy(), x, atol=1e-6)
  np.testing.assert_allclose(b.inverse(fresh(x)).numpy(), x, atol=1e-6)
  np.testing.assert_allclose(
      b.forward_log_det_jacobian(fresh(x), event_ndims=0).numpy(), 0.,
      atol=1e-6)
  assert b.forward_min_event_ndims == 0
  assert b.parameters['num_bins'] == 8


# -- the map and its log-det -----------------------------------------------


def test_matches_numpy_reference(bijector):
  forward, inverse, ildj, edges, knots = _reference(bijector)
  x = _test_points(bijector)
  np.testing.assert_allclose(bijector.inverse(fresh(x)).numpy(), inverse(x),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(
      bijector.inverse_log_det_jacobian(fresh(x), event_ndims=0).numpy(),
      ildj(x), atol=1e-5)
  z = np.concatenate([inverse(x), knots]).astype(np.float32)
  np.testing.assert_allclose(bijector.forward(fresh(z)).numpy(), forward(z),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(
      bijector.forward_log_det_jacobian(fresh(z[:len(x)]),
                                        event_ndims=0).numpy(),
      -ildj(x), atol=1e-5)
  np.testing.assert_allclose(bijector.knots().numpy(), knots, atol=1e-5)
  np.testing.assert_allclose(bijector.edges().numpy(), edges, atol=1e-6)
  # Every bin, with its own slope, and both outer pieces are exercised.
  inside = ildj(x)[(x > bijector.range_min) & (x < bijector.range_max)]
  assert len(np.unique(np.round(inside, 5))) == bijector.num_bins
  assert np.any(x < bijector.range_min) and np.any(x > bijector.range_max)


def test_inverse_log_det_matches_autodiff(bijector):
  x = _test_points(bijector)
  dzdx = _autodiff_derivative(bijector.inverse, x)
  assert np.all(dzdx > 0)
  ildj = bijector.inverse_log_det_jacobian(fresh(x), event_ndims=0).numpy()
  np.testing.assert_allclose(ildj, np.log(dzdx), atol=1e-5)
  outside = (x < bijector.range_min) | (x > bijector.range_max)
  np.testing.assert_allclose(ildj[outside], 0., atol=1e-7)


def test_forward_log_det_matches_autodiff(bijector):
  _, inverse, ildj, _, _ = _reference(bijector)
  x = _test_points(bijector)
  z = inverse(x).astype(np.float32)
  dxdz = _autodiff_derivative(bijector.forward, z)
  assert np.all(dxdz > 0)
  fldj = bijector.forward_log_det_jacobian(fresh(z), event_ndims=0).numpy()
  np.testing.assert_allclose(fldj, np.log(dxdz), atol=1e-5)
  np.testing.assert_allclose(fldj, -ildj(x), atol=1e-5)


def test_round_trips_both_ways(bijector):
  x = _test_points(bijector)
  z = bijector.inverse(fresh(x)).numpy()
  np.testing.assert_allclose(bijector.forward(fresh(z)).numpy(), x,
                             rtol=1e-5, atol=1e-5)
  # Forward first, on a 2-D batch covering the knots' range and beyond.
  knots = bijector.knots().numpy()
  span = knots[-1] - knots[0]
  z = np.linspace(knots[0] - 2 * span, knots[-1] + 2 * span,
                  600).reshape(20, 30).astype(np.float32)
  x = bijector.forward(fresh(z)).numpy()
  assert x.shape == (20, 30)
  np.testing.assert_allclose(bijector.inverse(fresh(x)).numpy(), z,
                             rtol=1e-5, atol=1e-5)


def test_monotonic(bijector):
  lo, hi = bijector.range_min, bijector.range_max
  span = hi - lo
  t = np.linspace(lo - span, hi + span, 5001).astype(np.float32)
  assert np.all(np.diff(bijector.forward(fresh(t)).numpy()) > 0)
  assert np.all(np.diff(bijector.inverse(fresh(t)).numpy()) > 0)
  knots = bijector.knots().numpy()
  t = np.linspace(knots[0] - 1., knots[-1] + 1., 5001).astype(np.float32)
  assert np.all(np.diff(bijector.forward(fresh(t)).numpy()) > 0)


def test_continuous_at_knots_and_range_ends(bijector):
  edges = bijector.edges().numpy()
  knots = bijector.knots().numpy()
  slopes = np.exp(bijector.log_widths.numpy()) / (edges[1] - edges[0])
  eps = 1e-3 * (bijector.range_max - bijector.range_min)
  # The data-side edges (range ends included) map onto the knots, and the
  # inverse does not jump across any of them: a jump would exceed the bound.
  np.testing.assert_allclose(bijector.inverse(fresh(edges)).numpy(), knots,
                             rtol=1e-5, atol=1e-5)
  left = bijector.inverse(fresh(edges - eps)).numpy()
  right = bijector.inverse(fresh(edges + eps)).numpy()
  assert np.all(right > left)
  assert np.all(right - left <= 2 * eps * max(1., slopes.max()) * 1.001 + 1e-5)
  # Same for the forward around the knots.
  np.testing.assert_allclose(bijector.forward(fresh(knots)).numpy(), edges,
                             rtol=1e-5, atol=1e-5)
  left = bijector.forward(fresh(knots - eps)).numpy()
  right = bijector.forward(fresh(knots + eps)).numpy()
  assert np.all(right > left)
  assert np.all(right - left <= 2 * eps / min(1., slopes.min()) * 1.001 + 1e-5)


def test_consistent_after_repeated_perturbations():
  b = PiecewiseLinear(num_bins=6, range_min=-3., range_max=2.)
  for seed in range(5):
    _perturb(b, seed=100 + seed, scale=0.8)
    _, inverse, ildj, _, _ = _reference(b)
    x = _test_points(b, seed=seed)
    z = b.inverse(fresh(x)).numpy()
    np.testing.assert_allclose(z, inverse(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(b.forward(fresh(z)).numpy(), x, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(
        b.inverse_log_det_jacobian(fresh(x), event_ndims=0).numpy(),
        np.log(_autodiff_derivative(b.inverse, x)), atol=1e-5)
    np.testing.assert_allclose(
        b.forward_log_det_jacobian(fresh(z), event_ndims=0).numpy(),
        np.log(_autodiff_derivative(b.forward, z)), atol=1e-5)
    np.testing.assert_allclose(
        b.inverse_log_det_jacobian(fresh(x), event_ndims=0).numpy(),
        ildj(x), atol=1e-5)


def test_log_dets_at_exact_knots_use_right_segment(bijector):
  knots = bijector.knots().numpy()
  edges = bijector.edges().numpy()
  log_slopes = bijector.log_widths.numpy() - np.log(edges[1] - edges[0])
  fldj = bijector.forward_log_det_jacobian(fresh(knots),
                                           event_ndims=0).numpy()
  np.testing.assert_allclose(fldj[:-1], -log_slopes, atol=1e-6)
  np.testing.assert_allclose(fldj[-1], -log_slopes[-1], atol=1e-6)


def test_no_stale_values_when_a_tensor_is_reused(bijector):
  x = _test_points(bijector)
  x_tensor = fresh(x)
  dist = tfd.TransformedDistribution(tfd.Normal(0., 1.), bijector)
  z_tensor = fresh(x)
  with tf.GradientTape(persistent=True) as tape:
    lp = dist.log_prob(x_tensor)
    ildj = bijector.inverse_log_det_jacobian(x_tensor, event_ndims=0)
    fwd = bijector.forward(z_tensor)
  assert tape.gradient(lp, bijector.log_widths) is not None
  _perturb(bijector, seed=99)
  # Same tensor objects, new variable values: everything is recomputed.
  forward, inverse, ildj_ref, _, _ = _reference(bijector)
  expected = -0.5 * inverse(x) ** 2 - 0.5 * np.log(2 * np.pi) + ildj_ref(x)
  np.testing.assert_allclose(dist.log_prob(x_tensor).numpy(), expected,
                             rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(
      bijector.inverse_log_det_jacobian(x_tensor, event_ndims=0).numpy(),
      ildj_ref(x), atol=1e-5)
  # A cache would return `z_tensor` itself; the new inverse differs from it.
  recomputed = bijector.inverse(fwd).numpy()
  np.testing.assert_allclose(recomputed, inverse(fwd.numpy()), rtol=1e-5,
                             atol=1e-5)
  assert np.max(np.abs(recomputed - x)) > 0.1
  np.testing.assert_allclose(bijector.forward(z_tensor).numpy(), forward(x),
                             rtol=1e-5, atol=1e-5)
  del tape, lp, ildj


def test_graph_mode_matches_eager(bijector):
  x = _test_points(bijector)

  @tf.function
  def both(t):
    return (bijector.forward(t), bijector.inverse(t),
            bijector.inverse_log_det_jacobian(t, event_ndims=0))

  graph = both(fresh(x))
  eager = (bijector.forward(fresh(x)), bijector.inverse(fresh(x)),
           bijector.inverse_log_det_jacobian(fresh(x), event_ndims=0))
  for g, e in zip(graph, eager):
    np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-6, atol=1e-6)


def test_validate_args_rejects_non_finite():
  b = PiecewiseLinear(4, 0., 1., validate_args=True)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='forward: input contains NaN or Inf'):
    b.forward(fresh([0.5, np.nan]))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='inverse: input contains NaN or Inf'):
    b.inverse(fresh([np.inf]))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='inverse: input contains NaN'):
    b.inverse_log_det_jacobian(fresh([np.nan]), event_ndims=0)
  b.log_widths.assign([0., np.nan, 0., 0.])
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='log_widths contains NaN or Inf'):
    b.forward(fresh([0.5]))
  # Without validation, NaN propagates instead of raising.
  b = PiecewiseLinear(4, 0., 1.)
  out = b.forward(fresh([np.nan, 0.5])).numpy()
  assert np.isnan(out[0]) and out[1] == pytest.approx(0.5)


# -- as a distribution -------------------------------------------------------


def test_log_prob_identity_at_init():
  dist = tfd.TransformedDistribution(
      tfd.Normal(0., 1.), PiecewiseLinear(10, -3., 3.))
  x = np.linspace(-6., 6., 241).astype(np.float32)
  np.testing.assert_allclose(dist.log_prob(fresh(x)).numpy(),
                             tfd.Normal(0., 1.).log_prob(x).numpy(),
                             atol=1e-5)


def test_log_prob_closed_form(bijector):
  _, inverse, ildj, _, _ = _reference(bijector)
  dist = tfd.TransformedDistribution(tfd.Normal(0., 1.), bijector)
  x = _test_points(bijector)
  z = inverse(x)
  expected = -0.5 * z ** 2 - 0.5 * np.log(2 * np.pi) + ildj(x)
  np.testing.assert_allclose(dist.log_prob(fresh(x)).numpy(), expected,
                             rtol=1e-5, atol=1e-4)
  samples = dist.sample(100, seed=(1, 2)).numpy()
  assert samples.shape == (100,) and np.all(np.isfinite(samples))


def test_maximum_likelihood_fits_bimodal_data():
  import keras  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  n = 2000
  modes = rng.choice([-2., 2.], size=n)
  data = tf.constant((modes + 0.5 * rng.standard_normal(n)).astype(np.float32))

  flow = PiecewiseLinear(num_bins=16, range_min=-4., range_max=4.)
  dist = tfd.TransformedDistribution(tfd.Normal(0., 1.), flow)
  variables = dist.trainable_variables
  assert len(variables) == 2
  optimizer = keras.optimizers.Adam(0.05)

  @tf.function
  def nll():
    return -tf.reduce_mean(dist.log_prob(data))

  @tf.function
  def train_step():
    with tf.GradientTape() as tape:
      loss = -tf.reduce_mean(dist.log_prob(data))
    grads = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(grads, variables))
    return loss

  before = float(nll())
  for _ in range(300):
    train_step()
  after = float(nll())
  # Identity init: E[x^2]/2 + log(2 pi)/2 = 3.04 nats; the true density's
  # entropy is about 1.42 nats.
  assert before == pytest.approx(3.04, abs=0.1)
  assert after < before - 1.0, (before, after)
  assert after > 1.3
  # The fitted model is bimodal: few samples fall between the modes.
  samples = dist.sample(4000, seed=(3, 4)).numpy()
  assert np.mean(np.abs(samples) < 0.5) < 0.08
  assert 0.35 < np.mean(samples > 0) < 0.65
