"""TensorBoard scalars and images without the `tensorboard` package.

`tf.summary.scalar` and `tf.summary.image` live in the `tensorboard` wheel,
which TensorFlow 2.21 no longer installs. These write the same records (the
TensorBoard scalar and image plugins' formats) with TensorFlow's core
`tf.summary.write`, so `tensorboard --logdir RUN/tensorboard` shows them.
"""

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

__all__ = ['SummaryWriter']


def _metadata(plugin_name, data_class):
  return summary_pb2.SummaryMetadata(
      plugin_data=summary_pb2.SummaryMetadata.PluginData(
          plugin_name=plugin_name),
      data_class=data_class).SerializeToString()


_SCALAR = _metadata('scalars', summary_pb2.DATA_CLASS_SCALAR)
_IMAGE = _metadata('images', summary_pb2.DATA_CLASS_BLOB_SEQUENCE)


class SummaryWriter:
  """Writes scalars and images to a TensorBoard event file in `logdir`."""

  def __init__(self, logdir):
    self.logdir = logdir
    self._writer = tf.summary.create_file_writer(logdir)

  def scalar(self, name, value, step):
    with self._writer.as_default():
      tf.summary.write(name, tf.constant(float(value), tf.float32), step=step,
                       metadata=_SCALAR)

  def image(self, name, image, step):
    """`image`: (H, W) or (H, W, C) with values in [0, 1], C = 1 or 3."""
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
      image = image[..., None]
    pixels = tf.constant(np.round(np.clip(image, 0., 1.) * 255.)
                         .astype(np.uint8))
    png = tf.io.encode_png(pixels)
    height, width = image.shape[:2]
    blobs = tf.stack([tf.constant(str(width)), tf.constant(str(height)), png])
    with self._writer.as_default():
      tf.summary.write(name, blobs, step=step, metadata=_IMAGE)

  def flush(self):
    self._writer.flush()

  def close(self):
    self._writer.close()
