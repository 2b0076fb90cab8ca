"""Helpers of the data tests: IDX files and image files written on the fly."""

import gzip
import struct

import numpy as np
import tensorflow as tf


def write_idx(path, array, compress=False):
  """Writes `array` (uint8 or big-endian int32) as an IDX file; returns `path`."""
  type_code = {np.dtype(np.uint8): 0x08, np.dtype('>i4'): 0x0C}[array.dtype]
  header = struct.pack('>BBBB', 0, 0, type_code, array.ndim)
  header += struct.pack(f'>{array.ndim}I', *array.shape)
  content = header + array.tobytes()
  with open(path, 'wb') as f:
    f.write(gzip.compress(content) if compress else content)
  return path


def idx_folder(folder, seed=0, compress=True, labels=True, num_train=12, num_test=4):
  """Writes random 6x5 images (and labels in 0..9) in MNIST's layout; returns the arrays."""
  rng = np.random.default_rng(seed)
  suffix = '.gz' if compress else ''
  arrays = {'train': rng.integers(0, 256, (num_train, 6, 5)).astype(np.uint8),
            'test': rng.integers(0, 256, (num_test, 6, 5)).astype(np.uint8),
            'train_labels': rng.integers(0, 10, num_train).astype(np.uint8),
            'test_labels': rng.integers(0, 10, num_test).astype(np.uint8)}
  write_idx(folder / f'train-images-idx3-ubyte{suffix}', arrays['train'], compress)
  write_idx(folder / f't10k-images-idx3-ubyte{suffix}', arrays['test'], compress)
  if labels:
    write_idx(folder / f'train-labels-idx1-ubyte{suffix}', arrays['train_labels'], compress)
    write_idx(folder / f't10k-labels-idx1-ubyte{suffix}', arrays['test_labels'], compress)
  return arrays


def write_image(path, image):
  """Writes a uint8 array `(H, W, C)` as a PNG or JPEG file (by the file's extension)."""
  path.parent.mkdir(parents=True, exist_ok=True)
  if path.suffix.lower() in ('.jpg', '.jpeg'):
    encoded = tf.io.encode_jpeg(image, quality=100)
  else:
    encoded = tf.io.encode_png(image)
  tf.io.write_file(str(path), encoded)
  return path
