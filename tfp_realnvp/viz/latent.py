"""Latent-space operations on a flow: encoding, decoding, interpolation, the manifold grid.

Numbers only (numpy arrays), no figures: `tfp_realnvp.viz.figures` draws them. Every
function works against the generic TFP bijector interface:

- `flow.forward(z)` maps a latent `z` to data `x` (sampling),
- `flow.inverse(x)` maps data `x` to its latent `z` (density),
- the base distribution is a standard normal over the whole event,
  `tfd.Sample(tfd.Normal(0., 1.), event_shape)`.

The flow is always called without the `training` keyword, i.e. in inference mode (batch
normalization uses its running statistics and nothing is updated). Any `tfb.Bijector` works.
Decoded points are returned as the flow gives them, not clipped: an image flow's samples can
lie slightly outside [0, 1] (the figure functions clip them to pixels).

#### References

[1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
     In _International Conference on Learning Representations_, 2017.
     https://arxiv.org/abs/1605.08803 (figure 6: the manifold from four examples).
"""

import numpy as np
import tensorflow as tf

__all__ = [
    'decode',
    'encode',
    'interpolation_angles',
    'latent_interpolation',
    'latent_manifold',
]


def _flow_dtype(flow):
  dtype = getattr(flow, 'dtype', None)
  try:
    dtype = tf.as_dtype(dtype) if dtype is not None else tf.float32
  except TypeError:
    dtype = tf.float32
  return dtype if dtype.is_floating else tf.float32


def decode(flow, z):
  """`x = flow.forward(z)` in inference mode, as a numpy array (not clipped)."""
  z = tf.convert_to_tensor(z, dtype=_flow_dtype(flow))
  return np.asarray(flow.forward(z))


def encode(flow, x):
  """`z = flow.inverse(x)` in inference mode, as a numpy array."""
  x = tf.convert_to_tensor(x, dtype=_flow_dtype(flow))
  return np.asarray(flow.inverse(x))


def interpolation_angles(num_steps):
  """Angles phi_k = (pi / 2) * k / (num_steps - 1), k = 0..num_steps-1 (float64 numpy)."""
  num_steps = int(num_steps)
  if num_steps < 2:
    raise ValueError(f'`num_steps` must be >= 2, got {num_steps}.')
  return np.linspace(0., np.pi / 2., num_steps)


def _cos_sin(phi):
  """cos and sin of angles in [0, pi/2], exact (0 / 1) at the end points."""
  c, s = np.cos(phi), np.sin(phi)
  c[np.isclose(phi, np.pi / 2.)] = 0.
  s[phi == 0.] = 0.
  return c, s


def latent_interpolation(flow, x_start, x_end, num_steps=8, method='spherical',
                         return_latents=False):
  """Interpolates between two data points in latent space; returns the decoded points.

  z_a = flow.inverse(x_start), z_b = flow.inverse(x_end) (inference mode), then for
  k = 0, ..., K - 1 (K = num_steps):

  - method='spherical' (default; the paper's rule [1], as in its figure 6):
    z_k = cos(phi_k) z_a + sin(phi_k) z_b, phi_k = (pi / 2) k / (K - 1).
    If z_a, z_b are independent N(0, I) then so is every z_k (cos^2 + sin^2 = 1), so the
    path stays in the typical set of the base; it is exactly great-circle interpolation
    (slerp) when z_a and z_b are orthogonal with equal norms, which holds approximately
    in high dimension.
  - method='linear': z_k = (1 - t_k) z_a + t_k z_b, t_k = k / (K - 1) (the midpoints have
    a smaller norm than typical latents, so they tend to look smoother / more average).

  Both give z_0 = z_a and z_{K-1} = z_b exactly, so the end images are
  flow.forward(flow.inverse(x)) = x up to the flow's round-trip error. The images are
  x_k = flow.forward(z_k).

  Args:
    flow: a TFP bijector, latent -> data.
    x_start: one data point (shape = event shape, no batch axis).
    x_end: one data point of the same shape.
    num_steps: K >= 2, the number of points including both ends.
    method: 'spherical' or 'linear'.
    return_latents: also return the latents z_k.

  Returns:
    Numpy array (K,) + event_shape of x_k (not clipped), or (x, z) if `return_latents`.
  """
  x_start = np.asarray(x_start)
  x_end = np.asarray(x_end)
  if x_start.shape != x_end.shape:
    raise ValueError(
        f'`x_start` and `x_end` must have the same shape, got {x_start.shape} and '
        f'{x_end.shape}.')
  if method not in ('spherical', 'linear'):
    raise ValueError(f"`method` must be 'spherical' or 'linear', got {method!r}.")
  z_ab = encode(flow, np.stack([x_start, x_end]))
  z_a, z_b = z_ab[0], z_ab[1]
  phi = interpolation_angles(num_steps)
  if method == 'spherical':
    wa, wb = _cos_sin(phi)
  else:
    wb = phi / (np.pi / 2.)
    wa = 1. - wb
  bshape = (-1,) + (1,) * z_a.ndim
  z = (wa.reshape(bshape) * z_a[None].astype(np.float64)
       + wb.reshape(bshape) * z_b[None].astype(np.float64)).astype(z_ab.dtype)
  x = decode(flow, z)
  return (x, z) if return_latents else x


def latent_manifold(flow, four_images, grid_size=8, return_latents=False):
  """The manifold spanned by four data points in latent space (paper [1], figure 6).

  With z_1..z_4 = flow.inverse(four_images) and phi, phi' on a grid of [0, pi/2]:

    z(phi, phi') = cos(phi) (cos(phi') z_1 + sin(phi') z_2)
                 + sin(phi) (cos(phi') z_3 + sin(phi') z_4),

  where row i uses phi_i = (pi/2) i / (G - 1) and column j uses phi'_j = (pi/2) j / (G - 1),
  G = grid_size. The corners are z_1 (top left), z_2 (top right), z_3 (bottom left) and
  z_4 (bottom right), so they decode to the four inputs (up to round-trip error). For
  independent N(0, I) latents every z(phi, phi') is again N(0, I). The images are
  x(phi, phi') = flow.forward(z(phi, phi')).

  Args:
    flow: a TFP bijector, latent -> data.
    four_images: array (4,) + event_shape.
    grid_size: G >= 2.
    return_latents: also return the latents.

  Returns:
    Numpy array (G, G) + event_shape of decoded points, not clipped (or (x, z) if
    `return_latents`).
  """
  four_images = np.asarray(four_images)
  if four_images.ndim < 1 or four_images.shape[0] != 4:
    raise ValueError(f'`four_images` must have a leading axis of 4, got {four_images.shape}.')
  zs = encode(flow, four_images)
  event_shape = zs.shape[1:]
  z1, z2, z3, z4 = (zs[i].astype(np.float64) for i in range(4))
  phi = interpolation_angles(grid_size)
  c, s = _cos_sin(phi)
  e = (1,) * len(event_shape)
  ci, si = c.reshape((-1, 1) + e), s.reshape((-1, 1) + e)   # rows: phi
  cj, sj = c.reshape((1, -1) + e), s.reshape((1, -1) + e)   # columns: phi'
  z = ci * (cj * z1 + sj * z2) + si * (cj * z3 + sj * z4)
  z = z.astype(zs.dtype)
  g = int(grid_size)
  x = decode(flow, z.reshape((g * g,) + event_shape)).reshape((g, g) + event_shape)
  return (x, z) if return_latents else x
