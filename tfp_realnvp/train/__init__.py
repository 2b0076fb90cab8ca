"""Training Real NVP flows: the paper's recipe, a `tf.distribute` loop, a Keras model,
guarded checkpoints, run folders and the SavedModel export.

```python
from tfp_realnvp import data, train
images = data.load_images('fashion_mnist')
config = train.TrainConfig(global_batch_size=64, learning_rate=1e-3)
trainer = train.Trainer(
    lambda: train.make_flow(images.image_shape, hidden_channels=32, num_res_blocks=4),
    images.image_shape, config, num_levels=images.num_levels,
    checkpoint_dir='run/checkpoints')
trainer.fit(lambda: data.image_pipeline(images.train, images.num_levels, 64),
            epochs=3, steps_per_epoch=500)
trainer.export('run/saved_model')
```

The modules, one idea each:

- `recipe`: the paper's constants, the loss, `make_flow`, `maximum_likelihood_step`;
- `config`: `TrainConfig`; `schedule`: the learning rate; `strategy`: which
  `tf.distribute` strategy and who writes;
- `trainer`: `Trainer`; `keras_model`: `FlowModel` and `CheckpointCallback`;
- `checkpoints`: save, restore the newest that loads, the kept good/best checkpoints;
- `health`: when a run has diverged; `progress`: progress output;
- `export`: the SavedModel; `runs`: a run folder's files and `load_run`;
  `run_lock`: one process per run folder.
"""

from tfp_realnvp.train.checkpoints import CheckpointLoadError
from tfp_realnvp.train.checkpoints import CheckpointStore
from tfp_realnvp.train.checkpoints import NoLoadableCheckpointError
from tfp_realnvp.train.config import TrainConfig
from tfp_realnvp.train.export import FlowExport
from tfp_realnvp.train.export import UnhealthyExportError
from tfp_realnvp.train.export import export_saved_model
from tfp_realnvp.train.health import RunDivergedError
from tfp_realnvp.train.health import RunUnhealthyError
from tfp_realnvp.train.keras_model import CheckpointCallback
from tfp_realnvp.train.keras_model import FlowModel
from tfp_realnvp.train.recipe import BATCH_SIZE
from tfp_realnvp.train.recipe import CLIP_NORM
from tfp_realnvp.train.recipe import L2_SCALE
from tfp_realnvp.train.recipe import LEARNING_RATE
from tfp_realnvp.train.recipe import NETWORK_DTYPES
from tfp_realnvp.train.recipe import l2_penalty
from tfp_realnvp.train.recipe import make_distribution
from tfp_realnvp.train.recipe import make_flow
from tfp_realnvp.train.recipe import maximum_likelihood_loss
from tfp_realnvp.train.recipe import maximum_likelihood_step
from tfp_realnvp.train.run_lock import RunLock
from tfp_realnvp.train.run_lock import RunLockedError
from tfp_realnvp.train.runs import LoadedRun
from tfp_realnvp.train.runs import load_run
from tfp_realnvp.train.schedule import WarmupDecay
from tfp_realnvp.train.strategy import describe_strategy
from tfp_realnvp.train.strategy import is_chief
from tfp_realnvp.train.strategy import pick_strategy
from tfp_realnvp.train.strategy import single_device_strategy
from tfp_realnvp.train.trainer import StepResult
from tfp_realnvp.train.trainer import Trainer

__all__ = [
    'BATCH_SIZE',
    'CLIP_NORM',
    'CheckpointCallback',
    'CheckpointLoadError',
    'CheckpointStore',
    'FlowExport',
    'FlowModel',
    'L2_SCALE',
    'LEARNING_RATE',
    'LoadedRun',
    'NETWORK_DTYPES',
    'NoLoadableCheckpointError',
    'RunDivergedError',
    'RunLock',
    'RunLockedError',
    'RunUnhealthyError',
    'StepResult',
    'TrainConfig',
    'Trainer',
    'UnhealthyExportError',
    'WarmupDecay',
    'describe_strategy',
    'export_saved_model',
    'is_chief',
    'l2_penalty',
    'load_run',
    'make_distribution',
    'make_flow',
    'maximum_likelihood_loss',
    'maximum_likelihood_step',
    'pick_strategy',
    'single_device_strategy',
]
