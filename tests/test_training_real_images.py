"""A short training on real images lowers held-out bits/dim well below 8."""

import json
import os
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp import RealNVPChain
from tfp_realnvp import bits_per_dim
from tfp_realnvp.data import image_pipeline
from tfp_realnvp.data import load_images

tfd = tfp.distributions

# Budget: Fashion-MNIST downsampled to 14x14 (Debian's dataset-fashion-mnist,
# which .ci/run installs), a 2-scale chain with 16-feature, 1-block ResNets,
# 200 Adam steps of batch 64 (about a minute on 2 cores, plus tracing).
STEPS = 200
BATCH = 64


@pytest.mark.slow
def test_fashion_mnist_held_out_bits_per_dim_fall_well_below_uniform():
  data = load_images('fashion_mnist', image_size=(14, 14))
  shape = data.train.shape[1:]
  flow = RealNVPChain(shape, num_scales=2, hidden_channels=16,
                      num_res_blocks=1)
  dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), shape),
                                     flow)
  variables = dist.trainable_variables
  optimizer = keras.optimizers.Adam(1e-3)
  optimizer.build(variables)

  @tf.function
  def train_step(x):
    with tf.GradientTape() as tape:
      nll = -tf.reduce_mean(dist.log_prob(x, bijector_kwargs={'training':
                                                               True}))
      loss = nll + 5e-5 * tf.add_n([tf.reduce_sum(tf.square(v))
                                    for v in flow.l2_regularized_variables])
    grads = tape.gradient(loss, variables)
    grads, _ = tf.clip_by_global_norm(grads, 100.)
    optimizer.apply_gradients(zip(grads, variables))
    return nll

  @tf.function
  def held_out_bits_per_dim(x):
    return tf.reduce_mean(bits_per_dim(dist.log_prob(x), shape,
                                       data.num_levels))

  test = next(iter(image_pipeline(data.test[:2000], data.num_levels, 2000,
                                  training=False, seed=1)))
  before = float(held_out_bits_per_dim(test))
  batches = iter(image_pipeline(data.train, data.num_levels, BATCH, seed=0))
  start = time.time()
  for _ in range(STEPS):
    train_step(next(batches))
  seconds = time.time() - start
  after = float(held_out_bits_per_dim(test))
  report = dict(dataset=data.name, source=data.source, image_shape=shape,
                steps=STEPS, batch=BATCH, seconds=round(seconds, 1),
                held_out_bits_per_dim_before=round(before, 3),
                held_out_bits_per_dim_after=round(after, 3))
  print(json.dumps(report))
  if os.environ.get('TFP_REALNVP_REPORT'):
    with open(os.environ['TFP_REALNVP_REPORT'], 'w') as f:
      json.dump(report, f)
  assert np.isfinite(after)
  assert after < 6.0, report
  assert after < before - 2.0, report
