"""Out-of-distribution (OOD) and anomaly scores for trained flows, and their metrics.

A flow gives every input its exact log-likelihood `log p(x)`, but raw likelihood
is a poor OOD detector: a model of Fashion-MNIST gives MNIST digits, constant
images or smooth strokes *higher* likelihood than its own test images
(Nalisnick et al., https://arxiv.org/abs/1810.09136). The scores here start from
`log p(x)` and correct it. Each is an anomaly score, **larger meaning more
likely OOD**; the metrics take **OOD as the positive class**.

- `bits_per_dim` (module `likelihood`): `(-log p(x) / D + log L) / log 2`, the
  raw likelihood;
- `typicality` (module `typicality`): `|log p(x) - mean training log p|`
  (Nalisnick et al. 2019), and the batch test;
- `complexity` (module `complexity`): `bpd(x) - L(x) / D`, with `L` the length
  of a lossless code of `x` (JPEG 2000 or PNG; Serra et al. 2020);
- `likelihood_ratio` (module `likelihood_ratio`): `log p_0(x) - log p(x)`, with
  `p_0` a flow trained on perturbed inputs (Ren et al. 2019).

`metrics` computes AUROC, AUPR and the FPR at 95% TPR of any two sets of scores;
`datasets` builds the OOD image sets (`digits`, `noise`, `constant`, `vflip`,
`mnist`, `kmnist`, local files); `plots` draws histograms and ROC curves. The
command-line job is `python examples/detect_ood.py RUN_DIR --output-dir OUT`
(`tfp_realnvp.cli.detect_ood`).

#### Examples

```python
from tfp_realnvp import ood
log_prob = ood.saved_model_log_prob('run/saved_model')      # any exported flow
in_lp = ood.image_log_probs(log_prob, test_images, num_levels=256)
ood_lp = ood.image_log_probs(log_prob, digit_images, num_levels=256)
train_lp = ood.image_log_probs(log_prob, train_images[:2000], num_levels=256)
ood.detection_metrics(ood.typicality_scores(in_lp, train_lp),
                      ood.typicality_scores(ood_lp, train_lp))
# {'auroc': ..., 'aupr': ..., 'fpr95': ...}
```

#### References

[1]: Eric Nalisnick, Akihiro Matsukawa, Yee Whye Teh, Balaji Lakshminarayanan.
     Detecting Out-of-Distribution Inputs to Deep Generative Models Using
     Typicality. arXiv, 2019. https://arxiv.org/abs/1906.02994
[2]: Joan Serra, David Alvarez, Vicenc Gomez, Olga Slizovskaia, Jose F. Nunez,
     Jordi Luque. Input Complexity and Out-of-distribution Detection with
     Likelihood-based Generative Models. In _ICLR_, 2020.
     https://arxiv.org/abs/1909.11480
[3]: Jie Ren, Peter J. Liu, Emily Fertig, Jasper Snoek, Ryan Poplin, Mark A.
     DePristo, Joshua V. Dillon, Balaji Lakshminarayanan. Likelihood Ratios for
     Out-of-Distribution Detection. In _NeurIPS_, 2019.
     https://arxiv.org/abs/1906.02845
"""

from tfp_realnvp.ood import datasets
from tfp_realnvp.ood import metrics
from tfp_realnvp.ood import plots
from tfp_realnvp.ood.complexity import complexity_scores
from tfp_realnvp.ood.complexity import compressed_bits_per_dim
from tfp_realnvp.ood.complexity import png_bits_per_dim
from tfp_realnvp.ood.likelihood import bits_per_dim_scores
from tfp_realnvp.ood.likelihood import image_log_probs
from tfp_realnvp.ood.likelihood import saved_model_log_prob
from tfp_realnvp.ood.likelihood_ratio import likelihood_ratio_scores
from tfp_realnvp.ood.likelihood_ratio import perturb_images
from tfp_realnvp.ood.likelihood_ratio import train_background_flow
from tfp_realnvp.ood.metrics import aupr
from tfp_realnvp.ood.metrics import auroc
from tfp_realnvp.ood.metrics import detection_metrics
from tfp_realnvp.ood.metrics import fpr_at_tpr
from tfp_realnvp.ood.metrics import roc_curve
from tfp_realnvp.ood.typicality import TypicalityTest
from tfp_realnvp.ood.typicality import typicality_scores

METHODS = ('bits_per_dim', 'typicality', 'complexity', 'likelihood_ratio')

__all__ = [
    'METHODS',
    'TypicalityTest',
    'aupr',
    'auroc',
    'bits_per_dim_scores',
    'complexity_scores',
    'compressed_bits_per_dim',
    'datasets',
    'detection_metrics',
    'fpr_at_tpr',
    'image_log_probs',
    'likelihood_ratio_scores',
    'metrics',
    'perturb_images',
    'plots',
    'png_bits_per_dim',
    'roc_curve',
    'saved_model_log_prob',
    'train_background_flow',
    'typicality_scores',
]
