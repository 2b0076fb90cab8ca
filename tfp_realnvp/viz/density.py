"""A 2-D density evaluated on a regular grid (numbers for a heat map)."""

import numpy as np

__all__ = ['density_grid']


def density_grid(log_prob_fn, bounds=((-4., 4.), (-4., 4.)), resolution=200):
  """Evaluates p(x, y) = exp(log_prob_fn([x, y])) at the centres of a regular grid.

  The box [x0, x1] x [y0, y1] is cut into resolution x resolution cells of size
  dx = (x1 - x0) / R, dy = (y1 - y0) / R; cell (i, j) has centre
  (x0 + (j + 1/2) dx, y0 + (i + 1/2) dy). So `density.sum() * dx * dy` is the midpoint-rule
  estimate of the probability mass in the box (about 1 when the box holds the mass). With
  an odd R the middle cell is centred on the box centre. Non-finite log-probs count as
  density 0.

  Args:
    log_prob_fn: callable mapping an (N, 2) float32 array to N log-densities (e.g.
      `dist.log_prob` of a `TransformedDistribution` over a (2,) event).
    bounds: ((x0, x1), (y0, y1)).
    resolution: R, cells per axis (int or (Rx, Ry)).

  Returns:
    (xs, ys, density): cell centres along x (Rx,), along y (Ry,), and the density (Ry, Rx)
    with density[i, j] = p(xs[j], ys[i]) (row i is y, as in an image with origin='lower').
  """
  (x0, x1), (y0, y1) = bounds
  if not (x1 > x0 and y1 > y0):
    raise ValueError(f'`bounds` must be ((x0, x1), (y0, y1)) with x1 > x0, y1 > y0: {bounds}.')
  rx, ry = (resolution, resolution) if np.isscalar(resolution) else resolution
  rx, ry = int(rx), int(ry)
  if rx < 1 or ry < 1:
    raise ValueError(f'`resolution` must be >= 1, got {resolution}.')
  dx, dy = (x1 - x0) / rx, (y1 - y0) / ry
  xs = x0 + (np.arange(rx) + 0.5) * dx
  ys = y0 + (np.arange(ry) + 0.5) * dy
  gx, gy = np.meshgrid(xs, ys)   # (ry, rx)
  points = np.stack([gx.ravel(), gy.ravel()], axis=-1).astype(np.float32)
  log_p = np.asarray(log_prob_fn(points), dtype=np.float64).reshape(ry, rx)
  with np.errstate(over='ignore'):
    density = np.where(np.isfinite(log_p), np.exp(np.where(np.isfinite(log_p), log_p, 0.)), 0.)
  return xs, ys, density
