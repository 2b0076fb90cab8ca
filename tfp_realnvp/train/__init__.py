"""Training Real NVP flows: a `tf.distribute` loop, a Keras model, checkpoints, export.

```python
from tfp_realnvp import data, train
images = data.load_images('fashion_mnist')
config = train.TrainConfig(global_batch_size=64, learning_rate=1e-3)
trainer = train.Trainer(
    lambda: train.make_flow(images.image_shape, hidden_channels=32,
                            num_res_blocks=4),
    images.image_shape, config, num_levels=images.num_levels,
    checkpoint_dir='run/checkpoints')
trainer.fit(lambda: data.image_pipeline(images.train, images.num_levels, 64),
            epochs=3, steps_per_epoch=500)
trainer.export('run/saved_model')
```
"""

from tfp_realnvp.train.export import FlowExport
from tfp_realnvp.train.export import export_saved_model
from tfp_realnvp.train.keras_model import CheckpointCallback
from tfp_realnvp.train.keras_model import FlowModel
from tfp_realnvp.train.schedule import WarmupDecay
from tfp_realnvp.train.strategy import describe_strategy
from tfp_realnvp.train.strategy import is_chief
from tfp_realnvp.train.strategy import pick_strategy
from tfp_realnvp.train.strategy import single_device_strategy
from tfp_realnvp.train.trainer import NETWORK_DTYPES
from tfp_realnvp.train.trainer import StepResult
from tfp_realnvp.train.trainer import TrainConfig
from tfp_realnvp.train.trainer import Trainer
from tfp_realnvp.train.trainer import make_distribution
from tfp_realnvp.train.trainer import make_flow
from tfp_realnvp.train.trainer import maximum_likelihood_step

__all__ = [
    'CheckpointCallback',
    'FlowExport',
    'FlowModel',
    'NETWORK_DTYPES',
    'StepResult',
    'TrainConfig',
    'Trainer',
    'WarmupDecay',
    'describe_strategy',
    'export_saved_model',
    'is_chief',
    'make_distribution',
    'make_flow',
    'maximum_likelihood_step',
    'pick_strategy',
    'single_device_strategy',
]
