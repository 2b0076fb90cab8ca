"""The OOD scores on cases with known answers: Gaussians, PNG files, perturbations."""

import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import integrate
from scipy import optimize
from scipy import stats

from tfp_realnvp import ood
from tfp_realnvp.train import make_distribution
from tfp_realnvp.train import make_flow

tfd = tfp.distributions

NUM_SAMPLES = 40_000
# Standard error of an AUROC estimated from 40k + 40k samples is below 0.003.
AUROC_TOLERANCE = 0.012


def _gaussian(mean, scale=1.):
  mean = np.asarray(mean, np.float32)
  return tfd.MultivariateNormalDiag(mean, scale * np.ones_like(mean))


def _log_probs(distribution, x):
  return distribution.log_prob(x).numpy().astype(np.float64)


@pytest.mark.parametrize('distance', [0.5, 1., 2.])
def test_bits_per_dim_score_on_shifted_gaussian(distance):
  """-log p of N(0, I_2) against N(mu, I_2): AUROC = 1 - exp(-d^2 / 4) / 2.

  The score is ||x||^2 / 2 + const; ||x||^2 is chi2(2) in distribution and
  non-central chi2(2, d^2) out of it, and P(T_ood > T_in) = 1 - E[exp(-T_ood / 2)].
  """
  model = _gaussian([0., 0.])
  shifted = _gaussian([distance / np.sqrt(2.), distance / np.sqrt(2.)])
  x_in = model.sample(NUM_SAMPLES, seed=1)
  x_ood = shifted.sample(NUM_SAMPLES, seed=2)
  in_scores = ood.bits_per_dim_scores(_log_probs(model, x_in), (2,))
  ood_scores = ood.bits_per_dim_scores(_log_probs(model, x_ood), (2,))
  expected = 1. - np.exp(-distance**2 / 4.) / 2.
  assert ood.auroc(in_scores, ood_scores) == pytest.approx(expected, abs=AUROC_TOLERANCE)


@pytest.mark.parametrize('distance', [0.5, 1., 2.])
def test_likelihood_ratio_on_shifted_gaussian(distance):
  """With the OOD density as background, the score is the Neyman-Pearson one.

  log p_0(x) - log p(x) = mu . x - |mu|^2 / 2 is N(-d^2/2, d^2) in distribution and
  N(d^2/2, d^2) out of it: AUROC = Phi(d / sqrt(2)).
  """
  model = _gaussian([0., 0.])
  background = _gaussian([distance, 0.])
  x_in = model.sample(NUM_SAMPLES, seed=3)
  x_ood = background.sample(NUM_SAMPLES, seed=4)
  in_scores = ood.likelihood_ratio_scores(_log_probs(model, x_in),
                                          _log_probs(background, x_in))
  ood_scores = ood.likelihood_ratio_scores(_log_probs(model, x_ood),
                                           _log_probs(background, x_ood))
  expected = stats.norm.cdf(distance / np.sqrt(2.))
  assert ood.auroc(in_scores, ood_scores) == pytest.approx(expected, abs=AUROC_TOLERANCE)


def test_typicality_catches_what_likelihood_misses():
  """N(0, I_D) against the more concentrated N(0, 0.8^2 I_D), D = 20.

  With T = ||x||^2 (chi2(D) in distribution, 0.64 chi2(D) out of it), raw bits/dim
  ranks by T: AUROC = P(0.64 X > Y) = F_{D,D}(0.64), below chance. Typicality ranks
  by |T - D| / 2: AUROC = E[P(|T_in - D| < |T_ood - D|)], by quadrature.
  """
  dims, scale = 20, 0.8
  model = _gaussian(np.zeros(dims))
  reference = _log_probs(model, model.sample(NUM_SAMPLES, seed=5))
  in_lp = _log_probs(model, model.sample(NUM_SAMPLES, seed=6))
  ood_lp = _log_probs(model, _gaussian(np.zeros(dims), scale).sample(NUM_SAMPLES, seed=7))

  raw = ood.auroc(ood.bits_per_dim_scores(in_lp, (dims,)),
                  ood.bits_per_dim_scores(ood_lp, (dims,)))
  assert raw == pytest.approx(stats.f.cdf(scale**2, dims, dims), abs=AUROC_TOLERANCE)

  def inside(c):
    return stats.chi2.cdf(dims + c, dims) - stats.chi2.cdf(max(dims - c, 0.), dims)
  expected, _ = integrate.quad(
      lambda y: stats.chi2.pdf(y, dims) * inside(abs(scale**2 * y - dims)), 0., np.inf,
      limit=200)
  typical = ood.auroc(ood.typicality_scores(in_lp, reference),
                      ood.typicality_scores(ood_lp, reference))
  assert typical == pytest.approx(expected, abs=AUROC_TOLERANCE)
  assert typical > 0.65 > 0.2 > raw


def test_typicality_score_values():
  """The mode of N(0, I_D) is D/2 nats away from the typical log-likelihood."""
  dims = 30
  model = _gaussian(np.zeros(dims))
  reference = _log_probs(model, model.sample(NUM_SAMPLES, seed=8))
  # The reference mean estimates -H = -(D/2)(1 + log 2 pi).
  entropy = dims / 2. * (1. + np.log(2. * np.pi))
  assert -reference.mean() == pytest.approx(entropy, abs=0.05)
  at_mode = ood.typicality_scores(_log_probs(model, tf.zeros([1, dims])), reference)
  assert at_mode[0] == pytest.approx(dims / 2., abs=0.05)
  np.testing.assert_allclose(ood.typicality_scores([1., -3.], [0., -2.]), [2., 2.])
  with pytest.raises(ValueError, match='reference_log_probs'):
    ood.typicality_scores([1.], [])
  with pytest.raises(ValueError, match='non-finite'):
    ood.typicality_scores([1.], [0., np.inf])


def _batch_test_expectations(dims, batch_size, alpha, scale):
  """Threshold and rejection rate of the batch test with the exact entropy.

  A batch of M in-distribution inputs has eps = |S / (2M) - D / 2|, S ~ chi2(MD);
  out of distribution (scale s) S becomes s^2 chi2(MD).
  """
  df = dims * batch_size

  def coverage(t, s=1.):
    low = max(df - 2. * batch_size * t, 0.) / s**2
    return stats.chi2.cdf((df + 2. * batch_size * t) / s**2, df) - stats.chi2.cdf(low, df)
  threshold = optimize.brentq(lambda t: coverage(t) - (1. - alpha), 1e-6, 10. * dims)
  return threshold, 1. - coverage(threshold, scale)


def test_batch_typicality_test_rates():
  dims, batch_size, alpha, scale = 20, 5, 0.05, 0.8
  threshold, power = _batch_test_expectations(dims, batch_size, alpha, scale)
  model = _gaussian(np.zeros(dims))
  test = ood.TypicalityTest(_log_probs(model, model.sample(NUM_SAMPLES, seed=9)),
                            _log_probs(model, model.sample(NUM_SAMPLES, seed=10)),
                            batch_size=batch_size, alpha=alpha, num_bootstrap=8000, seed=0)
  assert test.entropy == pytest.approx(dims / 2. * (1. + np.log(2. * np.pi)), abs=0.05)
  assert test.threshold == pytest.approx(threshold, rel=0.05)
  in_batches = _log_probs(model, model.sample(NUM_SAMPLES, seed=11)).reshape(-1, batch_size)
  ood_model = _gaussian(np.zeros(dims), scale)
  ood_batches = _log_probs(model, ood_model.sample(NUM_SAMPLES, seed=12)).reshape(
      -1, batch_size)
  assert test.is_ood(in_batches).mean() == pytest.approx(alpha, abs=0.012)
  assert test.is_ood(ood_batches).mean() == pytest.approx(power, abs=0.03)
  # The statistic itself, on a batch with a known mean.
  np.testing.assert_allclose(test.statistic([[-test.entropy + 3.] * batch_size]), [3.])


def test_typicality_test_batches_and_errors():
  test = ood.TypicalityTest(np.arange(10.), np.arange(10.), batch_size=3, seed=0)
  batches = test.random_batches(np.arange(5.), num_batches=4, seed=1)
  assert batches.shape == (4, 3)
  assert all(len(set(row)) == 3 for row in batches)     # no repeats within a batch
  with pytest.raises(ValueError, match='3 inputs on their last axis'):
    test.is_ood(np.zeros((2, 4)))
  with pytest.raises(ValueError, match='at least 3'):
    test.random_batches([1., 2.], 1)
  with pytest.raises(ValueError, match='batch_size'):
    ood.TypicalityTest([0.], [0.], batch_size=0)
  with pytest.raises(ValueError, match='alpha'):
    ood.TypicalityTest([0.], [0.], batch_size=1, alpha=1.)


def _read_png(data):
  """A PNG decoder for 8-bit grey images (zlib only): checks every chunk's CRC."""
  assert data[:8] == b'\x89PNG\r\n\x1a\n'
  position, chunks = 8, []
  while position < len(data):
    length, kind = struct.unpack('>I4s', data[position:position + 8])
    body = data[position + 8:position + 8 + length]
    (crc,) = struct.unpack('>I', data[position + 8 + length:position + 12 + length])
    assert zlib.crc32(kind + body) == crc, kind
    chunks.append((kind, body))
    position += 12 + length
  assert position == len(data)
  assert [kind for kind, _ in chunks][0] == b'IHDR' and chunks[-1][0] == b'IEND'
  width, height, depth, color, _, _, interlace = struct.unpack('>IIBBBBB', chunks[0][1])
  assert (depth, color, interlace) == (8, 0, 0)
  raw = zlib.decompress(b''.join(body for kind, body in chunks if kind == b'IDAT'))
  rows = np.frombuffer(raw, np.uint8).reshape(height, width + 1).astype(np.int64)
  image = np.zeros((height, width), np.int64)
  for r in range(height):
    kind, line = rows[r, 0], rows[r, 1:]
    up = image[r - 1] if r else np.zeros(width, np.int64)
    for c in range(width):
      left = image[r, c - 1] if c else 0
      up_left = up[c - 1] if r and c else 0
      if kind == 0:
        predictor = 0
      elif kind == 1:
        predictor = left
      elif kind == 2:
        predictor = up[c]
      elif kind == 3:
        predictor = (left + up[c]) // 2
      else:
        p = left + up[c] - up_left
        distances = [abs(p - left), abs(p - up[c]), abs(p - up_left)]
        predictor = (left, up[c], up_left)[int(np.argmin(distances))]
      image[r, c] = (line[c] + predictor) % 256
  return image


def test_png_bits_per_dim_is_the_length_of_a_lossless_code():
  rng = np.random.default_rng(0)
  grid = np.indices((12, 16)).sum(axis=0)
  images = np.stack([
      np.full((12, 16), 200),                       # constant
      (grid * 9) % 256,                             # smooth ramp
      rng.integers(0, 256, (12, 16)),               # noise
  ])[..., None].astype(np.uint8)
  bits = ood.png_bits_per_dim(images)
  for image, value in zip(images, bits):
    data = tf.io.encode_png(image, compression=ood.complexity.PNG_COMPRESSION).numpy()
    # The score is the file's length, and the file decodes to the image.
    assert value == 8. * len(data) / image.size
    np.testing.assert_array_equal(_read_png(data), image[..., 0])
  assert bits[0] < bits[1] < bits[2]


def test_png_of_noise_needs_at_least_8_bits_per_dim():
  """No lossless code beats the entropy of uniform 8-bit noise, 8 bits/dim."""
  noise = np.random.default_rng(1).integers(0, 256, (50, 28, 28, 1)).astype(np.uint8)
  bits = ood.png_bits_per_dim(noise)
  assert bits.mean() >= 8.
  assert bits.mean() < 9.5
  constant = np.full((5, 28, 28, 1), 17, np.uint8)
  assert ood.png_bits_per_dim(constant).max() < 1.


def test_complexity_score_under_a_uniform_model():
  """A density uniform on [0, 1]^D has bpd = log2(L): the score is log2(L) - L(x)/D."""
  images = np.random.default_rng(2).integers(0, 256, (4, 28, 28, 1)).astype(np.uint8)
  images[0] = 0
  for compressor in ood.complexity.COMPRESSORS:
    scores = ood.complexity_scores(np.zeros(4), images, num_levels=256, compressor=compressor)
    np.testing.assert_allclose(
        scores, 8. - ood.compressed_bits_per_dim(images, compressor), atol=1e-12)
    # The compressor beats the uniform model on a flat image, not on noise.
    assert scores[0] > 5. and (scores[1:] < 0.).all(), compressor
  with pytest.raises(ValueError, match='one per image'):
    ood.complexity_scores(np.zeros(3), images)
  with pytest.raises(ValueError, match='compressor must be one of'):
    ood.complexity_scores(np.zeros(4), images, compressor='gzip')
  with pytest.raises(ValueError, match=r'C in \(1, 2, 3, 4\)'):
    ood.png_bits_per_dim(np.zeros((1, 4, 4, 5), np.uint8))
  with pytest.raises(ValueError, match=r'C in \(1, 3, 4\) for jpeg2000'):
    ood.compressed_bits_per_dim(np.zeros((1, 4, 4, 2), np.uint8), 'jpeg2000')
  with pytest.raises(ValueError, match='integers'):
    ood.png_bits_per_dim(np.zeros((1, 4, 4, 1), np.float32))


@pytest.mark.parametrize('channels', [1, 3])
def test_jpeg2000_bits_per_dim_is_the_length_of_a_lossless_code(channels):
  import io  # pylint: disable=g-import-not-at-top

  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(6)
  grid = np.indices((20, 24)).sum(axis=0)[..., None]
  images = np.stack([np.full((20, 24, channels), 90), np.repeat(grid * 5, channels, -1),
                     rng.integers(0, 256, (20, 24, channels))]).astype(np.uint8)
  bits = ood.compressed_bits_per_dim(images, 'jpeg2000')
  for image, value in zip(images, bits):
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if channels == 1 else image).save(
        buffer, format='JPEG2000', irreversible=False)
    assert value == 8. * len(buffer.getvalue()) / image.size
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())))
    np.testing.assert_array_equal(decoded.reshape(image.shape), image)
  assert bits[0] < bits[1] < bits[2]
  # Uniform noise cannot be coded below 8 bits/dim.
  assert bits[2] > 8.


def test_bits_per_dim_score_of_a_uniform_density():
  np.testing.assert_allclose(ood.bits_per_dim_scores(np.zeros(3), (4, 4, 1), 256), 8.)
  np.testing.assert_allclose(ood.bits_per_dim_scores([-16. * np.log(2.)], (4, 4, 1), 256),
                             9.)


def test_image_log_probs_dequantizes_each_image_once():
  levels = 17
  images = np.random.default_rng(3).integers(0, levels, (7, 4, 4, 1))

  def sum_of_levels(x):
    # floor(x * L) recovers the integer image exactly (the noise stays inside [k, k+1)).
    return tf.reduce_sum(tf.floor(x * levels), axis=[1, 2, 3])

  result = ood.image_log_probs(sum_of_levels, images, levels, batch_size=3)
  np.testing.assert_array_equal(result, images.sum(axis=(1, 2, 3)))

  def sum_of_pixels(x):
    return tf.reduce_sum(x, [1, 2, 3])
  # The noise of an image depends on `seed` and its position, not on the batching.
  first = ood.image_log_probs(sum_of_pixels, images, levels)
  again = ood.image_log_probs(sum_of_pixels, images, levels, batch_size=2)
  np.testing.assert_allclose(first, again, rtol=1e-6)
  other_seed = ood.image_log_probs(sum_of_pixels, images, levels, seed=99)
  assert not np.allclose(first, other_seed)
  noise = first - images.sum(axis=(1, 2, 3)) / levels
  assert ((noise > 0.) & (noise < 16. / levels)).all()   # 16 pixels of noise in [0, 1/L)
  with pytest.raises(ValueError, match='one value per image'):
    ood.image_log_probs(lambda x: tf.zeros([1]), images, levels)


def test_perturb_images():
  levels, rate = 256, 0.15
  images = np.random.default_rng(4).integers(0, levels, (400, 16, 16, 1)).astype(np.uint8)
  perturbed = ood.perturb_images(images, levels, rate, seed=0)
  assert perturbed.dtype == np.uint8 and perturbed.shape == images.shape
  changed = perturbed != images
  assert changed.mean() == pytest.approx(rate, abs=0.003)
  # A replacement is uniform over the other levels: (new - old) mod L is uniform on 1..L-1.
  offsets = (perturbed[changed].astype(int) - images[changed].astype(int)) % levels
  counts = np.bincount(offsets, minlength=levels)
  assert counts[0] == 0
  assert stats.chisquare(counts[1:]).pvalue > 1e-3
  np.testing.assert_array_equal(ood.perturb_images(images, levels, 0., seed=1), images)
  assert (ood.perturb_images(images, levels, 1., seed=1) != images).all()
  np.testing.assert_array_equal(ood.perturb_images(images, levels, rate, seed=0), perturbed)
  with pytest.raises(ValueError, match='mutation_rate'):
    ood.perturb_images(images, levels, 1.5, seed=0)
  with pytest.raises(ValueError, match=r'values in \[0, 16\]'):
    ood.perturb_images(images, 17, 0.1, seed=0)


def test_likelihood_ratio_shape_error():
  with pytest.raises(ValueError, match='same shape'):
    ood.likelihood_ratio_scores(np.zeros(3), np.zeros(4))


def test_train_background_flow_updates_a_fresh_flow():
  images = np.random.default_rng(5).integers(0, 17, (64, 8, 8, 1)).astype(np.uint8)
  built = []

  def flow_fn():
    flow = make_flow((8, 8, 1), num_scales=1, hidden_channels=4, num_res_blocks=0)
    built.append(flow)
    return flow

  flow = ood.train_background_flow(images, 17, flow_fn, steps=4, batch_size=16,
                                   learning_rate=1e-2, mutation_rate=0.2, seed=0)
  assert built == [flow]
  fresh = flow_fn()
  trained_values = [v.numpy() for v in flow.trainable_variables]
  fresh_values = [v.numpy() for v in fresh.trainable_variables]
  assert any(not np.allclose(a, b) for a, b in zip(trained_values, fresh_values))
  log_probs = ood.image_log_probs(make_distribution(flow, (8, 8, 1)).log_prob, images, 17)
  assert log_probs.shape == (64,) and np.isfinite(log_probs).all()
  with pytest.raises(ValueError, match='steps'):
    ood.train_background_flow(images, 17, flow_fn, steps=0)
  with pytest.raises(ValueError, match='batch_size'):
    ood.train_background_flow(images, 17, flow_fn, steps=1, batch_size=65)
