"""Tests of tfp_realnvp/viz/ (latent operations and figures) against known bijectors."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp import latents
from tfp_realnvp import viz

tfb = tfp.bijectors
tfd = tfp.distributions

EVENT = (4, 4, 1)
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def make_flow():
  # x = sigmoid(0.5 z + 0.3): latent -> pixels in (0, 1); inverse z = 2 (logit(x) - 0.3).
  return tfb.Chain([tfb.Sigmoid(), tfb.Shift(0.3), tfb.Scale(0.5)])


def forward(flow, z):
  return flow.forward(tf.constant(z, tf.float32)).numpy()


def inverse(flow, x):
  return flow.inverse(tf.constant(x, tf.float32)).numpy()


def random_images(n, shape=EVENT, seed=0):
  return np.random.RandomState(seed).uniform(0.1, 0.9, size=(n,) + shape).astype(np.float32)


def assert_png(path):
  path = pathlib.Path(path)
  assert path.is_file()
  assert path.stat().st_size > 100
  with open(path, 'rb') as f:
    assert f.read(8) == PNG_MAGIC


def drawn_image(fig, index=0):
  ax = fig.axes[0]
  return np.asarray(ax.images[index].get_array())


# ----------------------------------------------------------------------------- tile_images

def test_tile_images_layout_known_pixel():
  images = np.zeros((5, 3, 4, 1), np.float32)
  images[4, 1, 2, 0] = 1.
  tiled = viz.tile_images(images, num_rows=2)   # cols = 3, rows = 2
  assert tiled.shape == (2 * 3, 3 * 4, 1)
  # image 4 -> row 1, column 1; pixel (1, 2) -> (1 * 3 + 1, 1 * 4 + 2).
  assert tiled[4, 6, 0] == 1.
  # the empty sixth cell (row 1, column 2) is filled with pad_value (default 1.0)
  np.testing.assert_array_equal(tiled[3:, 8:, 0], 1.)
  assert tiled[:, :8].sum() == 1.


def test_tile_images_every_pixel_and_padding():
  n, h, w, c = 6, 2, 3, 3
  images = np.arange(n * h * w * c, dtype=np.float32).reshape(n, h, w, c)
  for pad in (0, 2):
    tiled = viz.tile_images(images, num_rows=2, pad=pad, pad_value=-1.)
    cols = 3
    assert tiled.shape == (2 * h + pad, cols * w + (cols - 1) * pad, c)
    for idx in range(n):
      r, k = divmod(idx, cols)
      for i in range(h):
        for j in range(w):
          np.testing.assert_array_equal(tiled[r * (h + pad) + i, k * (w + pad) + j],
                                        images[idx, i, j])
    assert (tiled == -1.).sum() == tiled.size - images.size


def test_tile_images_grey_3d_input_and_default_rows():
  tiled = viz.tile_images(np.ones((9, 2, 2)))
  assert tiled.shape == (6, 6, 1)


def test_image_grid_clips_and_draws_rgb(tmp_path):
  images = np.random.RandomState(1).uniform(-1., 2., size=(6, 5, 5, 3))
  fig = viz.image_grid(images, num_rows=2, title='rgb', path=tmp_path / 'g.png')
  shown = drawn_image(fig)
  np.testing.assert_allclose(shown, viz.tile_images(np.clip(images, 0, 1), 2, pad=1))
  assert shown.min() >= 0. and shown.max() <= 1.
  assert fig.axes[0].get_xticks().size == 0
  assert fig.axes[0].get_yticks().size == 0
  assert_png(tmp_path / 'g.png')


# ----------------------------------------------------------------------------- sampling

def test_sample_latents_is_the_package_one():
  assert viz.sample_latents is latents.sample_latents


def test_sample_latents_reproducible_and_scaled():
  z1 = viz.sample_latents(EVENT, 512, temperature=0.7, seed=3)
  z2 = viz.sample_latents(EVENT, 512, temperature=0.7, seed=3)
  z3 = viz.sample_latents(EVENT, 512, temperature=0.7, seed=4)
  assert z1.dtype == tf.float32 and tuple(z1.shape) == (512,) + EVENT
  np.testing.assert_array_equal(z1.numpy(), z2.numpy())
  assert not np.allclose(z1.numpy(), z3.numpy())
  assert abs(np.std(z1.numpy()) - 0.7) < 0.03
  assert abs(np.mean(z1.numpy())) < 0.03
  # same noise at every temperature: z(T) = T * eps
  eps = viz.sample_latents(EVENT, 512, temperature=1.0, seed=3).numpy()
  np.testing.assert_allclose(z1.numpy(), 0.7 * eps, rtol=1e-6)
  np.testing.assert_array_equal(viz.sample_latents(EVENT, 4, 0.0, seed=3).numpy(), 0.)
  # unseeded draws work and differ
  a, b = viz.sample_latents((3,), 100), viz.sample_latents((3,), 100)
  assert not np.allclose(a.numpy(), b.numpy())
  with pytest.raises(ValueError):
    viz.sample_latents(EVENT, 2, temperature=-1.)


def test_sample_grid_shows_forward_of_latents(tmp_path):
  flow = make_flow()
  fig = viz.sample_grid(flow, EVENT, num_samples=6, temperature=0.8, seed=5, num_rows=2,
                        path=tmp_path / 's.png')
  z = viz.sample_latents(EVENT, 6, temperature=0.8, seed=5).numpy()
  expected = viz.tile_images(forward(flow, z), 2, pad=1)[..., 0]
  np.testing.assert_allclose(drawn_image(fig), expected, atol=1e-6)
  assert_png(tmp_path / 's.png')


def test_sample_grid_vector_event_with_image_shape(tmp_path):
  flow = make_flow()
  fig = viz.sample_grid(flow, (16,), num_samples=4, image_shape=(4, 4, 1),
                        path=tmp_path / 'v.png')
  assert drawn_image(fig).shape == (2 * 4 + 1, 2 * 4 + 1)
  assert_png(tmp_path / 'v.png')


def test_temperature_zero_gives_forward_of_zero_and_rows_share_noise(tmp_path):
  flow = make_flow()
  temps = (0.0, 0.5, 1.0)
  fig = viz.temperature_sweep(flow, EVENT, temperatures=temps, num_per_row=5, seed=2,
                              path=tmp_path / 't.png')
  shown = drawn_image(fig)
  eps = viz.sample_latents(EVENT, 5, seed=2).numpy()
  x0 = forward(flow, np.zeros((1,) + EVENT))[0]
  np.testing.assert_allclose(x0, 1. / (1. + np.exp(-0.3)), rtol=1e-6)
  expected = np.concatenate([forward(flow, t * eps) for t in temps])
  np.testing.assert_allclose(expected[:5], np.broadcast_to(x0, (5,) + EVENT), atol=1e-7)
  np.testing.assert_allclose(shown, viz.tile_images(expected, 3, pad=1)[..., 0], atol=1e-6)
  labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
  assert labels == ['T = 0', 'T = 0.5', 'T = 1']
  assert_png(tmp_path / 't.png')


# ----------------------------------------------------------------------------- interpolation

@pytest.mark.parametrize('method', ['spherical', 'linear'])
def test_latent_interpolation_endpoints_and_path(method):
  flow = make_flow()
  xa, xb = random_images(2, seed=7)
  x, z = viz.latent_interpolation(flow, xa, xb, num_steps=6, method=method,
                                  return_latents=True)
  assert x.shape == (6,) + EVENT and z.shape == (6,) + EVENT
  np.testing.assert_allclose(x[0], xa, atol=1e-4)
  np.testing.assert_allclose(x[-1], xb, atol=1e-4)
  za, zb = inverse(flow, xa), inverse(flow, xb)
  phi = np.linspace(0., np.pi / 2., 6)
  if method == 'spherical':
    wa, wb = np.cos(phi), np.sin(phi)
  else:
    wb = np.linspace(0., 1., 6)
    wa = 1. - wb
  expected_z = wa[:, None, None, None] * za + wb[:, None, None, None] * zb
  np.testing.assert_allclose(z, expected_z, atol=1e-5)
  np.testing.assert_allclose(x, forward(flow, z), atol=1e-6)
  # the middle is really in between, not a copy of an end
  assert not np.allclose(x[2], xa, atol=1e-3) and not np.allclose(x[2], xb, atol=1e-3)


def test_interpolate_figure_and_bad_args(tmp_path):
  flow = make_flow()
  xa, xb = random_images(2, seed=8)
  fig = viz.interpolate(flow, xa, xb, num_steps=5, path=tmp_path / 'i.png')
  expected = viz.latent_interpolation(flow, xa, xb, num_steps=5)
  np.testing.assert_allclose(drawn_image(fig), viz.tile_images(expected, 1, pad=1)[..., 0],
                             atol=1e-6)
  assert_png(tmp_path / 'i.png')
  with pytest.raises(ValueError):
    viz.latent_interpolation(flow, xa, xb, num_steps=1)
  with pytest.raises(ValueError):
    viz.latent_interpolation(flow, xa, xb, method='cubic')
  with pytest.raises(ValueError):
    viz.latent_interpolation(flow, xa, xb[:2])


def test_manifold_corners_and_interior(tmp_path):
  flow = make_flow()
  four = random_images(4, seed=9)
  g = 5
  x, z = viz.latent_manifold(flow, four, grid_size=g, return_latents=True)
  assert x.shape == (g, g) + EVENT
  for (i, j), k in {(0, 0): 0, (0, g - 1): 1, (g - 1, 0): 2, (g - 1, g - 1): 3}.items():
    np.testing.assert_allclose(x[i, j], four[k], atol=1e-4)
  zs = inverse(flow, four)
  phi = np.linspace(0., np.pi / 2., g)
  i, j = 1, 3
  expected = (np.cos(phi[i]) * (np.cos(phi[j]) * zs[0] + np.sin(phi[j]) * zs[1])
              + np.sin(phi[i]) * (np.cos(phi[j]) * zs[2] + np.sin(phi[j]) * zs[3]))
  np.testing.assert_allclose(z[i, j], expected, atol=1e-5)
  np.testing.assert_allclose(x, forward(flow, z.reshape((-1,) + EVENT)).reshape(x.shape),
                             atol=1e-6)
  fig = viz.manifold(flow, four, grid_size=g, path=tmp_path / 'm.png')
  assert drawn_image(fig).shape == (g * 4 + g - 1, g * 4 + g - 1)
  assert_png(tmp_path / 'm.png')
  with pytest.raises(ValueError):
    viz.latent_manifold(flow, four[:3])


# ----------------------------------------------------------------------------- 2-D densities

def test_density_heatmap_standard_normal(tmp_path):
  log_prob = tfd.MultivariateNormalDiag(loc=[0., 0.]).log_prob
  res = 101
  xs, ys, density = viz.density_grid(log_prob, bounds=((-4., 4.), (-4., 4.)), resolution=res)
  assert density.shape == (res, res)
  # cell centres (midpoint rule); with an odd resolution the middle cell sits at the origin
  np.testing.assert_allclose(xs, -4. + (np.arange(res) + 0.5) * 8. / res, atol=1e-12)
  np.testing.assert_allclose(ys, xs, atol=1e-12)
  assert abs(xs[res // 2]) < 1e-12
  assert np.unravel_index(np.argmax(density), density.shape) == (res // 2, res // 2)
  cell = (8. / res) ** 2
  assert abs(density.sum() * cell - 1.) < 2e-3
  fig = viz.density_heatmap(log_prob, resolution=res, path=tmp_path / 'd.png')
  shown = drawn_image(fig)
  np.testing.assert_allclose(shown, density, rtol=1e-6)
  assert np.unravel_index(np.argmax(shown), shown.shape) == (res // 2, res // 2)
  assert_png(tmp_path / 'd.png')


def test_density_grid_orientation():
  # mode at (x, y) = (1, -2): column is x, row is y (origin='lower').
  log_prob = tfd.MultivariateNormalDiag(loc=[1., -2.], scale_diag=[0.5, 0.5]).log_prob
  xs, ys, density = viz.density_grid(log_prob, bounds=((-4., 4.), (-4., 4.)), resolution=81)
  i, j = np.unravel_index(np.argmax(density), density.shape)
  assert abs(xs[j] - 1.) < 0.1 and abs(ys[i] + 2.) < 0.1
  np.testing.assert_allclose(density[i, j], np.exp(log_prob([[xs[j], ys[i]]]).numpy()[0]),
                             rtol=1e-5)


def test_toy_figure_three_panels(tmp_path):
  rng = np.random.RandomState(0)
  data = rng.normal(size=(300, 2)).astype(np.float32)
  flow = tfb.Chain([tfb.Shift([0.5, -0.5]), tfb.Scale([1.5, 0.7])])
  dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), (2,)), flow)
  samples = dist.sample(200, seed=(1, 2)).numpy()
  fig = viz.toy_figure(data, samples, dist.log_prob, title='toy', path=tmp_path / 'toy.png')
  assert len(fig.axes) == 3
  assert [ax.get_title() for ax in fig.axes] == ['data', 'samples', 'learned density']
  assert len(fig.axes[2].images) == 1
  assert_png(tmp_path / 'toy.png')
  # into a given Axes
  fig2 = viz.density_heatmap(dist.log_prob, resolution=20, data=data, samples=samples,
                             ax=fig.axes[2])
  assert fig2 is fig


# ----------------------------------------------------------------------------- curves

def test_bits_per_dim_curves(tmp_path):
  history = {'epoch': [1, 2, 3], 'train_bits_per_dim': [3.0, 2.5, 2.2],
             'test_bits_per_dim': [3.1, 2.6, None]}
  fig = viz.bits_per_dim_curves(history, path=tmp_path / 'b.png')
  lines = fig.axes[0].get_lines()
  assert [line.get_label() for line in lines] == ['train', 'test']
  np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3])
  np.testing.assert_array_equal(lines[0].get_ydata(), [3.0, 2.5, 2.2])
  assert np.isnan(lines[1].get_ydata()[2])
  assert_png(tmp_path / 'b.png')
  # missing keys tolerated
  fig = viz.bits_per_dim_curves({'train_bits_per_dim': [2.0, 1.9]}, path=tmp_path / 'c.png')
  np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_xdata(), [1, 2])
  assert_png(tmp_path / 'c.png')
  viz.bits_per_dim_curves({}, path=tmp_path / 'e.png')
  assert_png(tmp_path / 'e.png')


def test_save_creates_parent_directories(tmp_path):
  path = tmp_path / 'sub' / 'dir' / 'g.png'
  viz.image_grid(random_images(4), path=str(path))
  assert_png(path)


# ----------------------------------------------------------------------------- clipping

def test_samples_outside_the_pixel_range_are_clipped_for_display(tmp_path):
  flow = tfb.Shift(0.5)   # x = z + 0.5: samples well outside [0, 1]
  fig = viz.sample_grid(flow, EVENT, num_samples=4, temperature=2., seed=1, num_rows=2)
  x = forward(flow, latents.sample_latents(EVENT, 4, temperature=2., seed=1))
  assert x.min() < -0.5 and x.max() > 1.5
  np.testing.assert_allclose(drawn_image(fig), viz.tile_images(np.clip(x, 0, 1), 2, pad=1)[..., 0],
                             atol=1e-6)
  # The latent operations return the decoded points as they are.
  xa, xb = random_images(2, seed=3)
  decoded = viz.latent_interpolation(tfb.Scale(3.), xa, xb, num_steps=3)
  np.testing.assert_allclose(decoded[0], xa, atol=1e-5)
  assert decoded.max() > 1.


# ----------------------------------------------------------------------------- class grids

def test_class_grid_one_labelled_row_per_class(tmp_path):
  rows = [np.full((3,) + EVENT, k / 4., np.float32) for k in range(3)]
  rows[2] += 5.   # clipped to white
  fig = viz.class_grid(rows, ['cat', 'dog', 'emu'], title='classes', path=tmp_path / 'c.png')
  shown = drawn_image(fig)
  h = EVENT[0]
  assert shown.shape == (3 * h + 2, 3 * EVENT[1] + 2)
  for k, value in enumerate([0., 0.25, 1.]):
    np.testing.assert_array_equal(shown[k * (h + 1):k * (h + 1) + h, :EVENT[1]], value)
  labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
  assert labels == ['cat', 'dog', 'emu']
  assert_png(tmp_path / 'c.png')
  by_name = viz.class_grid({'a': rows[0], 'b': rows[1]})
  assert [t.get_text() for t in by_name.axes[0].get_yticklabels()] == ['a', 'b']
  array = viz.class_grid(np.stack(rows[:2]))
  assert [t.get_text() for t in array.axes[0].get_yticklabels()] == ['0', '1']


@pytest.mark.parametrize('rows, names, message', [
    ([], None, 'at least one class'),
    ([np.zeros((2, 4, 4)), np.zeros((3, 4, 4))], None, 'same, non-zero number'),
    ([np.zeros((2, 4, 4)), np.zeros((2, 5, 4))], None, 'different shapes'),
    ([np.zeros((2, 4, 4))] * 2, ['a'], 'Got 1 class names for 2 classes'),
])
def test_class_grid_rejects_bad_rows(rows, names, message):
  with pytest.raises(ValueError, match=message):
    viz.class_grid(rows, names)
