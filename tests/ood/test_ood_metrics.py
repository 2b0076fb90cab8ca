"""AUROC, AUPR and FPR at 95% TPR against scikit-learn's, and on cases with known answers."""

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from tfp_realnvp.ood import metrics


def _labelled(in_scores, ood_scores):
  """scikit-learn's layout: OOD is the positive class (label 1)."""
  labels = np.concatenate([np.zeros(len(in_scores)), np.ones(len(ood_scores))])
  return labels, np.concatenate([in_scores, ood_scores])


def _sklearn_fpr95(in_scores, ood_scores):
  fpr, tpr, _ = sk_metrics.roc_curve(*_labelled(in_scores, ood_scores),
                                     drop_intermediate=False)
  return fpr[np.argmax(tpr >= 0.95)]


def _score_sets():
  rng = np.random.default_rng(7)
  yield 'continuous', rng.normal(0., 1., 300), rng.normal(1., 1.5, 200)
  # Few distinct values: many ties within and across the sets.
  yield 'ties', rng.integers(0, 6, 400).astype(float), rng.integers(2, 8, 150).astype(float)
  yield 'unbalanced', rng.normal(0., 1., 1000), rng.normal(0.3, 1., 17)
  yield 'reversed', rng.normal(2., 1., 100), rng.normal(0., 1., 100)
  yield 'single', np.array([0.5]), np.array([0.2, 0.5, 0.9])


@pytest.mark.parametrize('name,in_scores,ood_scores', list(_score_sets()),
                         ids=[s[0] for s in _score_sets()])
def test_metrics_match_sklearn(name, in_scores, ood_scores):
  del name
  labels, scores = _labelled(in_scores, ood_scores)
  np.testing.assert_allclose(metrics.auroc(in_scores, ood_scores),
                             sk_metrics.roc_auc_score(labels, scores), rtol=0, atol=1e-12)
  np.testing.assert_allclose(metrics.aupr(in_scores, ood_scores),
                             sk_metrics.average_precision_score(labels, scores),
                             rtol=0, atol=1e-12)
  np.testing.assert_allclose(metrics.fpr_at_tpr(in_scores, ood_scores, 0.95),
                             _sklearn_fpr95(in_scores, ood_scores), rtol=0, atol=1e-12)
  fpr, tpr, thresholds = metrics.roc_curve(in_scores, ood_scores)
  sk_fpr, sk_tpr, sk_thresholds = sk_metrics.roc_curve(labels, scores,
                                                       drop_intermediate=False)
  np.testing.assert_allclose(fpr, sk_fpr, atol=1e-12)
  np.testing.assert_allclose(tpr, sk_tpr, atol=1e-12)
  np.testing.assert_array_equal(thresholds[1:], sk_thresholds[1:])
  assert thresholds[0] == np.inf


def test_known_values():
  # Pairs (ood > in): 1.5 beats 0 and 1, 3 beats all: 5 of 6.
  result = metrics.detection_metrics(in_scores=[0., 1., 2.], ood_scores=[1.5, 3.])
  assert result['auroc'] == pytest.approx(5 / 6)
  # Thresholds 3 (P=1, R=1/2), 2 (P=1/2, R=1/2), 1.5 (P=2/3, R=1).
  assert result['aupr'] == pytest.approx(0.5 * 1. + 0.5 * 2 / 3)
  # Flagging both OOD inputs needs threshold 1.5, which flags one of three in.
  assert result['fpr95'] == pytest.approx(1 / 3)


def test_perfect_reversed_and_constant_scores():
  in_scores, ood_scores = np.arange(10.), np.arange(10., 20.)
  assert metrics.detection_metrics(in_scores, ood_scores) == dict(auroc=1., aupr=1.,
                                                                   fpr95=0.)
  reversed_ = metrics.detection_metrics(ood_scores, in_scores)
  assert reversed_['auroc'] == 0. and reversed_['fpr95'] == 1.
  assert reversed_['aupr'] == pytest.approx(np.mean(np.arange(1, 11) / np.arange(11, 21)))
  tied = metrics.detection_metrics(np.zeros(30), np.zeros(10))
  assert tied['auroc'] == 0.5
  assert tied['aupr'] == pytest.approx(10 / 40)     # the fraction of OOD inputs
  assert tied['fpr95'] == 1.


def test_infinite_scores_rank_last_or_first():
  result = metrics.detection_metrics([0., 1., -np.inf], [np.inf, 2., 0.5])
  assert result['auroc'] == pytest.approx(8 / 9)


def test_fpr_at_other_tpr():
  in_scores = np.arange(100.)
  ood_scores = np.arange(50., 150.)
  # TPR 0.5 is reached at threshold 100 (no in-distribution score that high).
  assert metrics.fpr_at_tpr(in_scores, ood_scores, 0.5) == 0.
  # TPR 1 needs threshold 50, which flags in-distribution scores 50..99.
  assert metrics.fpr_at_tpr(in_scores, ood_scores, 1.) == 0.5


@pytest.mark.parametrize('in_scores,ood_scores,match', [
    ([], [1.], 'in_scores is empty'),
    ([1.], [], 'ood_scores is empty'),
    ([[1.]], [1.], 'in_scores must be a 1-D'),
    ([1., np.nan], [1.], 'NaN'),
])
def test_bad_scores(in_scores, ood_scores, match):
  with pytest.raises(ValueError, match=match):
    metrics.detection_metrics(in_scores, ood_scores)


def test_bad_tpr():
  with pytest.raises(ValueError, match='tpr must be in'):
    metrics.fpr_at_tpr([0.], [1.], 0.)
