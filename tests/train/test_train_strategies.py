"""Training steps agree across devices, precisions and XLA."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import train_testlib as lib

from tfp_realnvp.bits import bits_per_dim
from tfp_realnvp.data import image_pipeline
from tfp_realnvp.train import TrainConfig
from tfp_realnvp.train import Trainer
from tfp_realnvp.train import make_flow
from tfp_realnvp.train import pick_strategy
from tfp_realnvp.train import runs


def _run(trainer, steps=lib.STEPS):
  iterator = iter(trainer.distribute(lib.dataset_fn))
  return [trainer.train_step(next(iterator)) for _ in range(steps)]


def test_two_logical_devices_match_one_device(reference_run):
  _, ref_results, initial, ref_vars = reference_run
  strategy = pick_strategy(['/cpu:0', '/cpu:1'])
  assert isinstance(strategy, tf.distribute.MirroredStrategy)
  trainer = lib.make_trainer(strategy)
  assert trainer.strategy.num_replicas_in_sync == 2
  results = _run(trainer)
  assert all(r.applied for r in results)
  np.testing.assert_allclose([r.nll for r in results],
                             [r.nll for r in ref_results], rtol=1e-5)
  np.testing.assert_allclose([r.grad_norm for r in results],
                             [r.grad_norm for r in ref_results], rtol=1e-4)
  got = lib.variables_dict(trainer)
  assert got.keys() == ref_vars.keys()
  for key in ref_vars:   # weights and batch-norm running statistics
    np.testing.assert_allclose(got[key], ref_vars[key], rtol=1e-4, atol=2e-5,
                               err_msg=key)
  # The steps did move the weights and the running statistics.
  moved = [k for k in ref_vars
           if not np.allclose(initial[k], ref_vars[k], atol=1e-6)]
  assert len(moved) > len(ref_vars) // 2


@pytest.mark.parametrize('variant', ['xla', 'bfloat16', 'float16'])
def test_mixed_precision_and_xla_steps_track_float32(reference_run, variant):
  _, ref_results, _, ref_vars = reference_run
  if variant == 'xla':
    trainer = lib.make_trainer(pick_strategy(['/cpu:0']), jit_compile=True)
    rtol, atol = 1e-4, 1e-4
  else:
    # A small initial loss scale: float16 skips no step here.
    trainer = lib.make_trainer(pick_strategy(['/cpu:0']),
                               mixed_precision=variant,
                               initial_loss_scale=2.**4)
    rtol, atol = 2e-2, 5e-2
    net_dtypes = {layer.compute_dtype for net in trainer.flow.networks
                  for layer in net._flatten_layers()  # pylint: disable=protected-access
                  if 'conv' in layer.name}
    assert net_dtypes == {variant}
    assert all(v.dtype == tf.float32 for v in trainer.trainable_variables)
  results = _run(trainer)
  assert all(r.applied for r in results), [r.grads_finite for r in results]
  np.testing.assert_allclose([r.nll for r in results],
                             [r.nll for r in ref_results], rtol=rtol, atol=atol)
  x = next(iter(lib.dataset_fn()))
  assert trainer.log_prob(x).dtype == tf.float32
  got = lib.variables_dict(trainer)
  worst = max(float(np.max(np.abs(got[k] - ref_vars[k]))) for k in ref_vars)
  # Adam moves each weight by about lr = 1e-3 per step.
  assert worst < (1e-4 if variant == 'xla' else 3e-3), worst


@pytest.mark.parametrize('variant', ['bfloat16', 'float16'])
def test_mixed_precision_reaches_the_residual_blocks(variant):
  flow = make_flow(lib.EVENT_SHAPE, num_scales=1, hidden_channels=4,
                   num_res_blocks=1, mixed_precision=variant)
  layers = [layer for net in flow.networks
            for layer in net._flatten_layers()]  # pylint: disable=protected-access
  blocks = [layer for layer in layers if 'block' in layer.name]
  assert blocks
  assert {layer.compute_dtype for layer in layers
          if 'conv' in layer.name or 'bn' in layer.name} == {variant}
  assert all(v.dtype == tf.float32 for v in flow.trainable_variables)
  assert keras.mixed_precision.global_policy().name == 'float32'
  x = tf.constant(np.random.default_rng(0).uniform(
      0.05, 0.95, (2,) + lib.EVENT_SHAPE).astype(np.float32))
  z, ildj = flow.inverse(x), flow.inverse_log_det_jacobian(x, event_ndims=3)
  assert z.dtype == tf.float32 and ildj.dtype == tf.float32
  assert np.all(np.isfinite(ildj.numpy()))


def test_evaluate_and_sample_run_in_inference_mode(reference_run):
  trainer = reference_run[0]
  images = lib.digits()
  before = lib.variables_dict(trainer)
  batches = image_pipeline(images.test, images.num_levels, 100, training=False,
                           seed=runs.EVAL_SEED, drop_remainder=False)
  bpd = trainer.evaluate(batches)
  x = np.concatenate(list(batches.as_numpy_iterator()))
  assert x.shape[0] == len(images.test)
  want = np.mean(bits_per_dim(trainer.distribution.log_prob(x),
                              lib.EVENT_SHAPE, images.num_levels).numpy())
  assert bpd == pytest.approx(float(want), rel=1e-5)
  assert bpd == pytest.approx(trainer.evaluate(batches), rel=1e-6)
  a, b = trainer.sample(8, 0.7, seed=3), trainer.sample(8, 0.7, seed=3)
  assert a.shape == (8,) + lib.EVENT_SHAPE
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, trainer.sample(8, 0.7, seed=4))
  assert np.all((a >= 0.) & (a <= 1.))
  after = lib.variables_dict(trainer)
  for key in before:    # no batch-norm statistic moved
    np.testing.assert_array_equal(after[key], before[key], err_msg=key)


@pytest.mark.parametrize('devices, jit_compile', [
    (['/cpu:0', '/cpu:1'], False), (['/cpu:0'], True)])
def test_dropout_trains_on_replicas_and_under_xla(devices, jit_compile):
  keras.utils.set_random_seed(lib.SEED)
  trainer = Trainer(
      lambda: make_flow(lib.EVENT_SHAPE, **dict(lib.FLOW_KWARGS, num_res_blocks=1),
                        dropout_rate=0.3),
      lib.EVENT_SHAPE, TrainConfig(global_batch_size=lib.BATCH, jit_compile=jit_compile),
      num_levels=lib.digits().num_levels, strategy=pick_strategy(devices))
  before = [v.numpy() for v in trainer.trainable_variables]
  results = _run(trainer, steps=3)
  assert all(r.applied and np.isfinite(r.nll) for r in results)
  assert any(not np.allclose(a, v.numpy()) for a, v in zip(before, trainer.trainable_variables))
  # Inference stays deterministic: the same bits/dim twice.
  x = next(iter(lib.dataset_fn()))
  first, second = trainer.log_prob(x).numpy(), trainer.log_prob(tf.identity(x)).numpy()
  np.testing.assert_array_equal(first, second)
