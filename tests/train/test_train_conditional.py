"""Class-conditional flows and Glow's layers in the training paths: `Trainer` (one and two
devices), `FlowModel`, `maximum_likelihood_step`, the labels' checks, ActNorm's start, the
batch-norm recomputation and the conditional SavedModel."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import train_testlib as lib

import tfp_realnvp
from tfp_realnvp.bijectors import ActNorm
from tfp_realnvp.bits import bits_per_dim
from tfp_realnvp.data import image_pipeline
from tfp_realnvp.train import FlowModel
from tfp_realnvp.train import UnhealthyExportError
from tfp_realnvp.train import make_distribution
from tfp_realnvp.train import make_flow
from tfp_realnvp.train import maximum_likelihood_step
from tfp_realnvp.train import pick_strategy


def _steps(trainer, steps=lib.STEPS):
  iterator = iter(trainer.distribute(lib.labelled_dataset_fn))
  return [trainer.train_step(next(iterator)) for _ in range(steps)]


@pytest.fixture(scope='module')
def conditional_reference():
  """`STEPS` steps of the tiny conditional flow on one device."""
  trainer = lib.make_conditional_trainer(pick_strategy(['/cpu:0']))
  initial = lib.variables_dict(trainer)
  results = _steps(trainer)
  return trainer, results, initial, lib.variables_dict(trainer)


@pytest.fixture(scope='module')
def perturbed():
  """A conditional trainer whose weights are off their (near-identity) start."""
  return lib.perturb(lib.make_conditional_trainer(pick_strategy(['/cpu:0'])))


def test_conditional_step_on_two_devices_equals_the_one_device_step(conditional_reference):
  _, ref_results, initial, ref_vars = conditional_reference
  trainer = lib.make_conditional_trainer(pick_strategy(['/cpu:0', '/cpu:1']))
  assert trainer.strategy.num_replicas_in_sync == 2 and trainer.num_classes == 10
  results = _steps(trainer)
  assert all(r.applied for r in ref_results + results)
  np.testing.assert_allclose([r.nll for r in results], [r.nll for r in ref_results],
                             rtol=1e-5)
  np.testing.assert_allclose([r.grad_norm for r in results],
                             [r.grad_norm for r in ref_results], rtol=1e-4)
  got = lib.variables_dict(trainer)
  for key in ref_vars:   # weights, batch-norm statistics, the class prior's parameters
    np.testing.assert_allclose(got[key], ref_vars[key], rtol=1e-4, atol=2e-5, err_msg=key)
  moved = [k for k in ref_vars if not np.allclose(initial[k], ref_vars[k], atol=1e-6)]
  assert len(moved) > len(ref_vars) // 2
  # The per-class prior learned from the labels (it starts at zero).
  prior = trainer.flow.class_conditional_prior
  assert np.abs(prior.trainable_variables[0].numpy()).max() > 0


def test_the_step_conditions_on_the_labels_of_each_example(conditional_reference):
  trainer, ref_results, _, _ = conditional_reference
  # The first step's loss is the untrained flow's -log p(x | y) of the first batch: with
  # other labels (here all zero) it differs, so the labels did reach the flow.
  fresh = lib.perturb(lib.make_conditional_trainer(pick_strategy(['/cpu:0'])))
  x, y = next(iter(lib.labelled_dataset_fn()))
  right = -np.mean(fresh.log_prob(x, y).numpy())
  wrong = -np.mean(fresh.log_prob(x, np.zeros_like(y.numpy())).numpy())
  assert abs(right - wrong) > 1e-3
  assert trainer.num_classes == 10 and ref_results[0].nll > ref_results[-1].nll


def test_log_prob_evaluate_and_sample_route_the_labels(perturbed):
  trainer = perturbed
  x, y = lib.test_pairs()
  dist = trainer.distribution
  want = dist.log_prob(x, bijector_kwargs={'conditional_input': y}).numpy()
  np.testing.assert_allclose(trainer.log_prob(x, y).numpy(), want, rtol=1e-5, atol=1e-4)
  other = trainer.log_prob(x, (y + 1) % 10).numpy()
  assert np.abs(other - want).max() > 1e-2
  np.testing.assert_allclose(trainer.log_prob(x, 3).numpy(),
                             trainer.log_prob(x, np.full(len(x), 3)).numpy(), rtol=1e-6)
  batches = image_pipeline(lib.digits().test[:32], 17, 10, labels=y, training=False,
                           seed=1, drop_remainder=False)
  pairs = list(batches.as_numpy_iterator())
  x_all = np.concatenate([p[0] for p in pairs])
  log_prob = dist.log_prob(x_all, bijector_kwargs={'conditional_input': y}).numpy()
  assert trainer.evaluate(batches) == pytest.approx(
      float(np.mean(bits_per_dim(log_prob, lib.EVENT_SHAPE, 17))), rel=1e-5)
  a = trainer.sample(6, 0.8, seed=3, labels=[0, 1, 2, 3, 4, 5])
  np.testing.assert_array_equal(a, trainer.sample(6, 0.8, seed=3, labels=[0, 1, 2, 3, 4, 5]))
  b = trainer.sample(6, 0.8, seed=3, labels=7)
  assert np.abs(a - b).max() > 1e-3      # same noise, other classes
  np.testing.assert_array_equal(b, trainer.sample(6, 0.8, seed=3, labels=[7] * 6))
  raw = trainer.sample(6, 0.8, seed=3, labels=7, clip=False)
  z = tfp_realnvp.latents.sample_latents(lib.EVENT_SHAPE, 6, 0.8, 3)
  np.testing.assert_allclose(
      raw, trainer.flow.forward(z, conditional_input=tf.fill([6], 7)).numpy(), atol=1e-5)
  assert trainer.sample(0, labels=[]).shape == (0,) + lib.EVENT_SHAPE


@pytest.mark.parametrize('case, error, match', [
    ('no_labels', ValueError, r'class-conditional \(num_classes=10\).*images only'),
    ('float_labels', ValueError, r'integer class indices in \[0, 10\).*float32'),
    ('one_hot_labels', ValueError, r'one-hot rows\? pass their argmax'),
    ('column_labels', ValueError, r'shape \(batch,\).*\(16, 1\)'),
    ('three_parts', ValueError, 'yields 3 tensors per element'),
    ('out_of_range', tf.errors.InvalidArgumentError,
     r'labels must be class indices in \[0, 10\)'),
    ('negative', tf.errors.InvalidArgumentError,
     r'labels must be class indices in \[0, 10\)'),
])
def test_bad_training_labels_are_named(perturbed, case, error, match):
  images = lib.digits()

  def dataset_fn():
    if case == 'no_labels':
      return lib.dataset_fn()
    data = lib.labelled_dataset_fn()
    change = {
        'float_labels': lambda x, y: (x, tf.cast(y, tf.float32)),
        'one_hot_labels': lambda x, y: (x, tf.one_hot(y, 10)),
        'column_labels': lambda x, y: (x, y[:, None]),
        'three_parts': lambda x, y: (x, y, y),
        'out_of_range': lambda x, y: (x, y + 5),
        'negative': lambda x, y: (x, y - 1),
    }[case]
    return data.map(change)

  del images
  with pytest.raises(error, match=match):
    iterator = iter(perturbed.distribute(dataset_fn))
    for _ in range(3):
      next(iterator)


def test_labels_with_an_unconditional_flow_are_an_error():
  trainer = lib.make_trainer(pick_strategy(['/cpu:0']))
  assert trainer.num_classes is None
  with pytest.raises(ValueError, match='yields \\(images, labels\\) pairs, but the flow is '
                                       'not class-conditional'):
    trainer.distribute(lib.labelled_dataset_fn)
  x, y = lib.test_pairs(4)
  with pytest.raises(ValueError, match='Trainer.log_prob: labels were given, but the flow '
                                       'is not class-conditional'):
    trainer.log_prob(x, y)
  with pytest.raises(ValueError, match='not class-conditional'):
    trainer.sample(2, labels=1)
  with pytest.raises(ValueError, match='Trainer.evaluate: labels were given, but the flow '
                                       'is not class-conditional'):
    trainer.evaluate([(x, y)])


@pytest.mark.parametrize('call, match', [
    (lambda t, x, y: t.log_prob(x), r'Trainer.log_prob: the flow is class-conditional'),
    (lambda t, x, y: t.log_prob(x, y[:3]), 'got 3 labels for 4 events'),
    (lambda t, x, y: t.log_prob(x, y + 10), r'labels must be class indices in \[0, 10\).*'
                                            r'got labels in \[1\d, 1\d\]'),
    (lambda t, x, y: t.log_prob(x, y.astype(np.float32)), 'integer class indices'),
    (lambda t, x, y: t.log_prob(x, y[:, None]), r'shape \(batch,\)'),
    (lambda t, x, y: t.evaluate([x]), 'Trainer.evaluate: the flow is class-conditional'),
    (lambda t, x, y: t.sample(4), 'Trainer.sample: the flow is class-conditional'),
    (lambda t, x, y: t.sample(4, labels=-1), r'got labels in \[-1, -1\]'),
    (lambda t, x, y: t.sample(4, labels=[1, 2]), 'got 2 labels for 4 events'),
    (lambda t, x, y: t.recompute_batch_norm_statistics([x]),
     'Trainer.recompute_batch_norm_statistics: the flow is class-conditional'),
])
def test_inference_entry_points_check_the_labels(perturbed, call, match):
  x, y = lib.test_pairs(4)
  with pytest.raises(ValueError, match=match):
    call(perturbed, x, y)


def test_maximum_likelihood_step_and_flow_model_take_labels():
  x, y = lib.test_pairs(16)
  keras.utils.set_random_seed(lib.SEED)
  flow = make_flow(lib.EVENT_SHAPE, num_classes=10, **lib.FLOW_KWARGS)
  dist = make_distribution(flow, lib.EVENT_SHAPE)
  step = maximum_likelihood_step(dist, keras.optimizers.Adam(1e-3), clip_norm=None)
  with pytest.raises(ValueError, match='maximum_likelihood_step: the flow is '
                                       'class-conditional'):
    step(x)
  # The step's nll is that of the batch before the update, in training mode. A
  # training-mode pass also moves the batch norms' running averages (which that mode
  # uses), so the flow's variables are put back before the step.
  flow_copy_values = [v.numpy() for v in flow.variables]
  before = -np.mean(dist.log_prob(x, bijector_kwargs={
      'conditional_input': y, 'training': True}).numpy())
  for v, value in zip(flow.variables, flow_copy_values):
    v.assign(value)
  trainable_before = [v.numpy() for v in flow.trainable_variables]
  nll = float(step(x, y))
  assert nll == pytest.approx(before, rel=1e-5)
  assert any(not np.array_equal(a, v.numpy())
             for a, v in zip(trainable_before, flow.trainable_variables))

  keras.utils.set_random_seed(lib.SEED)
  model = FlowModel(make_flow(lib.EVENT_SHAPE, num_classes=10, **lib.FLOW_KWARGS),
                    lib.EVENT_SHAPE, num_levels=17)
  model.compile(keras.optimizers.Adam(2e-3))
  assert model.num_classes == 10
  pairs = lib.labelled_dataset_fn()
  history = model.fit(pairs, epochs=1, steps_per_epoch=3, verbose=0)
  assert np.isfinite(history.history['loss']).all()
  predicted = model.predict(tf.data.Dataset.from_tensors((x, y)), verbose=0)
  want = model.distribution.log_prob(x, bijector_kwargs={'conditional_input': y}).numpy()
  np.testing.assert_allclose(predicted, want, rtol=1e-5, atol=1e-4)
  with pytest.raises(ValueError, match='FlowModel: the flow is class-conditional'):
    model.predict(tf.data.Dataset.from_tensors(x), verbose=0)
  with pytest.raises(tf.errors.InvalidArgumentError, match=r'labels must be class indices'):
    model.evaluate(tf.data.Dataset.from_tensors((x, y + 10)), verbose=0)


def _act_norm_values(trainer):
  return [(layer.loc.numpy(), layer.log_scale.numpy(), bool(layer.initialized.numpy()))
          for layer in trainer._act_norms]  # pylint: disable=protected-access


def test_act_norm_starts_from_the_first_global_batch_on_any_number_of_replicas():
  options = dict(batch_norm=False, act_norm=True, invertible_1x1_conv=True)
  one = lib.make_conditional_trainer(pick_strategy(['/cpu:0']), **options)
  two = lib.make_conditional_trainer(pick_strategy(['/cpu:0', '/cpu:1']), **options)
  assert len(one._act_norms) == 4  # pylint: disable=protected-access
  assert all(not started for _, _, started in _act_norm_values(two))
  assert one.initialize_act_norms(lib.labelled_dataset_fn) == 4
  assert two.initialize_act_norms(lib.labelled_dataset_fn) == 4
  for (loc1, scale1, started1), (loc2, scale2, started2) in zip(
      _act_norm_values(one), _act_norm_values(two)):
    assert started1 and started2
    np.testing.assert_allclose(loc2, loc1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scale2, scale1, rtol=1e-5, atol=1e-6)
  # The first layer normalises the first global batch as it reaches it: its output has
  # zero mean and unit variance per channel.
  x, y = next(iter(lib.labelled_dataset_fn()))
  first = one._act_norms[0]  # pylint: disable=protected-access
  seen = []
  original = ActNorm._inverse_and_log_det

  def spy(self, value, **kwargs):
    out = original(self, value, **kwargs)
    if self is first:
      seen.append(out[0])
    return out

  ActNorm._inverse_and_log_det = spy
  try:
    one.flow.inverse(x, conditional_input=y)
  finally:
    ActNorm._inverse_and_log_det = original
  z = seen[0].numpy()
  np.testing.assert_allclose(z.mean(axis=(0, 1, 2)), 0., atol=1e-4)
  np.testing.assert_allclose(z.std(axis=(0, 1, 2)), 1., atol=1e-3)


def test_recompute_batch_norm_statistics_routes_the_labels(perturbed):
  x, y = lib.test_pairs(32)
  batches = [(x[:16], y[:16]), (x[16:], y[16:])]
  twin = lib.perturb(lib.make_conditional_trainer(pick_strategy(['/cpu:0'])))
  before = lib.variables_dict(perturbed)
  assert perturbed.recompute_batch_norm_statistics(batches) == 2
  tfp_realnvp.recompute_batch_norm_statistics(twin.flow, batches)
  after, want = lib.variables_dict(perturbed), lib.variables_dict(twin)
  changed = [k for k in before if not np.allclose(before[k], after[k])]
  assert changed                      # the running averages moved ...
  for key in want:                    # ... as the library's with the labels routed
    np.testing.assert_allclose(after[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
  # Different labels give other statistics: the labels reached the flow.
  other = lib.perturb(lib.make_conditional_trainer(pick_strategy(['/cpu:0'])))
  other.recompute_batch_norm_statistics([(x[:16], (y[:16] + 1) % 10),
                                         (x[16:], (y[16:] + 1) % 10)])
  assert any(not np.allclose(lib.variables_dict(other)[k], after[k]) for k in changed)


@pytest.fixture(scope='module')
def conditional_export(tmp_path_factory, perturbed):
  path = str(tmp_path_factory.mktemp('export') / 'saved_model')
  x, y = lib.test_pairs()
  assert perturbed.export(path, check_images=x, check_labels=y) == path
  return perturbed, tf.saved_model.load(path), x, y, path


def test_conditional_saved_model_matches_the_trainer(conditional_export):
  trainer, model, x, y, _ = conditional_export
  assert int(model.num_classes.numpy()) == 10
  np.testing.assert_allclose(model.log_prob(x, y).numpy(), trainer.log_prob(x, y).numpy(),
                             rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(model.log_prob(x, 4).numpy(), trainer.log_prob(x, 4).numpy(),
                             rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(
      model.bits_per_dim(x, y).numpy(),
      bits_per_dim(trainer.log_prob(x, y), lib.EVENT_SHAPE, 17).numpy(), rtol=1e-5)
  labels = np.array([0, 1, 2, 3, 4, 9], np.int32)
  images = model.sample(tf.constant(6), labels, tf.constant(0.8), tf.constant(3, tf.int64))
  raw = trainer.sample(6, 0.8, seed=3, labels=labels, clip=False)
  np.testing.assert_allclose(images.numpy(), np.clip(raw, 0., 1.), atol=1e-5)
  signature = model.signatures['sample'](
      n=tf.constant(6), label=tf.constant(labels), temperature=tf.constant(0.8),
      seed=tf.constant(3, tf.int64))['images']
  np.testing.assert_array_equal(signature.numpy(), images.numpy())
  served = model.signatures['log_prob'](x=tf.constant(x), label=tf.constant(y))['log_prob']
  np.testing.assert_allclose(served.numpy(), model.log_prob(x, y).numpy(), rtol=1e-6)
  assert model.log_prob(x[:0], y[:0]).shape == (0,)
  assert model.sample(tf.constant(0), tf.constant(2), tf.constant(1.),
                      tf.constant(0, tf.int64)).shape == (0, 8, 8, 1)


@pytest.mark.parametrize('call, match', [
    (lambda m, x, y: m.log_prob(x, y + 10), r'label must be a class index in \[0, 10\)'),
    (lambda m, x, y: m.log_prob(x, -y - 1), r'label must be a class index in \[0, 10\)'),
    (lambda m, x, y: m.log_prob(x, y[:5]), r'one per image, shape \(\) or \(N,\)'),
    (lambda m, x, y: m.bits_per_dim(x, y[None]), r'one per image, shape \(\) or \(N,\)'),
    (lambda m, x, y: m.sample(tf.constant(3), tf.constant([1, 2]), tf.constant(1.),
                              tf.constant(0, tf.int64)), r'shape \(\) or \(N,\)'),
    (lambda m, x, y: m.sample(tf.constant(3), tf.constant(10), tf.constant(1.),
                              tf.constant(0, tf.int64)), r'in \[0, 10\)'),
    (lambda m, x, y: m.log_prob(x - 0.03, y), r'pixels must lie in \[0, 1\]'),
])
def test_conditional_saved_model_rejects_bad_labels(conditional_export, call, match):
  _, model, x, y, _ = conditional_export
  with pytest.raises(tf.errors.InvalidArgumentError, match=match):
    call(model, x, y)


def test_conditional_saved_model_refuses_other_label_dtypes(conditional_export):
  _, model, x, y, _ = conditional_export
  with pytest.raises(TypeError, match='int64'):
    model.log_prob(x, tf.constant(y, tf.int64))
  with pytest.raises(TypeError):
    model.log_prob(x)               # the label is a required input


def test_a_conditional_export_needs_the_labels_of_its_check_images(perturbed, tmp_path):
  x, _ = lib.test_pairs(8)
  with pytest.raises(ValueError, match='needs the labels of check_images'):
    perturbed.export(str(tmp_path / 'saved_model'), check_images=x)
  assert not (tmp_path / 'saved_model').exists()


def test_a_broken_conditional_model_is_not_exported(tmp_path):
  trainer = lib.perturb(lib.make_conditional_trainer(pick_strategy(['/cpu:0'])))
  for coupling in trainer.flow.couplings:
    coupling.scale.assign(tf.fill(coupling.scale.shape, 1e30))
  x, y = lib.test_pairs(8)
  with pytest.raises(UnhealthyExportError, match='non-finite log_prob for 8 of 8'):
    trainer.export(str(tmp_path / 'saved_model'), check_images=x, check_labels=y)
  assert not (tmp_path / 'saved_model').exists()
