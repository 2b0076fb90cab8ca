"""Train a multi-scale Real NVP on images (Fashion-MNIST by default, offline).

The same program as the console script `tfp-realnvp-train`; its flags and outputs are
described in `tfp_realnvp/cli/train.py` and by `--help`.

```
python examples/train_mnist.py --output-dir runs/train_mnist
python examples/train_mnist.py --output-dir runs/train_mnist --resume --epochs 6
```
"""

import os
import sys

os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from tfp_realnvp.cli.train import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
