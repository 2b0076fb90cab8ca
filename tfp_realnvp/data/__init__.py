"""Datasets for Real NVP: integer images with dequantizing pipelines, and 2-D toys.

```python
from tfp_realnvp import data
images = data.load_images('fashion_mnist')   # offline from Debian's package
train = data.image_pipeline(images.train, images.num_levels, batch_size=64, seed=1)
points = data.make_toy_2d('moons', 10_000, seed=0)
```
"""

from tfp_realnvp.data.images import IMAGE_DATASET_NAMES
from tfp_realnvp.data.images import ImageData
from tfp_realnvp.data.images import dequantize
from tfp_realnvp.data.images import dequantize_tf
from tfp_realnvp.data.images import image_pipeline
from tfp_realnvp.data.images import load_images
from tfp_realnvp.data.images import read_idx
from tfp_realnvp.data.images import resize_images
from tfp_realnvp.data.toy import TOY_2D_NAMES
from tfp_realnvp.data.toy import make_toy_2d
from tfp_realnvp.data.toy import toy_pipeline

__all__ = [
    'IMAGE_DATASET_NAMES',
    'ImageData',
    'TOY_2D_NAMES',
    'dequantize',
    'dequantize_tf',
    'image_pipeline',
    'load_images',
    'make_toy_2d',
    'read_idx',
    'resize_images',
    'toy_pipeline',
]
