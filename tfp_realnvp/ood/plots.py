"""Figures of an OOD evaluation: bits/dim histograms and ROC curves.

Figures are built with `matplotlib.figure.Figure` (no pyplot, no screen); each
function returns the `Figure` and, given `path`, saves it as a PNG.
"""

import math
import os

import numpy as np
from matplotlib.figure import Figure

from tfp_realnvp.ood import metrics

__all__ = ['bits_per_dim_histograms', 'roc_curves']

_IN_COLOR = 'tab:blue'
_OOD_COLOR = 'tab:red'


def _save(fig, path):
  if path is not None:
    path = os.fspath(path)
    if os.path.dirname(path):
      os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, format='png', dpi=100, bbox_inches='tight')
  return fig


def _grid(count, panel_size=(4., 3.)):
  cols = min(count, 3)
  rows = math.ceil(count / cols)
  fig = Figure(figsize=(panel_size[0] * cols, panel_size[1] * rows))
  axes = fig.subplots(rows, cols, squeeze=False).ravel()
  for ax in axes[count:]:
    ax.set_visible(False)
  return fig, axes[:count]


def _finite(values):
  values = np.asarray(values, dtype=np.float64)
  return values[np.isfinite(values)]


def bits_per_dim_histograms(in_bits_per_dim, ood_bits_per_dim, in_name='in-distribution',
                            path=None, bins=50):
  """One panel per OOD set: its bits/dim histogram over the in-distribution one.

  Args:
    in_bits_per_dim: 1-D array, bits/dim of the in-distribution test inputs.
    ood_bits_per_dim: `dict` from OOD set name to its 1-D array of bits/dim.
    in_name: label of the in-distribution set.
    path: optional PNG path.
    bins: number of bins per panel, shared by its two histograms and spanning
      the 0.5 to 99.5 percentiles of their values (the rest is not drawn).

  Returns:
    The `matplotlib.figure.Figure`.
  """
  if not ood_bits_per_dim:
    raise ValueError('ood_bits_per_dim is empty: there is no OOD set to draw.')
  fig, axes = _grid(len(ood_bits_per_dim))
  in_values = _finite(in_bits_per_dim)
  for ax, (name, values) in zip(axes, ood_bits_per_dim.items()):
    values = _finite(values)
    both = np.concatenate([in_values, values])
    low, high = np.percentile(both, [0.5, 99.5]) if both.size else (0., 1.)
    edges = np.linspace(low, max(high, low + 1e-3), bins + 1)
    ax.hist(in_values, bins=edges, density=True, alpha=0.5, color=_IN_COLOR, label=in_name)
    ax.hist(values, bins=edges, density=True, alpha=0.5, color=_OOD_COLOR, label=name)
    ax.set_xlabel('bits/dim')
    ax.set_ylabel('density')
    ax.set_title(f'{name} vs {in_name}', fontsize=10)
    ax.legend(fontsize=8)
  fig.tight_layout()
  return _save(fig, path)


def roc_curves(in_scores, ood_scores, path=None, title_prefix=''):
  """One panel per method: the ROC curve of every OOD set, AUROC in the legend.

  Args:
    in_scores: `dict` from method name to the 1-D anomaly scores of the
      in-distribution inputs.
    ood_scores: `dict` from method name to a `dict` from OOD set name to its 1-D
      anomaly scores (OOD is the positive class).
    path: optional PNG path.
    title_prefix: text put before each panel's method name.

  Returns:
    The `matplotlib.figure.Figure`.
  """
  if not ood_scores:
    raise ValueError('ood_scores is empty: there is no method to draw.')
  fig, axes = _grid(len(ood_scores), panel_size=(4., 4.))
  for ax, (method, by_set) in zip(axes, ood_scores.items()):
    for name, scores in by_set.items():
      fpr, tpr, _ = metrics.roc_curve(in_scores[method], scores)
      area = metrics.auroc(in_scores[method], scores)
      ax.plot(fpr, tpr, label=f'{name} ({area:.3f})')
    ax.plot([0, 1], [0, 1], color='grey', linestyle=':', linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel('false-positive rate (in-distribution)')
    ax.set_ylabel('true-positive rate (OOD)')
    ax.set_title(f'{title_prefix}{method}', fontsize=10)
    ax.legend(fontsize=8, loc='lower right', title='set (AUROC)', title_fontsize=8)
  fig.tight_layout()
  return _save(fig, path)
