"""Keras networks that compute the shift and log-scale of coupling layers.

The package's layers (`WeightNormConv2D`, `ResidualBlock` and the ResNets' fused batch
norm) are registered with `keras.saving.register_keras_serializable` under the package
name `tfp_realnvp`, so a network saves as a `.keras` file and loads back once
`tfp_realnvp` is imported:

```python
import keras
from tfp_realnvp import nets
net = nets.resnet_shift_and_log_scale((14, 14, 4), 2, hidden_channels=32, num_res_blocks=2)
net.save('st_net.keras')
same = keras.models.load_model('st_net.keras')
```
"""

from tfp_realnvp.nets.mlp import mlp_shift_and_log_scale
from tfp_realnvp.nets.resnet import ResidualBlock
from tfp_realnvp.nets.resnet import resnet_shift_and_log_scale
from tfp_realnvp.nets.weight_norm import WeightNormConv2D

__all__ = ['mlp_shift_and_log_scale', 'resnet_shift_and_log_scale',
           'ResidualBlock', 'WeightNormConv2D']
