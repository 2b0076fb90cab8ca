"""Vector flows on the 2-D toys: ours and TFP's RealNVP, one training loop.

Data: `tfp_realnvp.data.make_toy_2d` (standardised), 20,000 training points
from `seed` and 20,000 held-out points from `seed + 10000`; batches of the
package's `toy_pipeline`; the package's maximum-likelihood step (Adam, L2 on
our couplings' scales, clipping at 100). Score: held-out negative
log-likelihood in nats per point.
"""

import math
import time

from benchkit.environment import tf_modules

NUM_POINTS = 20000


class PlainDistribution:
  """A distribution whose variables are listed by hand.

  TFP's `real_nvp_default_template` makes its variables at the first call
  and does not report them (a TensorFlow Probability thread,
  https://github.com/tensorflow/probability/issues/1439), and TFP's `Chain`
  takes no `training` keyword; this gives the package's training step both.
  """

  def __init__(self, dist, variables):
    self._dist = dist
    self.trainable_variables = tuple(variables)

  def log_prob(self, x, bijector_kwargs=None):
    del bijector_kwargs
    return self._dist.log_prob(x)


TOYS = ('sklearn_moons', 'moons', 'circles', 'blobs', 'checkerboard',
        '8gaussians', 'spirals')


def toy_data(name='sklearn_moons', seed=0):
  """`(train, test)`, float32 arrays of 20,000 points each.

  'sklearn_moons': scikit-learn's `make_moons(noise=0.05)` in its own units
  (not standardised); the other names: `tfp_realnvp.data.make_toy_2d`
  (standardised, moons with noise 0.1).
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  if name == 'sklearn_moons':
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
    return tuple(datasets.make_moons(NUM_POINTS, noise=0.05,
                                     random_state=s)[0].astype(np.float32)
                 for s in (seed, seed + 10000))
  from tfp_realnvp import data as data_lib  # pylint: disable=g-import-not-at-top
  return (data_lib.make_toy_2d(name, NUM_POINTS, seed=seed),
          data_lib.make_toy_2d(name, NUM_POINTS, seed=seed + 10000))


def gaussian_mixture_nll(train, test, components=16, seed=0):
  """Held-out NLL of scikit-learn's `GaussianMixture` fitted to `train`."""
  from sklearn import mixture  # pylint: disable=g-import-not-at-top
  model = mixture.GaussianMixture(components, random_state=seed).fit(train)
  return -float(model.score(test))


def tfp_model(num_couplings=8, hidden_units=(128, 128), seed=0):
  """`(distribution to train, distribution, l2 variables)` of TFP's chain."""
  tf, _ = tf_modules()
  from benchkit import models  # pylint: disable=g-import-not-at-top
  dist, _ = models.build_tfp_realnvp_vector(2, num_couplings, hidden_units,
                                           seed=seed)
  with tf.GradientTape() as tape:  # Creates the template's variables.
    dist.log_prob(tf.zeros((1, 2)))
  return PlainDistribution(dist, tape.watched_variables()), dist, ()


def our_model(seed=0, **kwargs):
  """`(distribution to train, distribution, l2 variables)` of RealNVPChain."""
  import keras  # pylint: disable=g-import-not-at-top

  from benchkit import variants  # pylint: disable=g-import-not-at-top
  from tfp_realnvp import RealNVPChain  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  flow = RealNVPChain(event_shape=(2,), **kwargs)
  dist = variants.distribution(flow, (2,))
  return dist, dist, tuple(flow.l2_regularized_variables)


def train_and_score(model, train, test, steps=3000, batch_size=256,
                    learning_rate=1e-3, decay=None, seed=0, l2_scale=5e-5,
                    eval_every=250):
  """Trains `model` (from `tfp_model` / `our_model`); returns a dict of figures.

  `decay='cosine'` decays the learning rate to 5% of it over the steps. The
  held-out NLL is also taken every `eval_every` steps (`curve`), so that a run
  that diverges says when, and what it had reached before (`diverged_by_step`,
  `best_finite_test_nll`).
  """
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  tf, _ = tf_modules()
  from tfp_realnvp import data as data_lib  # pylint: disable=g-import-not-at-top
  from tfp_realnvp.train import maximum_likelihood_step  # pylint: disable=g-import-not-at-top
  trained, dist, l2_variables = model
  rate = learning_rate
  if decay == 'cosine':
    rate = keras.optimizers.schedules.CosineDecay(learning_rate, steps,
                                                  alpha=0.05)
  step = maximum_likelihood_step(trained, keras.optimizers.Adam(rate),
                                 l2_variables=l2_variables, l2_scale=l2_scale)
  log_prob = tf.function(lambda x: dist.log_prob(x))

  def held_out():
    values = np.concatenate([log_prob(test[i:i + 5000]).numpy()
                             for i in range(0, len(test), 5000)])
    finite = np.isfinite(values)
    # A point whose log-density is not finite (an unbounded scale overflowing)
    # would make the mean NaN: it is counted apart and left out of the mean.
    nll = -float(np.mean(values[finite])) if finite.any() else float('nan')
    return nll, int(np.sum(~finite))

  batches = iter(data_lib.toy_pipeline(train, batch_size, seed=seed))
  curve, seconds, diverged_by_step = [], 0., None
  done = 0
  while done < steps:
    chunk = min(eval_every, steps - done)
    start = time.perf_counter()
    for _ in range(chunk):
      last = step(next(batches))
    float(last)
    seconds += time.perf_counter() - start
    done += chunk
    nll, nonfinite = held_out()
    curve.append(dict(step=done, test_nll=nll, test_nonfinite=nonfinite,
                      train_nll_last_batch=float(last)))
    if diverged_by_step is None and not (math.isfinite(nll)
                                         and math.isfinite(float(last))):
      diverged_by_step = done
  finite_nlls = [c['test_nll'] for c in curve if math.isfinite(c['test_nll'])]
  return dict(test_nll=curve[-1]['test_nll'],
              test_nonfinite=curve[-1]['test_nonfinite'],
              train_nll_last_batch=curve[-1]['train_nll_last_batch'],
              diverged_by_step=diverged_by_step,
              best_finite_test_nll=min(finite_nlls) if finite_nlls else None,
              curve=curve,
              params=sum(int(np.prod(v.shape))
                         for v in trained.trainable_variables),
              seconds=seconds)
