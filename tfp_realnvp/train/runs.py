"""The files of a training run: its config, metrics, and how to rebuild its flow.

A run folder (`examples/train_mnist.py --output-dir RUN`) holds

```none
RUN/config.json          dataset, architecture and training settings
RUN/checkpoints/         tf.train.CheckpointManager checkpoints
RUN/metrics.json         train/test bits/dim per epoch, images per second
RUN/samples/epoch_NNN.png, RUN/bits_per_dim.png, RUN/tensorboard/
RUN/saved_model/         the SavedModel export (log_prob, bits_per_dim, sample)
```
"""

import json
import os

from tfp_realnvp.data import load_images
from tfp_realnvp.train.trainer import make_flow

__all__ = ['ARCHITECTURE_KEYS', 'EVAL_SEED', 'write_json', 'read_json',
           'flow_fn_from_config', 'load_dataset']

# Settings a resumed run must share with the run it continues.
ARCHITECTURE_KEYS = ('dataset', 'image_shape', 'num_levels', 'num_scales',
                     'hidden_channels', 'num_res_blocks', 'batch_size')
# Dequantization seed of every test-set evaluation, so that epochs compare.
EVAL_SEED = 1234
FALLBACK_DATASET = 'digits'


def write_json(path, value):
  """Writes JSON atomically (a temporary file, then a rename)."""
  tmp = f'{path}.tmp'
  with open(tmp, 'w') as f:
    json.dump(value, f, indent=2, sort_keys=True)
    f.write('\n')
  os.replace(tmp, path)


def read_json(path, default=None):
  if not os.path.exists(path):
    return default
  with open(path) as f:
    return json.load(f)


def flow_fn_from_config(config, mixed_precision=None):
  """A zero-argument function building the run's flow from `config.json`."""
  shape = tuple(config['image_shape'])
  if mixed_precision is None:
    mixed_precision = config.get('mixed_precision')

  def flow_fn():
    return make_flow(shape, num_scales=config['num_scales'],
                     hidden_channels=config['hidden_channels'],
                     num_res_blocks=config['num_res_blocks'],
                     mixed_precision=mixed_precision)
  return flow_fn


def load_dataset(name, data_dir=None, image_size=None, max_examples=None,
                 fallback=True, log=print):
  """`load_images`, falling back to scikit-learn's digits when it fails.

  With `fallback`, a dataset that cannot be loaded (no local files, no
  network for tensorflow-datasets) is replaced by `'digits'` and `log` says
  so. Returns the `ImageData`.
  """
  try:
    return load_images(name, data_dir=data_dir, image_size=image_size,
                       max_examples=max_examples)
  except (RuntimeError, FileNotFoundError, ImportError, OSError) as err:
    if not fallback or name == FALLBACK_DATASET:
      raise
    first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
    log(f'could not load {name} ({first_line}); falling back to '
        f"scikit-learn's digits (8x8, 17 levels). For Fashion-MNIST: "
        f'apt-get install -y dataset-fashion-mnist')
    return load_images(FALLBACK_DATASET, max_examples=max_examples)
