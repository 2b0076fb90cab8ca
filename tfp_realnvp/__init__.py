"""tfp_realnvp: Real NVP normalizing flows as TensorFlow Probability bijectors.

```python
import tensorflow_probability as tfp
from tfp_realnvp import RealNVPChain, bits_per_dim
tfd = tfp.distributions
flow = RealNVPChain(event_shape=(28, 28, 1), num_scales=2)
dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), (28, 28, 1)),
                                   flow)
```
"""

import os as _os

_os.environ.setdefault('KERAS_BACKEND', 'tensorflow')

from tfp_realnvp import bijectors  # pylint: disable=g-import-not-at-top
from tfp_realnvp import nets
from tfp_realnvp.batch_norm_statistics import recompute_batch_norm_statistics
from tfp_realnvp.bits import bits_per_dim
from tfp_realnvp.chain import RealNVPChain

__all__ = ['RealNVPChain', 'bits_per_dim', 'bijectors', 'nets',
           'recompute_batch_norm_statistics']
__version__ = '0.1.0'
