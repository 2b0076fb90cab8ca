"""Score a trained Real NVP on the test set and sample it at chosen temperatures.

The same program as the console script `tfp-realnvp-evaluate`; its flags and outputs are
described in `tfp_realnvp/cli/evaluate.py` and by `--help`.

```
python examples/evaluate.py runs/train_mnist --temperatures 0.5 0.7 1.0
python examples/evaluate.py runs/train_mnist --saved-model
```
"""

import os
import sys

os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from tfp_realnvp.cli.evaluate import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
