"""Labels as NumPy arrays, Python lists and variables reach a class-conditional flow correctly.

The pass cache keys a NumPy or list `conditional_input` by its contents: an array whose values
change in place between two calls on the same input tensor (a loop `labels.fill(k)` over the
classes) must give each class's log-likelihood, never the first call's.
"""

import flowtest
import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp import RealNVPChain

NUM_CLASSES = 3


@pytest.fixture
def dist():
  flow = RealNVPChain((6,), num_couplings=2, hidden_units=(8,), num_classes=NUM_CLASSES)
  flowtest.perturb(flow, seed=0, scale=0.5)
  return flowtest.distribution(flow)


def log_prob(dist, x, labels):
  return dist.log_prob(x, bijector_kwargs={'conditional_input': labels}).numpy()


def test_labels_changed_in_place_give_the_new_classes_log_prob(dist):
  x = tf.random.stateless_normal((4, 6), [1, 2])
  labels = np.zeros(4, np.int32)
  per_class = []
  for k in range(NUM_CLASSES):   # the pattern of a loop over the classes
    labels.fill(k)
    per_class.append(log_prob(dist, x, labels))
  for k in range(NUM_CLASSES):
    np.testing.assert_allclose(per_class[k], log_prob(dist, x, tf.fill([4], k)), rtol=1e-5)


def test_python_list_labels_equal_array_labels(dist):
  x = tf.random.stateless_normal((3, 6), [3, 4])
  np.testing.assert_allclose(log_prob(dist, x, [0, 2, 1]),
                             log_prob(dist, x, np.array([0, 2, 1])), rtol=1e-5)


def test_labels_in_a_variable_assigned_between_calls(dist):
  x = tf.random.stateless_normal((4, 6), [7, 8])
  labels = tf.Variable(tf.zeros([4], tf.int32))
  first = log_prob(dist, x, labels)
  labels.assign(tf.fill([4], 2))
  np.testing.assert_allclose(log_prob(dist, x, labels), log_prob(dist, x, tf.fill([4], 2)),
                             rtol=1e-5)
  assert not np.allclose(first, log_prob(dist, x, labels))


def test_wrong_label_count_names_the_shape_given(dist):
  x = tf.random.stateless_normal((5, 6), [5, 6])
  with pytest.raises(ValueError, match=r'conditional_input of shape \(4,\)'):
    log_prob(dist, x, tf.constant([0, 1, 2, 0]))
