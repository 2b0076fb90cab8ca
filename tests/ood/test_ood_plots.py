"""The OOD figures: one panel per set or method, saved as PNG."""

import numpy as np
import pytest

from tfp_realnvp.ood import plots

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def test_histograms_and_roc_curves(tmp_path):
  rng = np.random.default_rng(0)
  in_bpd = rng.normal(4., 0.5, 200)
  ood_bpd = {'noise': rng.normal(10., 0.2, 100), 'digits': rng.normal(4.5, 0.3, 100)}
  path = tmp_path / 'hist.png'
  fig = plots.bits_per_dim_histograms(in_bpd, ood_bpd, in_name='test', path=path)
  visible = [ax for ax in fig.axes if ax.get_visible()]
  assert [ax.get_title() for ax in visible] == ['noise vs test', 'digits vs test']
  assert path.read_bytes()[:8] == PNG_MAGIC

  in_scores = {'bits_per_dim': in_bpd, 'typicality': np.abs(in_bpd - 4.)}
  ood_scores = {'bits_per_dim': ood_bpd,
                'typicality': {k: np.abs(v - 4.) for k, v in ood_bpd.items()}}
  fig = plots.roc_curves(in_scores, ood_scores, path=tmp_path / 'roc.png')
  visible = [ax for ax in fig.axes if ax.get_visible()]
  assert [ax.get_title() for ax in visible] == ['bits_per_dim', 'typicality']
  labels = [line.get_label() for line in visible[0].get_lines()]
  assert labels[0] == 'noise (1.000)' and labels[1].startswith('digits (')
  assert (tmp_path / 'roc.png').read_bytes()[:8] == PNG_MAGIC
  with pytest.raises(ValueError, match='no OOD set'):
    plots.bits_per_dim_histograms(in_bpd, {})
