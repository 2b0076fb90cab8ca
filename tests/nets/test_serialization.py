"""The s/t networks save as `.keras` files and load back with the same outputs."""

import keras
import numpy as np
import pytest

from tfp_realnvp import nets
from tfp_realnvp.nets import resnet


def perturb(model, seed=0):
  """Moves every weight (zero-initialised output layers too) off its initial value."""
  rng = np.random.default_rng(seed)
  for weight in model.weights:
    if 'variance' in weight.path:
      weight.assign(rng.uniform(0.5, 2.0, weight.shape))
    else:
      weight.assign(weight.numpy() + 0.2 * rng.standard_normal(weight.shape))
  return model


def save_and_load(model, tmp_path):
  path = tmp_path / f'{model.name}.keras'
  model.save(path)
  return keras.models.load_model(path)


def test_the_package_layers_are_registered():
  assert keras.saving.get_registered_name(nets.WeightNormConv2D) == (
      'tfp_realnvp>WeightNormConv2D')
  assert keras.saving.get_registered_name(nets.ResidualBlock) == 'tfp_realnvp>ResidualBlock'
  assert keras.saving.get_registered_name(resnet._FusedBatchNormalization) == (
      'tfp_realnvp>FusedBatchNormalization')


@pytest.mark.parametrize('dtype', [None, 'mixed_bfloat16'])
def test_resnet_round_trips_through_a_keras_file(tmp_path, dtype):
  net = perturb(nets.resnet_shift_and_log_scale((6, 6, 2), 3, hidden_channels=8,
                                                num_res_blocks=2, dtype=dtype))
  loaded = save_and_load(net, tmp_path)
  assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in net.layers]
  block = loaded.get_layer('block_1')
  assert block.features == 8
  assert block.dtype_policy.name == net.get_layer('block_1').dtype_policy.name
  assert loaded.get_layer('conv_out').zero_init
  x = np.random.default_rng(1).standard_normal((5, 6, 6, 2)).astype(np.float32)
  inference = net(x, training=False).numpy()
  assert np.abs(inference).max() > 0.1   # not the zero output of a fresh network
  np.testing.assert_array_equal(loaded(x, training=False).numpy(), inference)
  # Training mode: batch statistics, and the same running averages afterwards.
  np.testing.assert_array_equal(loaded(x, training=True).numpy(), net(x, training=True).numpy())
  for saved, restored in zip(net.weights, loaded.weights):
    assert saved.path == restored.path
    np.testing.assert_array_equal(restored.numpy(), saved.numpy())


def test_mlp_round_trips_through_a_keras_file(tmp_path):
  net = perturb(nets.mlp_shift_and_log_scale(4, 3, hidden_units=(16, 16)))
  loaded = save_and_load(net, tmp_path)
  x = np.random.default_rng(2).standard_normal((7, 4)).astype(np.float32)
  for training in (False, True):
    expected = net(x, training=training).numpy()
    assert np.abs(expected).max() > 0.1
    np.testing.assert_array_equal(loaded(x, training=training).numpy(), expected)
