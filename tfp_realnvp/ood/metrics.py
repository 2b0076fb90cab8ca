"""Detection metrics for two sets of anomaly scores: AUROC, AUPR and FPR at 95% TPR.

Convention of the whole `tfp_realnvp.ood` package: the **positive** class is
**out-of-distribution** (OOD), the negative class is in-distribution, and a score
is an anomaly score, **larger meaning more likely OOD**. A detector flags `x` as
OOD when `score(x) >= threshold`; sweeping the threshold over every distinct
score traces the ROC curve

```none
TPR(t) = #{ood scores >= t} / n_ood,      FPR(t) = #{in scores >= t} / n_in.
```

- AUROC, the area under that curve, is the probability that a random OOD input
  scores higher than a random in-distribution one, ties counting 1/2 (the
  Mann-Whitney U statistic over `n_in * n_ood`): 1 separates perfectly, 0.5 is
  chance, 0 ranks every OOD input below every in-distribution one.
- AUPR is the average precision with OOD positive,
  `sum_k (R_k - R_{k-1}) P_k` over the distinct thresholds in decreasing order
  (R recall, P precision), the step-wise area that scikit-learn's
  `average_precision_score` computes. Its chance level is the fraction of OOD
  inputs, `n_ood / (n_in + n_ood)`.
- FPR95 is the smallest false-positive rate of a threshold that flags at least
  95% of the OOD inputs, `min {FPR(t) : TPR(t) >= 0.95}`: lower is better.

The functions are numpy only (no scikit-learn), and agree with scikit-learn's
`roc_auc_score`, `average_precision_score` and `roc_curve` (tested).

#### References

[1]: Tom Fawcett. An introduction to ROC analysis. _Pattern Recognition
     Letters_, 27(8), 2006. https://doi.org/10.1016/j.patrec.2005.10.010
[2]: Dan Hendrycks, Kevin Gimpel. A Baseline for Detecting Misclassified and
     Out-of-Distribution Examples in Neural Networks. In _ICLR_, 2017.
     https://arxiv.org/abs/1610.02136 (AUROC and AUPR for OOD detection).
"""

import numpy as np

__all__ = ['roc_curve', 'auroc', 'aupr', 'fpr_at_tpr', 'detection_metrics']


def _check_scores(in_scores, ood_scores):
  arrays = []
  for name, scores in (('in_scores', in_scores), ('ood_scores', ood_scores)):
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
      raise ValueError(f'{name} must be a 1-D array of scores; got shape {scores.shape}.')
    if scores.size == 0:
      raise ValueError(f'{name} is empty; each set needs at least one score.')
    if np.isnan(scores).any():
      raise ValueError(f'{name} holds {int(np.isnan(scores).sum())} NaN score(s); '
                       'metrics need comparable scores (infinities are allowed).')
    arrays.append(scores)
  return arrays


def _counts_by_threshold(in_scores, ood_scores):
  """Cumulative (true, false) positive counts at each distinct score, decreasing."""
  scores = np.concatenate([ood_scores, in_scores])
  is_ood = np.concatenate([np.ones(len(ood_scores)), np.zeros(len(in_scores))])
  order = np.argsort(-scores, kind='stable')
  scores, is_ood = scores[order], is_ood[order]
  # The last index of each run of equal scores: one threshold per distinct score.
  last = np.append(np.nonzero(np.diff(scores))[0], len(scores) - 1)
  true_positives = np.cumsum(is_ood)[last]
  false_positives = (last + 1) - true_positives
  return scores[last], true_positives, false_positives


def roc_curve(in_scores, ood_scores):
  """The ROC curve of OOD (positive) against in-distribution scores.

  Args:
    in_scores: 1-D array of anomaly scores of in-distribution inputs.
    ood_scores: 1-D array of anomaly scores of OOD inputs (the positives).

  Returns:
    `(fpr, tpr, thresholds)`, 1-D float64 arrays: one point per distinct score in
    decreasing order (flag `score >= threshold`), preceded by the point (0, 0) at
    threshold `+inf`. Every point is kept (scikit-learn's
    `roc_curve(..., drop_intermediate=False)`).

  Raises:
    ValueError: if a set is empty, not 1-D or holds NaN.
  """
  in_scores, ood_scores = _check_scores(in_scores, ood_scores)
  thresholds, tps, fps = _counts_by_threshold(in_scores, ood_scores)
  tpr = np.concatenate([[0.], tps / len(ood_scores)])
  fpr = np.concatenate([[0.], fps / len(in_scores)])
  return fpr, tpr, np.concatenate([[np.inf], thresholds])


def auroc(in_scores, ood_scores):
  """Area under the ROC curve: `P(ood score > in score) + P(equal) / 2`.

  Computed from average ranks (the Mann-Whitney U statistic), exact with ties.

  Args:
    in_scores: 1-D array of anomaly scores of in-distribution inputs.
    ood_scores: 1-D array of anomaly scores of OOD inputs (the positives).

  Returns:
    A Python `float` in [0, 1].

  Raises:
    ValueError: if a set is empty, not 1-D or holds NaN.
  """
  in_scores, ood_scores = _check_scores(in_scores, ood_scores)
  scores = np.concatenate([ood_scores, in_scores])
  _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
  # 1-based rank of each distinct value, averaged over its ties.
  average_rank = np.cumsum(counts) - (counts - 1) / 2.
  ood_rank_sum = average_rank[inverse[:len(ood_scores)]].sum()
  n_ood, n_in = len(ood_scores), len(in_scores)
  return float((ood_rank_sum - n_ood * (n_ood + 1) / 2.) / (n_ood * n_in))


def aupr(in_scores, ood_scores):
  """Average precision with OOD as the positive class (area under the PR curve).

  `AP = sum_k (R_k - R_{k-1}) P_k` over the distinct thresholds in decreasing
  order, with `R_0 = 0`: scikit-learn's `average_precision_score`.

  Args:
    in_scores: 1-D array of anomaly scores of in-distribution inputs.
    ood_scores: 1-D array of anomaly scores of OOD inputs (the positives).

  Returns:
    A Python `float` in [0, 1].

  Raises:
    ValueError: if a set is empty, not 1-D or holds NaN.
  """
  in_scores, ood_scores = _check_scores(in_scores, ood_scores)
  _, tps, fps = _counts_by_threshold(in_scores, ood_scores)
  precision = tps / (tps + fps)
  recall = tps / len(ood_scores)
  return float(np.sum(np.diff(recall, prepend=0.) * precision))


def fpr_at_tpr(in_scores, ood_scores, tpr=0.95):
  """The smallest false-positive rate at which at least `tpr` of OOD is flagged.

  `min {FPR(t) : TPR(t) >= tpr}` over the thresholds of `roc_curve`.

  Args:
    in_scores: 1-D array of anomaly scores of in-distribution inputs.
    ood_scores: 1-D array of anomaly scores of OOD inputs (the positives).
    tpr: the true-positive rate to reach, in (0, 1].

  Returns:
    A Python `float` in [0, 1].

  Raises:
    ValueError: if `tpr` is not in (0, 1], or a set is empty, not 1-D or holds NaN.
  """
  if not 0. < tpr <= 1.:
    raise ValueError(f'tpr must be in (0, 1]; got {tpr}.')
  fpr_values, tpr_values, _ = roc_curve(in_scores, ood_scores)
  # tpr_values is non-decreasing and ends at 1; so is fpr_values.
  index = np.searchsorted(tpr_values, tpr - 1e-12, side='left')
  return float(fpr_values[index])


def detection_metrics(in_scores, ood_scores):
  """`{'auroc', 'aupr', 'fpr95'}` of OOD (positive) against in-distribution scores.

  Args:
    in_scores: 1-D array of anomaly scores of in-distribution inputs.
    ood_scores: 1-D array of anomaly scores of OOD inputs (the positives).

  Returns:
    A `dict` of Python `float`s: `auroc`, `aupr` (OOD positive) and `fpr95`
    (`fpr_at_tpr(..., 0.95)`).

  #### Examples

  ```python
  from tfp_realnvp.ood import metrics
  metrics.detection_metrics(in_scores=[0., 1., 2.], ood_scores=[1.5, 3.])
  # {'auroc': 0.8333..., 'aupr': 0.8333..., 'fpr95': 0.3333...}
  ```
  """
  return dict(auroc=auroc(in_scores, ood_scores), aupr=aupr(in_scores, ood_scores),
              fpr95=fpr_at_tpr(in_scores, ood_scores, 0.95))
