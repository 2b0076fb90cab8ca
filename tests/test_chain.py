"""RealNVPChain: the TFP idioms, round trips, closed forms, errors, replicas."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from flowtest import fresh
from flowtest import perturb

from tfp_realnvp import RealNVPChain
from tfp_realnvp.bijectors import InvertibleBatchNorm
from tfp_realnvp.bijectors import MaskedAffineCoupling
from tfp_realnvp.bijectors import initialize_act_norms
from tfp_realnvp.train import pick_strategy

tfd = tfp.distributions
TINY = dict(hidden_channels=4, num_res_blocks=1)


def _dist(flow):
  return tfd.TransformedDistribution(
      tfd.Sample(tfd.Normal(0., 1.), flow.event_shape), flow)


def _pixels(shape, batch=8, seed=0):
  """Dequantized 8-bit pixels in [0, 1)."""
  rng = np.random.default_rng(seed)
  k = rng.integers(0, 256, (batch,) + tuple(shape))
  return ((k + rng.uniform(size=k.shape)) / 256.).astype(np.float32)


def _training_step(dist, optimizer, function=True):
  """The TFP way: a tape over `dist.trainable_variables`, a Keras optimizer."""
  variables = dist.trainable_variables
  optimizer.build(variables)

  @tf.function
  def step(x):
    with tf.GradientTape() as tape:
      loss = -tf.reduce_mean(dist.log_prob(x, bijector_kwargs={'training':
                                                                True}))
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

  return step if function else step.python_function


def _train(dist, shape, steps, lr=1e-3, batch=8, function=True):
  step = _training_step(dist, keras.optimizers.Adam(lr), function)
  return [float(step(tf.constant(_pixels(shape, batch, seed=i))))
          for i in range(steps)]


def test_sample_and_log_prob_shapes_and_range():
  flow = RealNVPChain((8, 8, 1), num_scales=2, **TINY)
  dist = _dist(perturb(flow, scale=0.3))
  x = dist.sample(5, seed=1)
  assert x.shape == (5, 8, 8, 1)
  low, high = flow.preprocessing.support   # no clipping: the flow's whole support
  assert float(tf.reduce_min(x)) > low and float(tf.reduce_max(x)) < high
  log_prob = dist.log_prob(fresh(x))
  assert log_prob.shape == (5,)
  assert np.all(np.isfinite(log_prob.numpy()))


def test_log_prob_closed_form_at_initialisation():
  """Without batch norm, a fresh chain is the logit map: z = logit(p)."""
  flow = RealNVPChain((4, 4, 2), num_scales=2, batch_norm=False, **TINY)
  x = _pixels((4, 4, 2), batch=3)
  p = 0.05 + 0.9 * x.astype(np.float64)
  z = np.log(p / (1 - p))
  expected = np.sum(-0.5 * z ** 2 - 0.5 * np.log(2 * np.pi)
                    + np.log(0.9) - np.log(p) - np.log(1 - p), axis=(1, 2, 3))
  np.testing.assert_allclose(_dist(flow).log_prob(x).numpy(), expected,
                             rtol=1e-5)


def test_trainable_variables_hold_every_weight():
  flow = RealNVPChain((8, 8, 1), num_scales=2, hidden_channels=4,
                      num_res_blocks=2)
  dist = _dist(flow)
  couplings, norms = flow.couplings, flow.batch_norms
  assert len(couplings) == 3 + 3 + 4 and len(norms) == len(couplings)
  expected = (sum(len(c.network.trainable_weights) + 1 for c in couplings)
              + 2 * len(norms))
  assert len(dist.trainable_variables) == expected
  expected_params = (
      sum(sum(int(np.prod(w.shape)) for w in c.network.trainable_weights)
          + int(c.scale.shape[0]) for c in couplings)
      + sum(2 * int(n.beta.shape[0]) for n in norms))
  assert sum(int(np.prod(v.shape)) for v in dist.trainable_variables) == (
      expected_params)
  # Batch-norm running statistics are variables too (checkpointed), not
  # trainable.
  trainable = {id(v) for v in dist.trainable_variables}
  running = [v for v in flow.variables if id(v) not in trainable]
  assert any('moving_mean' in v.name for v in running)
  assert flow.l2_regularized_variables == tuple(c.scale for c in couplings)


def test_a_tfp_style_training_loop_lowers_the_loss():
  flow = RealNVPChain((8, 8, 1), num_scales=2, **TINY)
  dist = _dist(flow)
  data = tf.constant(_pixels((8, 8, 1), batch=16, seed=0) * 0.3 + 0.2)
  step = _training_step(dist, keras.optimizers.Adam(1e-2))
  losses = [float(step(data)) for _ in range(30)]
  assert losses[-1] < losses[0] - 20., losses


@pytest.mark.parametrize('event_shape,num_scales', [
    ((28, 28, 1), 2), ((28, 28, 1), 3), ((32, 32, 3), 2)])
def test_round_trips_after_training(event_shape, num_scales):
  flow = RealNVPChain(event_shape, num_scales=num_scales, **TINY)
  dist = _dist(flow)
  _train(dist, event_shape, steps=3, lr=1e-2, batch=4, function=False)   # eager: no tracing
  x = _pixels(event_shape, batch=4, seed=99)
  z = flow.inverse(x)
  assert z.shape == (4,) + event_shape
  np.testing.assert_allclose(flow.forward(fresh(z)).numpy(), x, atol=1e-4)
  # The multi-scale part (everything after the logit) on arbitrary latents.
  core = flow.scales[0]
  latent = tf.random.stateless_normal((4,) + event_shape, [5, 6])
  h = core.forward(latent)
  np.testing.assert_allclose(core.inverse(fresh(h)).numpy(), latent.numpy(),
                             atol=1e-4)
  np.testing.assert_allclose(core.forward(fresh(core.inverse(fresh(h)))),
                             h.numpy(), atol=1e-4)


def test_checkpoint_restores_log_prob_and_running_statistics(tmp_path):
  flow = RealNVPChain((8, 8, 1), num_scales=2, **TINY)
  dist = _dist(flow)
  _train(dist, (8, 8, 1), steps=2, lr=1e-2)
  x = _pixels((8, 8, 1), batch=4, seed=7)
  saved = dist.log_prob(x).numpy()
  path = tf.train.Checkpoint(flow=flow).write(str(tmp_path / 'ckpt'))

  other = RealNVPChain((8, 8, 1), num_scales=2, **TINY)
  assert not np.allclose(_dist(other).log_prob(x).numpy(), saved)
  tf.train.Checkpoint(flow=other).read(path).assert_consumed()
  np.testing.assert_allclose(_dist(other).log_prob(x).numpy(), saved,
                             rtol=1e-6)
  for a, b in zip(flow.batch_norms, other.batch_norms):
    np.testing.assert_array_equal(a.moving_variance.numpy(),
                                  b.moving_variance.numpy())


def test_xla_log_prob_and_training_step_agree_with_eager():
  flow = perturb(RealNVPChain((8, 8, 1), num_scales=2, **TINY), scale=0.05)
  dist = _dist(flow)
  x = tf.constant(_pixels((8, 8, 1), batch=4))
  eager = dist.log_prob(x).numpy()
  xla = tf.function(lambda t: dist.log_prob(t), jit_compile=True)(x).numpy()
  np.testing.assert_allclose(xla, eager, rtol=1e-4, atol=1e-2)

  def loss_and_grads(t):
    with tf.GradientTape() as tape:
      loss = -tf.reduce_mean(dist.log_prob(t, bijector_kwargs={'training':
                                                                True}))
    return loss, tape.gradient(loss, dist.trainable_variables)

  # The gradient graph of a one-scale chain keeps the trace short.
  flow = perturb(RealNVPChain((8, 8, 1), num_scales=1, **TINY), scale=0.05)
  dist = _dist(flow)
  state = [v.numpy() for v in flow.variables]
  loss_e, grads_e = loss_and_grads(x)
  for v, s in zip(flow.variables, state):
    v.assign(s)
  loss_x, grads_x = tf.function(loss_and_grads, jit_compile=True)(x)
  np.testing.assert_allclose(float(loss_x), float(loss_e), rtol=1e-4)
  for ge, gx in zip(grads_e, grads_x):
    np.testing.assert_allclose(gx.numpy(), ge.numpy(), rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize('options', [
    {}, dict(batch_norm=False, act_norm=True, invertible_1x1_conv=True), dict(num_classes=3)],
    ids=['batch_norm', 'glow_layers', 'conditional'])
def test_two_replicas_give_the_one_device_step(options):
  x = _pixels((8, 8, 1), batch=8, seed=3)
  labels = np.arange(8, dtype=np.int32) % 3
  results = {}
  for name, strategy in [
      ('one', tf.distribute.OneDeviceStrategy('/cpu:0')),
      # pick_strategy gives each MirroredStrategy collective keys of its own.
      ('two', pick_strategy(['/cpu:0', '/cpu:1']))]:
    keras.utils.set_random_seed(5)
    with strategy.scope():
      flow = perturb(RealNVPChain((8, 8, 1), num_scales=1, **options, **TINY), seed=2,
                     scale=0.05)
      dist = _dist(flow)
      optimizer = keras.optimizers.SGD(0.1)
      optimizer.build(dist.trainable_variables)
    if options.get('act_norm'):
      assert initialize_act_norms(flow, x) == 4   # the global batch, outside the replicas

    def replica_step(batch, batch_labels):
      kwargs = {'training': True}
      if 'num_classes' in options:
        kwargs['conditional_input'] = batch_labels
      with tf.GradientTape() as tape:
        log_prob = dist.log_prob(batch, bijector_kwargs=kwargs)
        loss = -tf.reduce_sum(log_prob) / 8.   # mean over the global batch
      variables = dist.trainable_variables
      optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
      return loss

    @tf.function
    def step(batch):
      losses = strategy.run(replica_step, batch)
      return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices((x, labels)).batch(8))
    loss = step(next(iter(dataset)))
    results[name] = (float(loss), [v.numpy() for v in flow.variables])

  assert results['one'][0] == pytest.approx(results['two'][0], rel=1e-5)
  for a, b in zip(results['one'][1], results['two'][1]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_construction_errors_say_what_to_change():
  with pytest.raises(ValueError, match=r'27x28.*divide by 2\*\*\(num_scales'):
    RealNVPChain((27, 28, 1), num_scales=2)
  with pytest.raises(ValueError, match=r'Use fewer scales'):
    RealNVPChain((28, 28, 1), num_scales=4)
  with pytest.raises(ValueError, match=r'too many scales for 8x8.*num_scales <= 3'):
    RealNVPChain((8, 8, 1), num_scales=4)
  with pytest.raises(ValueError, match='PiecewiseLinear'):
    RealNVPChain((1,))
  with pytest.raises(ValueError, match=r'\(H, W, C\) for images or \(D,\)'):
    RealNVPChain((28, 28))
  with pytest.raises(ValueError, match='num_scales must be >= 1'):
    RealNVPChain((8, 8, 1), num_scales=0)


def test_bad_inputs_get_clear_errors():
  flow = RealNVPChain((8, 8, 1), num_scales=2, **TINY)
  with pytest.raises(ValueError, match=r'expected data of shape \(\.\.\., 8, 8, 1\)'):
    flow.inverse(tf.zeros((2, 8, 8, 3)))
  with pytest.raises(ValueError, match='got rank 2'):
    flow.inverse(tf.zeros((8, 8)))
  with pytest.raises(ValueError, match=r'expected latents of shape'):
    flow.forward(tf.zeros((2, 4, 4, 4)))
  with pytest.raises(tf.errors.InvalidArgumentError, match=r'pixels must be in \[0, 1\]'):
    flow.inverse(tf.fill((1, 8, 8, 1), 255.))
  with pytest.raises(tf.errors.InvalidArgumentError, match='below -0.0555'):
    flow.inverse(tf.fill((1, 8, 8, 1), -0.5))
  with pytest.raises(ValueError, match='not class-conditional'):
    flow.inverse(tf.zeros((1, 8, 8, 1)), conditional_input=tf.constant([1]))
  bad = _pixels((8, 8, 1), batch=1)
  bad[0, 3, 3, 0] = np.nan
  with pytest.raises(tf.errors.InvalidArgumentError, match='NaN or Inf'):
    _dist(flow).log_prob(bad)
  latent = np.zeros((1, 8, 8, 1), np.float32)
  latent[0, 0, 0, 0] = np.inf
  with pytest.raises(tf.errors.InvalidArgumentError, match='NaN or Inf'):
    flow.forward(latent)


def test_arguments_of_the_other_kind_of_event_are_refused():
  with pytest.raises(ValueError, match=r'hidden_units.*do\(es\) not apply to an image'):
    RealNVPChain((8, 8, 1), hidden_units=(8,))
  with pytest.raises(ValueError, match=r'num_res_blocks, num_scales do\(es\) not apply to a '
                                       r'vector'):
    RealNVPChain((4,), num_scales=2, num_res_blocks=2)
  with pytest.raises(ValueError, match=r'dropout_rate do\(es\) not apply to a vector'):
    RealNVPChain((4,), dropout_rate=0.1)
  with pytest.raises(ValueError, match=r'dropout_rate must be in \[0, 1\)'):
    RealNVPChain((8, 8, 1), dropout_rate=1., **TINY)
  with pytest.raises(ValueError, match=r'dropout_rate must be in \[0, 1\)'):
    RealNVPChain((8, 8, 1), hidden_channels=4, num_res_blocks=0, dropout_rate=-0.5)
  with pytest.raises(ValueError, match='class_conditional_prior needs num_classes'):
    RealNVPChain((4,), class_conditional_prior=True)
  with pytest.raises(ValueError, match='choose one'):
    RealNVPChain((4,), batch_norm=True, act_norm=True)
  with pytest.raises(ValueError, match='choose one'):
    RealNVPChain((8, 8, 1), batch_norm=True, act_norm=True, **TINY)


def test_dropout_changes_training_passes_only():
  plain = perturb(RealNVPChain((8, 8, 1), num_scales=2, batch_norm=False, **TINY), scale=0.1)
  dropped = RealNVPChain((8, 8, 1), num_scales=2, batch_norm=False, dropout_rate=0.5, **TINY)
  x = _pixels((8, 8, 1), batch=4)
  _dist(dropped).log_prob(x)                   # builds the networks
  for source, target in zip(plain.variables, dropped.variables):
    target.assign(source)
  # Inference: the same density as without dropout, and still an exact bijection.
  np.testing.assert_allclose(_dist(dropped).log_prob(x), _dist(plain).log_prob(x), rtol=1e-5)
  z = dropped.inverse(x)
  np.testing.assert_allclose(dropped.forward(z), x, atol=1e-4)
  # Training: every pass draws its own mask.
  first, second = (_dist(dropped).log_prob(tf.identity(x), bijector_kwargs={'training': True})
                   for _ in range(2))
  assert np.abs(first - second).max() > 1e-2


def test_copy_rebuilds_and_records_its_own_parameters():
  flow = RealNVPChain((8, 8, 1), num_scales=2, **TINY)
  assert flow.parameters['event_shape'] == (8, 8, 1)
  same = flow.copy()
  assert same == flow and same.couplings[0] is flow.couplings[0]
  smaller = flow.copy(num_scales=1)
  assert smaller != flow and smaller.num_scales == 1 and len(smaller.couplings) == 4


def test_class_conditional_chain_samples_and_scores_per_class():
  flow = perturb(RealNVPChain((8, 8, 1), num_scales=2, num_classes=3, **TINY), scale=0.2)
  dist = _dist(flow)
  labels = tf.constant([0, 1, 2, 2])
  x = dist.sample(4, seed=1, bijector_kwargs={'conditional_input': labels})
  lp = dist.log_prob(fresh(x), bijector_kwargs={'conditional_input': labels})
  lp_onehot = dist.log_prob(fresh(x), bijector_kwargs={'conditional_input':
                                                       tf.one_hot(labels, 3)})
  np.testing.assert_allclose(lp, lp_onehot, rtol=1e-6)
  other = dist.log_prob(fresh(x), bijector_kwargs={'conditional_input': (labels + 1) % 3})
  assert not np.allclose(lp, other)
  grid = dist.sample((2, 3), seed=2, bijector_kwargs={'conditional_input': tf.constant(
      [[0, 1, 2], [0, 1, 2]])})
  assert grid.shape == (2, 3, 8, 8, 1)
  with pytest.raises(ValueError, match='pass the labels'):
    dist.log_prob(x)
  with pytest.raises(ValueError, match='does not match the batch shape'):
    dist.log_prob(x, bijector_kwargs={'conditional_input': tf.constant([0, 1])})
  assert flow.class_conditional_prior is not None
  assert RealNVPChain((4,), num_classes=2, class_conditional_prior=False
                      ).class_conditional_prior is None


def test_normalisation_defaults_depend_on_the_kind_of_event():
  def kinds(flow):
    return [type(b).__name__ for b in flow._walk()  # pylint: disable=protected-access
            if not isinstance(b, MaskedAffineCoupling)]

  vector = kinds(RealNVPChain((3,), num_couplings=2, hidden_units=(4,)))
  assert vector == ['Invertible1x1Conv', 'ActNorm'] * 2          # Glow's step of flow
  paper = kinds(RealNVPChain((3,), num_couplings=2, hidden_units=(4,), batch_norm=True))
  assert paper == ['InvertibleBatchNorm'] * 2
  bare = kinds(RealNVPChain((3,), num_couplings=2, hidden_units=(4,), act_norm=False,
                            invertible_1x1_conv=False))
  assert bare == []
  image = RealNVPChain((8, 8, 1), num_scales=1, **TINY)
  assert image.batch_norms and not image.act_norms
  assert 'Invertible1x1Conv' not in kinds(image)
  glow = RealNVPChain((8, 8, 1), num_scales=1, act_norm=True, **TINY)
  assert glow.act_norms and not glow.batch_norms


@pytest.mark.parametrize('batch_norm', [False, True])
def test_vector_chain(batch_norm):
  flow = RealNVPChain((3,), num_couplings=4, hidden_units=(16,), batch_norm=batch_norm)
  assert len(flow.couplings) == 4
  assert len(flow.batch_norms if batch_norm else flow.act_norms) == 4
  assert all(isinstance(b, InvertibleBatchNorm) for b in flow.batch_norms)
  assert all(isinstance(c, MaskedAffineCoupling) for c in flow.couplings)
  dist = _dist(flow)
  data = tf.random.stateless_normal((256, 3), [1, 2]) * [3., 0.5, 1.] + 2.
  step = _training_step(dist, keras.optimizers.Adam(1e-2))
  losses = [float(step(data)) for _ in range(60)]
  # The data's own entropy, 3/2 log(2 pi e) + log(3 * 0.5 * 1) nats: what a fit reaches.
  entropy = 1.5 * np.log(2 * np.pi * np.e) + np.log(1.5)
  assert losses[-1] < min(losses[0] - 0.1, entropy + 0.1), (entropy, losses)
  x = dist.sample(4, seed=3)
  np.testing.assert_allclose(flow.forward(fresh(flow.inverse(fresh(x)))), x,
                             atol=1e-4)


def test_summary_lists_the_multiscale_structure():
  text = RealNVPChain((8, 8, 1), num_scales=2, **TINY).summary()
  assert '(8, 8, 1) -> (4, 4, 4)' in text
  assert text.index('scale_0_squeeze') < text.index('scale_0_factor_out')
  assert text.index('scale_0_factor_out') < text.index('scale_1_checkerboard')
  assert text.count('mask=checkerboard') == 7
  assert text.count('mask=channel') == 3
