"""tfp_realnvp.classifier: Bayes' rule over a class-conditional flow, checked in closed form."""

import math

import flowtest
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp import RealNVPChain
from tfp_realnvp.classifier import GenerativeClassifier
from tfp_realnvp.classifier import accuracy
from tfp_realnvp.classifier import class_frequencies
from tfp_realnvp.classifier import class_log_posteriors
from tfp_realnvp.classifier import conditional_num_classes
from tfp_realnvp.data import dequantize

tfd = tfp.distributions

NUM_CLASSES = 3
DIM = 4
# Class means and scales far enough apart that every class wins somewhere.
LOCS = np.array([[-2., 0., 1., 0.], [1.5, 1., -1., 0.5], [0., -1.5, 0., 2.]], np.float32)
LOG_SCALES = np.array([[0., 0.2, -0.3, 0.], [0.4, -0.2, 0., 0.3], [-0.3, 0., 0.5, -0.1]],
                      np.float32)
PRIOR = np.array([0.5, 0.3, 0.2])


def gaussian_flow_distribution():
  """A conditional vector flow that is exactly `N(LOCS[y], diag(exp(LOG_SCALES[y]))^2)`.

  Without normalisation or mixing layers, the fresh couplings are the identity
  (zero-initialised outputs), so the learned class prior alone shapes the density.
  """
  flow = RealNVPChain((DIM,), num_couplings=2, hidden_units=(8,), batch_norm=False,
                      act_norm=False, invertible_1x1_conv=False, num_classes=NUM_CLASSES)
  flow.class_conditional_prior.loc.assign(LOCS)
  flow.class_conditional_prior.log_scale.assign(LOG_SCALES)
  return flowtest.distribution(flow)


def closed_form_log_likelihoods(x):
  """`log N(x; LOCS[k], diag(exp(LOG_SCALES[k]))^2)` for every class, float64 `(N, K)`."""
  x = np.asarray(x, np.float64)[:, None, :]
  scales = np.exp(LOG_SCALES.astype(np.float64))
  z = (x - LOCS) / scales
  return (-0.5 * z ** 2 - np.log(scales) - 0.5 * math.log(2 * math.pi)).sum(-1)


def closed_form_log_posteriors(x, prior):
  joint = closed_form_log_likelihoods(x) + np.log(prior)
  return joint - np.log(np.exp(joint).sum(axis=1, keepdims=True))


def gaussian_points(count=60, seed=0):
  rng = np.random.default_rng(seed)
  labels = np.arange(count) % NUM_CLASSES
  x = LOCS[labels] + 1.5 * rng.standard_normal((count, DIM))
  return x.astype(np.float32), labels


def test_flow_posteriors_match_bayes_rule_in_closed_form():
  x, _ = gaussian_points()
  classifier = GenerativeClassifier(gaussian_flow_distribution(), class_prior=PRIOR,
                                    batch_size=7)
  assert classifier.num_classes == NUM_CLASSES
  np.testing.assert_allclose(classifier.class_log_likelihoods(x),
                             closed_form_log_likelihoods(x), atol=1e-4)
  expected = closed_form_log_posteriors(x, PRIOR)
  np.testing.assert_allclose(classifier.log_posteriors(x), expected, atol=1e-4)
  np.testing.assert_allclose(np.exp(classifier.log_posteriors(x)).sum(1), 1., atol=1e-9)
  np.testing.assert_array_equal(classifier.predict(x), np.argmax(expected, 1))
  # The points are noisy enough that every class is predicted and some are wrong.
  assert set(classifier.predict(x)) == set(range(NUM_CLASSES))


def test_function_density_matches_bayes_rule_and_gets_its_label_dtype():
  seen_dtypes = []

  def log_prob(x, labels):
    seen_dtypes.append(labels.dtype)
    locs = tf.gather(LOCS, labels)
    scales = tf.exp(tf.gather(LOG_SCALES, labels))
    return tfd.MultivariateNormalDiag(locs, scales).log_prob(x)

  x, labels = gaussian_points(seed=1)
  classifier = GenerativeClassifier(log_prob, num_classes=NUM_CLASSES, batch_size=16,
                                    label_dtype=tf.int64)
  expected = closed_form_log_posteriors(x, np.full(NUM_CLASSES, 1. / NUM_CLASSES))
  np.testing.assert_allclose(classifier.log_posteriors(x), expected, atol=1e-4)
  assert set(seen_dtypes) == {tf.int64}
  expected_accuracy = np.mean(np.argmax(expected, 1) == labels)
  assert classifier.accuracy(x, labels) == pytest.approx(expected_accuracy)
  assert 1. / NUM_CLASSES < expected_accuracy < 1.   # a case that can tell a bug apart


def test_class_prior_breaks_ties_toward_the_frequent_class():
  def same_density(x, labels):
    del labels
    return -tf.reduce_sum(x ** 2, axis=-1)

  x = np.random.default_rng(0).standard_normal((5, DIM)).astype(np.float32)
  prior = class_frequencies(np.array([0, 2, 2, 1, 2, 2]), NUM_CLASSES)
  np.testing.assert_allclose(prior, [1 / 6, 1 / 6, 4 / 6])
  classifier = GenerativeClassifier(same_density, num_classes=NUM_CLASSES, class_prior=prior)
  np.testing.assert_array_equal(classifier.predict(x), [2] * 5)
  np.testing.assert_allclose(np.exp(classifier.log_posteriors(x)),
                             np.broadcast_to(prior, (5, NUM_CLASSES)), atol=1e-12)
  np.testing.assert_allclose(classifier.log_prior, np.log(prior))


def image_flow_distribution(num_classes=4, class_conditional_prior=True):
  flow = RealNVPChain((4, 4, 1), num_scales=1, hidden_channels=4, num_res_blocks=1,
                      num_classes=num_classes, class_conditional_prior=class_conditional_prior)
  flowtest.perturb(flow, seed=3, scale=0.2)
  return flowtest.distribution(flow)


def test_image_flow_log_likelihoods_equal_one_call_per_class():
  """Tiling the images over the classes gives what a separate call per class gives.

  Without the class prior, the labels reach the flow through the couplings only.
  """
  dist = image_flow_distribution(class_conditional_prior=False)
  x = flowtest.pixels((4, 4, 1), batch=5, seed=2)
  per_class = np.stack([
      dist.log_prob(tf.constant(x), bijector_kwargs={'conditional_input': tf.fill([5], k)})
      for k in range(4)], axis=1)
  # The labels matter: the columns differ.
  assert np.ptp(per_class, axis=1).min() > 1e-3
  for batch_size in (2, 100):
    classifier = GenerativeClassifier(dist, batch_size=batch_size)
    np.testing.assert_allclose(classifier.class_log_likelihoods(x), per_class, rtol=1e-5,
                               atol=1e-4)


def test_classifying_runs_in_inference_mode():
  dist = image_flow_distribution()
  before = [v.numpy().copy() for v in dist.bijector.variables]
  GenerativeClassifier(dist).predict(flowtest.pixels((4, 4, 1), batch=6))
  for old, v in zip(before, dist.bijector.variables):
    np.testing.assert_array_equal(old, v.numpy(), err_msg=v.name)


def test_accepts_one_hot_labels_and_counts_correct_predictions():
  x, labels = gaussian_points(count=30, seed=4)
  classifier = GenerativeClassifier(gaussian_flow_distribution())
  predictions = classifier.predict(x)
  one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
  assert classifier.accuracy(x, one_hot) == classifier.accuracy(x, labels)
  assert classifier.accuracy(x, labels) == np.mean(predictions == labels)
  assert classifier.accuracy(x, predictions) == 1.
  assert classifier.class_log_likelihoods(x[:0]).shape == (0, NUM_CLASSES)


def test_conditional_num_classes_searches_composites():
  flow = RealNVPChain((DIM,), num_couplings=2, hidden_units=(8,), num_classes=5)
  assert conditional_num_classes(flow) == 5
  assert conditional_num_classes(tfp.bijectors.Chain([tfp.bijectors.Shift(1.), flow])) == 5
  assert conditional_num_classes(tfp.bijectors.Invert(flow)) == 5
  assert conditional_num_classes(
      RealNVPChain((DIM,), num_couplings=2, hidden_units=(8,))) is None


# -- bad inputs ---------------------------------------------------------------------------
def test_wrong_label_count_is_named():
  x, labels = gaussian_points(count=6)
  classifier = GenerativeClassifier(gaussian_flow_distribution())
  with pytest.raises(ValueError, match='got 5 labels for 6 inputs'):
    classifier.accuracy(x, labels[:5])


@pytest.mark.parametrize('labels, message', [
    (np.array([0, 1, 3, 0, 1, 2]), r'labels must be in \[0, 3\)'),
    (np.array([0, -1, 2, 0, 1, 2]), r'labels must be in \[0, 3\)'),
    (np.array([[0, 1, 2], [0, 1, 2]]), r'integer labels must have shape \(N,\)'),
    (np.array([0., 1., 2., 0., 1., 2.]), 'must be integers'),
    (np.full((6, 3), 1. / 3), 'not one-hot rows'),
    (np.eye(4)[[0, 1, 2, 0, 1, 2]], r'one-hot labels must have shape \(N, 3\)'),
])
def test_bad_labels_are_named(labels, message):
  x, _ = gaussian_points(count=6)
  with pytest.raises(ValueError, match=message):
    GenerativeClassifier(gaussian_flow_distribution()).accuracy(x, labels)


def test_unconditional_flow_is_refused():
  dist = flowtest.distribution(RealNVPChain((DIM,), num_couplings=2, hidden_units=(8,)))
  with pytest.raises(ValueError, match='not class-conditional.*num_classes=K'):
    GenerativeClassifier(dist)


def test_bijector_and_non_callables_are_refused():
  flow = RealNVPChain((DIM,), num_couplings=2, hidden_units=(8,), num_classes=3)
  with pytest.raises(TypeError, match='pass the distribution of the flow'):
    GenerativeClassifier(flow)
  with pytest.raises(TypeError, match='must be a tfd.Distribution or a callable'):
    GenerativeClassifier(np.zeros(3), num_classes=3)


def test_num_classes_must_be_known_and_agree():
  with pytest.raises(ValueError, match='num_classes is needed with a log_prob function'):
    GenerativeClassifier(lambda x, y: x)
  with pytest.raises(ValueError, match='num_classes=4 disagrees with the flow.*3 classes'):
    GenerativeClassifier(gaussian_flow_distribution(), num_classes=4)
  with pytest.raises(ValueError, match='num_classes must be >= 2'):
    GenerativeClassifier(lambda x, y: x, num_classes=1)


@pytest.mark.parametrize('prior, message', [
    ([0.5, 0.5], r'shape \(3,\)'),
    ([0.5, 0.3, 0.3], 'must sum to 1'),
    ([1.2, -0.1, -0.1], 'non-negative'),
    ('frequencies', "None, 'uniform' or an array"),
])
def test_bad_class_prior_is_named(prior, message):
  with pytest.raises(ValueError, match=message):
    GenerativeClassifier(gaussian_flow_distribution(), class_prior=prior)


def test_wrong_event_shape_and_bad_function_output_are_named():
  classifier = GenerativeClassifier(gaussian_flow_distribution())
  with pytest.raises(ValueError, match=r'x must have shape \(N,\) \+ \(4,\).*\(2, 5\)'):
    classifier.predict(np.zeros((2, 5), np.float32))
  scalar = GenerativeClassifier(lambda x, y: tf.reduce_sum(x), num_classes=3)
  with pytest.raises(ValueError, match=r'log_prob returned shape \(\) for 6 events'):
    scalar.predict(np.zeros((2, 4), np.float32))
  with pytest.raises(ValueError, match='batch_size must be a positive int'):
    GenerativeClassifier(gaussian_flow_distribution(), batch_size=0)


def test_class_log_posteriors_checks_its_inputs():
  np.testing.assert_allclose(class_log_posteriors([[0., 0.]]), [[-math.log(2)] * 2])
  np.testing.assert_allclose(class_log_posteriors([[0., -np.inf]]), [[0., -np.inf]])
  with pytest.raises(ValueError, match='NaN'):
    class_log_posteriors([[0., np.nan]])
  with pytest.raises(ValueError, match='no class with a finite'):
    class_log_posteriors([[0., 1.], [-np.inf, -np.inf]])
  with pytest.raises(ValueError, match=r'log_prior must have shape \(2,\)'):
    class_log_posteriors([[0., 1.]], np.log([0.2, 0.3, 0.5]))
  with pytest.raises(ValueError, match=r'shape \(N, K\)'):
    class_log_posteriors([0., 1.])


def test_class_frequencies_and_accuracy_check_their_inputs():
  with pytest.raises(ValueError, match='empty'):
    class_frequencies(np.zeros([0], np.int64), 3)
  with pytest.raises(ValueError, match=r'in \[0, 3\)'):
    class_frequencies([0, 3], 3)
  assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
  with pytest.raises(ValueError, match='one length'):
    accuracy([0, 1], [0, 1, 2])


def test_image_log_likelihoods_average_the_density_over_dequantization_draws():
  dist = image_flow_distribution()
  images = np.random.default_rng(5).integers(0, 17, (6, 4, 4, 1))
  classifier = GenerativeClassifier(dist, batch_size=4)
  one = classifier.image_class_log_likelihoods(images, 17, num_samples=1, seed=7)
  np.testing.assert_allclose(
      one, classifier.class_log_likelihoods(dequantize(images, 17, 7)), rtol=1e-6)
  rng = np.random.default_rng(7)
  draws = np.stack([classifier.class_log_likelihoods(dequantize(images, 17, rng))
                    for _ in range(3)])
  expected = np.log(np.mean(np.exp(draws), axis=0))
  three = classifier.image_class_log_likelihoods(images, 17, num_samples=3, seed=7)
  np.testing.assert_allclose(three, expected, rtol=1e-6)
  assert not np.allclose(three, one)
  with pytest.raises(ValueError, match='num_samples must be an int >= 1'):
    classifier.image_class_log_likelihoods(images, 17, num_samples=0)
  with pytest.raises(ValueError, match='images must be integers'):
    classifier.image_class_log_likelihoods(images / 17., 17)
