"""The Keras path: `FlowModel.fit` trains a flow with NLL loss and bits/dim."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import train_testlib as lib
from tensorboard.backend.event_processing import event_accumulator

from tfp_realnvp.bits import bits_per_dim
from tfp_realnvp.data import image_pipeline
from tfp_realnvp.train import CheckpointCallback
from tfp_realnvp.train import FlowModel
from tfp_realnvp.train import make_flow
from tfp_realnvp.train import pick_strategy
from tfp_realnvp.train import recipe


class _BatchCounter(keras.callbacks.Callback):

  def __init__(self):
    super().__init__()
    self.batches = 0
    self.epochs = []

  def on_train_batch_end(self, batch, logs=None):
    self.batches += 1

  def on_epoch_end(self, epoch, logs=None):
    self.epochs.append(dict(logs))


def _model():
  keras.utils.set_random_seed(lib.SEED)
  images = lib.digits()
  model = FlowModel(make_flow(lib.EVENT_SHAPE, **lib.FLOW_KWARGS),
                    lib.EVENT_SHAPE, num_levels=images.num_levels)
  model.compile(keras.optimizers.Adam(2e-3))
  return model


# Keras warns that a dataset of unknown length ran out: evaluate() here runs
# into the end of its data on purpose (the metrics must not count that call).
@pytest.mark.filterwarnings('ignore::UserWarning')
def test_fit_trains_with_nll_loss_bits_per_dim_and_callbacks(tmp_path):
  images = lib.digits()
  model = _model()
  train = image_pipeline(images.train, images.num_levels, 32, seed=0)
  test = image_pipeline(images.test[:64], images.num_levels, 64,
                        training=False, seed=1)
  counter = _BatchCounter()
  checkpoints = CheckpointCallback(tmp_path / 'ckpt', every_n_steps=3,
                                   max_to_keep=10)
  history = model.fit(train, epochs=2, steps_per_epoch=4, validation_data=test,
                      callbacks=[counter, checkpoints], verbose=0)
  logs = history.history
  assert {'loss', 'bits_per_dim', 'val_loss', 'val_bits_per_dim'} <= set(logs)
  assert counter.batches == 8 and len(counter.epochs) == 2
  assert int(model.optimizer.iterations.numpy()) == 8
  assert logs['loss'][1] < logs['loss'][0]
  # bits/dim is the NLL (without the small L2 term) in bits per dimension.
  for loss, bpd in zip(logs['val_loss'], logs['val_bits_per_dim']):
    expected = (loss / 64 + math.log(images.num_levels)) / math.log(2)
    assert abs(bpd - expected) < 1e-2
  # evaluate() runs in inference mode and matches log_prob of the flow.
  x = next(iter(test))
  want = float(np.mean(bits_per_dim(model.distribution.log_prob(x),
                                    lib.EVENT_SHAPE, images.num_levels)))
  stats = [np.array(v.numpy()) for v in model.flow.variables
           if not v.trainable]
  result = model.evaluate(test, verbose=0, return_dict=True)
  assert abs(result['bits_per_dim'] - want) < 1e-4
  for v, s in zip([v for v in model.flow.variables if not v.trainable], stats):
    np.testing.assert_array_equal(v.numpy(), s)   # nothing updated
  # Checkpoints every 3 steps and at the epoch ends; they restore the flow.
  saved = sorted(int(p.rsplit('-', 1)[1])
                 for p in checkpoints.manager.checkpoints)
  assert saved == [3, 4, 6, 8]
  other = _model()
  restore = CheckpointCallback(tmp_path / 'ckpt')
  restore.set_model(other)
  assert restore.restore() == 2
  np.testing.assert_allclose(other.distribution.log_prob(x).numpy(),
                             model.distribution.log_prob(x).numpy(), rtol=1e-5)
  assert int(other.optimizer.iterations.numpy()) == 8
  assert isinstance(other.predict(x, verbose=0), np.ndarray)
  assert tf.reduce_all(tf.math.is_finite(other.predict(x, verbose=0)))


@pytest.mark.filterwarnings('ignore::UserWarning')
def test_fit_on_two_logical_devices_matches_one_device():
  images = lib.digits()
  results = []
  for devices in (['/cpu:0'], ['/cpu:0', '/cpu:1']):
    with pick_strategy(devices).scope():
      model = _model()
    history = model.fit(image_pipeline(images.train, images.num_levels, 16,
                                       seed=0),
                        epochs=1, steps_per_epoch=3, verbose=0)
    results.append((history.history,
                    [np.array(v.numpy()) for v in model.flow.variables]))
  (one, one_vars), (two, two_vars) = results
  np.testing.assert_allclose(two['loss'], one['loss'], rtol=1e-5)
  np.testing.assert_allclose(two['bits_per_dim'], one['bits_per_dim'],
                             rtol=1e-5)
  for a, b in zip(one_vars, two_vars):
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=2e-5)


@pytest.mark.filterwarnings('ignore::UserWarning')
@pytest.mark.parametrize('policy', ['mixed_float16', 'mixed_bfloat16'])
def test_fit_under_a_global_mixed_precision_policy_with_tensorboard(tmp_path, policy):
  images = lib.digits()
  batches = image_pipeline(images.train, images.num_levels, 32, seed=0)
  x = next(iter(batches))
  reference = _model()     # float32, the same initial weights
  want, _ = recipe.maximum_likelihood_loss(reference.distribution, x,
                                           reference.flow.l2_regularized_variables)
  try:
    keras.mixed_precision.set_global_policy(policy)
    model = _model()
  finally:
    keras.mixed_precision.set_global_policy('float32')
  dtype = policy.split('_')[1]
  assert {layer.compute_dtype for net in model.flow.networks
          for layer in net._flatten_layers()  # pylint: disable=protected-access
          if 'conv' in layer.name} == {dtype}
  assert all(v.dtype == tf.float32 for v in model.flow_variables)
  assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (
      dtype == 'float16')
  history = model.fit(batches, epochs=2, steps_per_epoch=1, verbose=0,
                      callbacks=[keras.callbacks.TensorBoard(str(tmp_path / 'tb'))])
  losses = history.history['loss']
  assert np.all(np.isfinite(losses))
  # The first step's loss (initial weights, first batch) is the float32 one up to the
  # networks' rounding.
  np.testing.assert_allclose(losses[0], float(want), rtol=1e-2)
  applied = int(model.optimizer.iterations.numpy())
  if dtype == 'float16':
    # Each step was applied or skipped with the loss scale halved.
    halvings = np.log2(model.optimizer.initial_scale
                       / float(model.optimizer.dynamic_scale.numpy()))
    assert applied + halvings == 2
  else:
    assert applied == 2
  # keras.callbacks.TensorBoard wrote the epoch's scalars, read back by TensorBoard.
  events = event_accumulator.EventAccumulator(str(tmp_path / 'tb' / 'train'),
                                              size_guidance={'tensors': 0})
  events.Reload()
  tags = events.Tags()['tensors']
  assert {'epoch_loss', 'epoch_bits_per_dim'} <= set(tags)
  logged = tf.make_ndarray(events.Tensors('epoch_loss')[0].tensor_proto)
  np.testing.assert_allclose(logged, losses[0], rtol=1e-5)
