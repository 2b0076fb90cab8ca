"""Figures of flows: samples, temperature, interpolation, manifolds, classes, 2-D densities.

Figures are built with `matplotlib.figure.Figure` directly (no pyplot, so no global figure
state and no screen needed); every plotting function returns the `Figure` and, given `path`,
also saves it as a PNG there. The numbers they show come from `tfp_realnvp.viz.latent`
(interpolation, manifold), `tfp_realnvp.viz.density` (2-D densities) and
`tfp_realnvp.latents.sample_latents` (latents at a temperature from a seed).

Image events are `(H, W, C)` with pixels in `[0, 1]`, `C = 1` (grey) or `C = 3` (RGB);
`(H, W)` is read as grey. Every function that shows samples or decoded latents as images
clips them to `[0, 1]` first: a flow's `forward` is a bijection onto all of its range, so
samples can lie slightly outside the pixel range. A flow over flattened images (vector event
`(D,)`) can be shown by passing `image_shape=(H, W, C)`.

#### Examples

```python
import tensorflow_probability as tfp
from tfp_realnvp import viz
tfb = tfp.bijectors

flow = tfb.Chain([tfb.Sigmoid(), tfb.Scale(0.5)])     # any latent -> pixels bijector
viz.sample_grid(flow, (8, 8, 1), num_samples=16, temperature=0.7, path='samples.png')
viz.temperature_sweep(flow, (8, 8, 1), temperatures=(0., 0.5, 1.), path='temps.png')
```

#### References

[1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
     In _International Conference on Learning Representations_, 2017.
     https://arxiv.org/abs/1605.08803 (figure 6: the manifold from four examples).
[2]: Diederik P. Kingma, Prafulla Dhariwal. Glow: Generative Flow with Invertible 1x1
     Convolutions. In _NeurIPS_, 2018. https://arxiv.org/abs/1807.03039 (sampling at
     reduced temperature).
"""

import collections.abc
import math
import os

import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

from tfp_realnvp.latents import sample_latents
from tfp_realnvp.viz.density import density_grid
from tfp_realnvp.viz.latent import decode
from tfp_realnvp.viz.latent import latent_interpolation
from tfp_realnvp.viz.latent import latent_manifold

__all__ = [
    'bits_per_dim_curves',
    'class_grid',
    'density_heatmap',
    'image_grid',
    'interpolate',
    'manifold',
    'sample_grid',
    'temperature_sweep',
    'tile_images',
    'toy_figure',
]


def _save(fig, path, dpi=100):
  """Saves `fig` as a PNG at `path` (creating parent directories) if `path` is given."""
  if path is not None:
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
      os.makedirs(parent, exist_ok=True)
    fig.savefig(path, format='png', dpi=dpi, bbox_inches='tight')
  return fig


def _as_images(images, image_shape=None):
  """Returns images as a float numpy array (N, H, W, C).

  Accepts (N, H, W) (grey), (N, H, W, C), or anything of N * prod(image_shape) entries
  when `image_shape` is given.
  """
  images = np.asarray(images, dtype=np.float32)
  if image_shape is not None:
    image_shape = tuple(int(d) for d in image_shape)
    size = int(np.prod(image_shape))
    if images.size % size:
      raise ValueError(
          f'Cannot reshape images of shape {images.shape} to a batch of {image_shape}.')
    images = images.reshape((-1,) + image_shape)
  if images.ndim == 3:
    images = images[..., np.newaxis]
  if images.ndim != 4:
    raise ValueError(
        f'Expected images of shape (N, H, W) or (N, H, W, C), got {images.shape}; '
        'pass `image_shape` for flattened (vector) events.')
  return images


def _check_temperature(temperature):
  temperature = float(temperature)
  if not math.isfinite(temperature) or temperature < 0.:
    raise ValueError(f'`temperature` must be a finite number >= 0, got {temperature}.')
  return temperature


def tile_images(images, num_rows=None, pad=0, pad_value=1.0):
  """Tiles a batch of images into one image (pure numpy, no clipping).

  Image `n` of `images` (shape (N, H, W, C), or (N, H, W) read as C = 1) goes to grid row
  `r = n // cols`, column `k = n % cols`, with `cols = ceil(N / num_rows)` and
  `rows = ceil(N / cols)` (rows that would stay empty are dropped); its pixel
  `(i, j, c)` lands at `(r * (H + pad) + i, k * (W + pad) + j, c)` of the result, which has
  shape `(rows * H + (rows - 1) * pad, cols * W + (cols - 1) * pad, C)`. Empty grid cells and
  the `pad` pixels between tiles are filled with `pad_value`. With the default `pad=0` the
  result is exactly `(rows * H, cols * W, C)`.

  For a TensorBoard summary: `tf.summary.image('samples', tile_images(x)[None], step)`.

  Args:
    images: array-like (N, H, W, C) or (N, H, W).
    num_rows: number of grid rows; default `ceil(sqrt(N))` (a square-ish grid).
    pad: pixels of padding between tiles (int >= 0).
    pad_value: value of padding and empty cells.

  Returns:
    A numpy array of shape (rows * H + (rows - 1) * pad, cols * W + (cols - 1) * pad, C),
    with the dtype of `images` (float32 for lists).
  """
  images = np.asarray(images)
  if images.ndim == 3:
    images = images[..., np.newaxis]
  if images.ndim != 4:
    raise ValueError(f'Expected images of shape (N, H, W[, C]), got {images.shape}.')
  if not np.issubdtype(images.dtype, np.floating):
    images = images.astype(np.float32)
  n, h, w, c = images.shape
  if n == 0:
    raise ValueError('Cannot tile an empty batch of images.')
  if num_rows is None:
    num_rows = int(math.ceil(math.sqrt(n)))
  num_rows = int(num_rows)
  if num_rows < 1:
    raise ValueError(f'`num_rows` must be >= 1, got {num_rows}.')
  pad = int(pad)
  if pad < 0:
    raise ValueError(f'`pad` must be >= 0, got {pad}.')
  num_cols = int(math.ceil(n / num_rows))
  num_rows = int(math.ceil(n / num_cols))  # drop rows that would be empty
  out = np.full((num_rows * h + (num_rows - 1) * pad, num_cols * w + (num_cols - 1) * pad, c),
                pad_value, dtype=images.dtype)
  for idx in range(n):
    r, k = divmod(idx, num_cols)
    top, left = r * (h + pad), k * (w + pad)
    out[top:top + h, left:left + w, :] = images[idx]
  return out


def image_grid(images, num_rows=None, title=None, path=None, row_labels=None,
               col_labels=None, image_shape=None, pad=1, figsize=None):
  """Shows a batch of images as one grid figure (pixels clipped to [0, 1], no ticks).

  Args:
    images: array-like (N, H, W, C) with C = 1 (grey) or 3 (RGB), or (N, H, W) (grey),
      pixels in [0, 1] (values outside are clipped).
    num_rows: grid rows (default ceil(sqrt(N))); images fill the grid row by row.
    title: optional figure title.
    path: if given, the figure is saved there as a PNG.
    row_labels: optional list of one label per grid row (drawn left of the rows).
    col_labels: optional list of one label per grid column (drawn above the columns).
    image_shape: optional (H, W, C) to reshape flattened images to.
    pad: pixels of white padding between images.
    figsize: optional matplotlib figure size in inches.

  Returns:
    The `matplotlib.figure.Figure`.
  """
  images = np.clip(_as_images(images, image_shape), 0., 1.)
  n, h, w, c = images.shape
  if c not in (1, 3):
    raise ValueError(f'Images must have 1 (grey) or 3 (RGB) channels, got {c}.')
  tiled = tile_images(images, num_rows=num_rows, pad=pad, pad_value=1.0)
  num_cols = (tiled.shape[1] + pad) // (w + pad)
  num_rows = (tiled.shape[0] + pad) // (h + pad)
  if figsize is None:
    scale = 8.0 / max(tiled.shape[0], tiled.shape[1])
    figsize = (max(2.0, tiled.shape[1] * scale), max(2.0, tiled.shape[0] * scale))
  fig = Figure(figsize=figsize)
  ax = fig.add_subplot(1, 1, 1)
  if c == 1:
    ax.imshow(tiled[..., 0], cmap='gray', vmin=0., vmax=1., interpolation='nearest')
  else:
    ax.imshow(tiled, interpolation='nearest')
  ax.set_xticks([])
  ax.set_yticks([])
  for spine in ax.spines.values():
    spine.set_visible(False)
  if row_labels is not None:
    row_labels = [str(s) for s in row_labels]
    if len(row_labels) != num_rows:
      raise ValueError(f'Got {len(row_labels)} row labels for {num_rows} rows.')
    ax.set_yticks([r * (h + pad) + (h - 1) / 2. for r in range(num_rows)], row_labels)
    ax.tick_params(axis='y', length=0)
  if col_labels is not None:
    col_labels = [str(s) for s in col_labels]
    if len(col_labels) != num_cols:
      raise ValueError(f'Got {len(col_labels)} column labels for {num_cols} columns.')
    ax.xaxis.tick_top()
    ax.set_xticks([k * (w + pad) + (w - 1) / 2. for k in range(num_cols)], col_labels)
    ax.tick_params(axis='x', length=0)
  if title is not None:
    fig.suptitle(title)
  return _save(fig, path)


def class_grid(images_by_class, class_names=None, title=None, path=None, image_shape=None,
               pad=1, figsize=None):
  """One row of images per class, each row labelled with its class name.

  Row `k` shows the images of `images_by_class[k]` (pixels clipped to `[0, 1]`), left to
  right. The images are given, already drawn: for a class-conditional flow, sample each
  class's row (at one label per row) and pass the rows here.

  #### Examples

  ```python
  rows = [flow_samples_for_label(k) for k in range(10)]   # each (8, 28, 28, 1)
  viz.class_grid(rows, data.class_names, title='samples by class', path='classes.png')
  ```

  Args:
    images_by_class: the rows: an array `(K, N, H, W, C)` or `(K, N, H, W)`, a sequence of
      `K` arrays of `N` images each, or a mapping from class name to such an array (its keys
      are then the default `class_names`).
    class_names: optional `K` row labels; default the mapping's keys, else `'0'`, `'1'`, ...
    title: optional figure title.
    path: if given, the figure is saved there as a PNG.
    image_shape: optional `(H, W, C)` to reshape flattened images to.
    pad: pixels of white padding between images.
    figsize: optional matplotlib figure size in inches.

  Returns:
    The `matplotlib.figure.Figure`.

  Raises:
    ValueError: if there is no row, the rows hold different numbers of images (or none) or
      images of different shapes, or the number of `class_names` is not the number of rows.
  """
  if isinstance(images_by_class, collections.abc.Mapping):
    if class_names is None:
      class_names = list(images_by_class)
    images_by_class = list(images_by_class.values())
  rows = [_as_images(row, image_shape) for row in images_by_class]
  if not rows:
    raise ValueError('class_grid needs at least one class (row) of images.')
  counts = {len(row) for row in rows}
  shapes = {row.shape[1:] for row in rows}
  if len(counts) > 1 or 0 in counts:
    raise ValueError('Every class needs the same, non-zero number of images; got '
                     f'{[len(row) for row in rows]}.')
  if len(shapes) > 1:
    raise ValueError(f'The classes have images of different shapes: {sorted(shapes)}.')
  if class_names is None:
    class_names = [str(k) for k in range(len(rows))]
  class_names = [str(name) for name in class_names]
  if len(class_names) != len(rows):
    raise ValueError(f'Got {len(class_names)} class names for {len(rows)} classes (rows).')
  return image_grid(np.concatenate(rows), num_rows=len(rows), title=title, path=path,
                    row_labels=class_names, pad=pad, figsize=figsize)


def sample_grid(flow, event_shape, num_samples=64, temperature=1.0, seed=0, path=None,
                num_rows=None, title=None, image_shape=None):
  """Samples x = flow.forward(z), z ~ N(0, T^2 I), and shows them as an image grid.

  The latents come from `tfp_realnvp.latents.sample_latents` (the same seed gives the same
  samples as the trainer's sample grids and the SavedModel's `sample`); the samples are
  clipped to `[0, 1]` for display.

  Args:
    flow: a TFP bijector, latent -> data (inference mode).
    event_shape: the flow's event shape (H, W, C) (or (D,) with `image_shape`).
    num_samples: number of samples.
    temperature: T >= 0, see `sample_latents`.
    seed: seed of `sample_latents` (reproducible samples); None for fresh noise.
    path: if given, the PNG is written there.
    num_rows: grid rows (default square-ish).
    title: figure title (default "samples, T = ...").
    image_shape: reshape a vector event to this image shape for display.

  Returns:
    The `matplotlib.figure.Figure`.
  """
  z = sample_latents(event_shape, num_samples, temperature=temperature, seed=seed)
  x = decode(flow, z)
  if title is None:
    title = f'samples, T = {float(temperature):g}'
  return image_grid(x, num_rows=num_rows, title=title, path=path, image_shape=image_shape)


def temperature_sweep(flow, event_shape, temperatures=(0.25, 0.5, 0.75, 1.0), num_per_row=8,
                      seed=0, path=None, title=None, image_shape=None):
  """One row of samples per temperature, from the same base noise scaled by T.

  Row r shows x = flow.forward(T_r * eps) with the same eps ~ N(0, I) (drawn once from
  `seed`) for every row, so z ~ N(0, T_r^2 I) and each column follows one latent direction
  as the temperature grows. T = 0 gives flow.forward(0) in every column. The samples are
  clipped to `[0, 1]` for display.

  Args:
    flow: a TFP bijector, latent -> data (inference mode).
    event_shape: the flow's event shape.
    temperatures: the temperatures T >= 0, one grid row each (labelled "T = ...").
    num_per_row: samples per row.
    seed: seed of the shared noise eps.
    path: if given, the PNG is written there.
    title: figure title.
    image_shape: reshape a vector event to this image shape for display.

  Returns:
    The `matplotlib.figure.Figure`.
  """
  temperatures = [_check_temperature(t) for t in temperatures]
  if not temperatures:
    raise ValueError('`temperatures` must not be empty.')
  eps = sample_latents(event_shape, num_per_row, temperature=1.0, seed=seed)
  z = tf.concat([t * eps for t in temperatures], axis=0)
  x = decode(flow, z)
  return image_grid(x, num_rows=len(temperatures),
                    title='samples by temperature' if title is None else title,
                    row_labels=[f'T = {t:g}' for t in temperatures], path=path,
                    image_shape=image_shape)


def interpolate(flow, x_start, x_end, num_steps=8, path=None, method='spherical', title=None,
                image_shape=None):
  """Shows `latent_interpolation(flow, x_start, x_end, num_steps, method)` as one row.

  The row is x_0 = x_start (reconstructed), ..., x_{K-1} = x_end with
  x_k = flow.forward(z_k), z_k = cos(phi_k) z_a + sin(phi_k) z_b for the default
  'spherical' method (see `tfp_realnvp.viz.latent.latent_interpolation`), clipped to
  `[0, 1]` for display.

  Args:
    flow: a TFP bijector, latent -> data (inference mode).
    x_start: one data point (shape = event shape, no batch axis).
    x_end: one data point of the same shape.
    num_steps: K >= 2, the number of points including both ends.
    path: if given, the PNG is written there.
    method: 'spherical' or 'linear'.
    title: figure title (default "<method> latent interpolation").
    image_shape: reshape a vector event to this image shape for display.

  Returns:
    The `matplotlib.figure.Figure`.
  """
  x = latent_interpolation(flow, x_start, x_end, num_steps=num_steps, method=method)
  if title is None:
    title = f'{method} latent interpolation'
  return image_grid(x, num_rows=1, title=title, path=path, image_shape=image_shape)


def manifold(flow, four_images, grid_size=8, path=None, title=None, image_shape=None):
  """Shows `latent_manifold(flow, four_images, grid_size)` as a G x G grid (paper fig. 6).

  Grid cell (i, j) is flow.forward(cos(phi_i)(cos(phi'_j) z_1 + sin(phi'_j) z_2)
  + sin(phi_i)(cos(phi'_j) z_3 + sin(phi'_j) z_4)); the corners are the four inputs. The
  images are clipped to `[0, 1]` for display.

  Args:
    flow: a TFP bijector, latent -> data (inference mode).
    four_images: array (4,) + event_shape: the top-left, top-right, bottom-left and
      bottom-right corners.
    grid_size: G >= 2.
    path: if given, the PNG is written there.
    title: figure title.
    image_shape: reshape a vector event to this image shape for display.

  Returns:
    The `matplotlib.figure.Figure`.
  """
  x = latent_manifold(flow, four_images, grid_size=grid_size)
  g = int(grid_size)
  x = x.reshape((g * g,) + x.shape[2:])
  return image_grid(x, num_rows=g, title='latent manifold of four examples'
                    if title is None else title, path=path, image_shape=image_shape)


def density_heatmap(log_prob_fn, bounds=((-4., 4.), (-4., 4.)), resolution=200, data=None,
                    samples=None, ax=None, path=None, title=None, cmap='viridis',
                    max_points=2000):
  """Heat map of a 2-D density p(x) = exp(log_prob_fn(x)) over `bounds`.

  The image is `density_grid(log_prob_fn, bounds, resolution)` drawn with origin='lower'
  and extent = bounds (one pixel per grid cell); optional scatters of training `data`
  (blue) and model `samples` (red), at most `max_points` of each.

  Args:
    log_prob_fn: callable (N, 2) -> (N,) log-densities.
    bounds: ((x0, x1), (y0, y1)).
    resolution: cells per axis.
    data: optional (M, 2) points drawn in blue.
    samples: optional (M, 2) points drawn in red.
    ax: optional matplotlib Axes to draw into (its figure is returned and saved).
    path: if given, the figure is saved there as a PNG.
    title: optional axes title.
    cmap: colormap of the density.
    max_points: scatter at most this many points of `data` and of `samples`.

  Returns:
    The `matplotlib.figure.Figure`.
  """
  xs, ys, density = density_grid(log_prob_fn, bounds=bounds, resolution=resolution)
  if ax is None:
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot(1, 1, 1)
  else:
    fig = ax.figure
  (x0, x1), (y0, y1) = bounds
  ax.imshow(density, origin='lower', extent=(x0, x1, y0, y1), cmap=cmap, aspect='auto',
            interpolation='nearest')
  for points, color, label in ((data, 'tab:blue', 'data'), (samples, 'tab:red', 'samples')):
    if points is not None:
      points = np.asarray(points).reshape(-1, 2)[:max_points]
      ax.scatter(points[:, 0], points[:, 1], s=3, c=color, alpha=0.5, label=label)
  ax.set_xlim(x0, x1)
  ax.set_ylim(y0, y1)
  if title is not None:
    ax.set_title(title)
  return _save(fig, path)


def _bounds_from(*point_sets, margin=0.1):
  pts = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2)
                        for p in point_sets if p is not None])
  pts = pts[np.all(np.isfinite(pts), axis=1)]
  if len(pts) == 0:
    return ((-4., 4.), (-4., 4.))
  lo, hi = pts.min(axis=0), pts.max(axis=0)
  span = np.maximum(hi - lo, 1e-3)
  lo, hi = lo - margin * span, hi + margin * span
  return ((float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1])))


def toy_figure(data, samples, log_prob_fn, title=None, path=None, bounds=None,
               resolution=200, max_points=2000):
  """Three panels for a 2-D toy: data, samples, learned density.

  Left: the training data (blue). Middle: samples x = flow.forward(z), z ~ N(0, I), of the
  model (red). Right: the learned density exp(log_prob_fn(x)) as a heat map. All panels
  share `bounds` (default: the data's bounding box plus 10%).

  Args:
    data: (N, 2) training points.
    samples: (M, 2) model samples (or None to leave the panel empty).
    log_prob_fn: callable (N, 2) -> (N,) log-densities of the model.
    title: optional figure title.
    path: if given, the figure is saved there as a PNG.
    bounds: ((x0, x1), (y0, y1)) shared by the three panels.
    resolution: heat-map cells per axis.
    max_points: scatter at most this many points per panel.

  Returns:
    The `matplotlib.figure.Figure`.
  """
  data = np.asarray(data).reshape(-1, 2)
  if bounds is None:
    bounds = _bounds_from(data)
  (x0, x1), (y0, y1) = bounds
  fig = Figure(figsize=(15, 5))
  axes = [fig.add_subplot(1, 3, i + 1) for i in range(3)]
  axes[0].scatter(data[:max_points, 0], data[:max_points, 1], s=3, c='tab:blue', alpha=0.5)
  axes[0].set_title('data')
  if samples is not None:
    samples = np.asarray(samples).reshape(-1, 2)
    axes[1].scatter(samples[:max_points, 0], samples[:max_points, 1], s=3, c='tab:red',
                    alpha=0.5)
  axes[1].set_title('samples')
  for ax in axes[:2]:
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
  density_heatmap(log_prob_fn, bounds=bounds, resolution=resolution, ax=axes[2],
                  title='learned density')
  if title is not None:
    fig.suptitle(title)
  return _save(fig, path)


def _series(values):
  if values is None:
    return None
  out = []
  for v in np.asarray(values, dtype=object).ravel():
    try:
      out.append(float(v))
    except (TypeError, ValueError):
      out.append(float('nan'))
  return np.asarray(out, dtype=np.float64)


def bits_per_dim_curves(history, path=None, title='bits/dim'):
  """Plots train and test bits/dim per epoch.

  bits/dim = (-log p(x) / D + ln 256) / ln 2 for D-dimensional data scaled to [0, 1] (see
  `tfp_realnvp.bits_per_dim`); this function only plots the values it is given.

  Args:
    history: dict-like with optional keys 'epoch', 'train_bits_per_dim',
      'test_bits_per_dim' (also read: 'val_bits_per_dim', 'valid_bits_per_dim'). Missing
      keys are skipped; without a usable 'epoch' list the x axis is 1, 2, ...; None or
      non-numeric entries are drawn as gaps.
    path: if given, the figure is saved there as a PNG.
    title: axes title.

  Returns:
    The `matplotlib.figure.Figure`.
  """
  history = dict(history or {})
  epochs = _series(history.get('epoch'))
  fig = Figure(figsize=(6, 4))
  ax = fig.add_subplot(1, 1, 1)
  plotted = False
  keys = (('train_bits_per_dim', 'train'), ('test_bits_per_dim', 'test'),
          ('val_bits_per_dim', 'validation'), ('valid_bits_per_dim', 'validation'))
  for key, label in keys:
    y = _series(history.get(key))
    if y is None or y.size == 0:
      continue
    x = epochs if epochs is not None and epochs.size == y.size else np.arange(1, y.size + 1)
    ax.plot(x, y, marker='o' if y.size < 30 else None, markersize=3, label=label)
    plotted = True
  ax.set_xlabel('epoch')
  ax.set_ylabel('bits/dim')
  if title:
    ax.set_title(title)
  if plotted:
    ax.legend()
    ax.grid(True, alpha=0.3)
  else:
    ax.text(0.5, 0.5, 'no bits/dim recorded', ha='center', va='center',
            transform=ax.transAxes)
  return _save(fig, path)
