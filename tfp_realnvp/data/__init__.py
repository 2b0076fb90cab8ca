"""Datasets for Real NVP: integer images with labels, dequantizing pipelines, and 2-D toys.

Modules: `sources` (`load_images`: tensorflow-datasets names, Debian's Fashion-MNIST,
scikit-learn's digits, `.npz` files), `idx` (MNIST's IDX files), `image_folder` (folders of
PNG/JPEG files, class subfolders as labels), `image_data` (`ImageData`), `resize`,
`dequantization`, `pipeline` (`image_pipeline`) and `toy` (2-D densities).

```python
from tfp_realnvp import data
images = data.load_images('fashion_mnist')   # offline from Debian's package
train = data.image_pipeline(images.train, images.num_levels, batch_size=64, seed=1)
labelled = data.image_pipeline(images.train, images.num_levels, batch_size=64, seed=1,
                               labels=images.train_labels)   # (images, labels) batches
points = data.make_toy_2d('moons', 10_000, seed=0)
```
"""

from tfp_realnvp.data.dequantization import dequantize
from tfp_realnvp.data.dequantization import dequantize_tf
from tfp_realnvp.data.idx import read_idx
from tfp_realnvp.data.image_data import ImageData
from tfp_realnvp.data.pipeline import image_pipeline
from tfp_realnvp.data.resize import resize_images
from tfp_realnvp.data.sources import IMAGE_DATASET_NAMES
from tfp_realnvp.data.sources import load_images
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
