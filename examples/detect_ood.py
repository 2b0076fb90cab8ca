"""Score out-of-distribution sets against a trained Real NVP run (see `--help`).

```
python examples/train_mnist.py --output-dir runs/fm --time-limit 4 --epochs 1 \\
    --steps-per-epoch 20000
python examples/detect_ood.py runs/fm --output-dir runs/fm/ood
```

Writes `ood.json`, `ood.md`, `bits_per_dim_histograms.png` and `roc_curves.png`;
the job itself is `tfp_realnvp.cli.detect_ood`.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from tfp_realnvp.cli.detect_ood import main  # pylint: disable=g-import-not-at-top

if __name__ == '__main__':
  sys.exit(main())
