"""Timing on a shared machine: interleaved rounds next to a reference convolution."""

import math
import time

from benchkit.environment import tf_modules


def time_interleaved(calls, reference, rounds=5, target_seconds=0.5,
                     reference_seconds=0.3, warmup=1):
  """Times several callables in turn, each next to a reference measurement.

  Each round runs, for every callable in turn, the reference (a 3x3
  convolution) and then the callable, `n` times each (`n` fixed per callable,
  chosen from a first timing so that a measurement lasts about
  `target_seconds`); a last reference closes the round. Every measurement is
  thus flanked by two reference measurements taken seconds apart: dividing by
  their mean cancels most of the load that other processes put on a shared
  machine, which otherwise swings absolute times by 2-3x.

  Args:
    calls: dict name -> zero-argument callable returning a tensor (forced
      with `.numpy()` to wait for the result).
    reference: name of the reference callable in `calls`.
    rounds: number of rounds.
    target_seconds: wall time of one measurement.
    reference_seconds: wall time of one reference measurement.
    warmup: untimed calls of each before the first round.

  Returns:
    dict name -> dict(seconds=[wall seconds per call, one per round],
    cpu_seconds=[process CPU seconds per call (all threads)], reference=[mean
    wall seconds per call of the two flanking reference measurements],
    reference_cpu=[the same in CPU seconds]).

  CPU time is far steadier than wall time on a loaded machine (other
  processes delay us but do not add to our CPU time): the conv reference
  swings 14-140 ms in wall time and 14-21 ms in CPU time here. It does not
  see serial sections (one busy core counts like one), so both are kept.
  """
  repeats = {}
  for name, fn in calls.items():
    for _ in range(warmup):
      force(fn())
    start = time.perf_counter()
    force(fn())
    once = time.perf_counter() - start
    goal = reference_seconds if name == reference else target_seconds
    repeats[name] = max(1, int(round(goal / max(once, 1e-6))))

  def measure(name):
    fn, n = calls[name], repeats[name]
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
      out = fn()
    force(out)
    return ((time.perf_counter() - start) / n,
            (time.process_time() - cpu) / n)

  out = {name: dict(seconds=[], cpu_seconds=[], reference=[],
                    reference_cpu=[]) for name in calls}
  for _ in range(rounds):
    before = measure(reference)
    out[reference]['seconds'].append(before[0])
    out[reference]['cpu_seconds'].append(before[1])
    for name in calls:
      if name == reference:
        continue
      wall, cpu = measure(name)
      after = measure(reference)
      out[name]['seconds'].append(wall)
      out[name]['cpu_seconds'].append(cpu)
      out[name]['reference'].append(0.5 * (before[0] + after[0]))
      out[name]['reference_cpu'].append(0.5 * (before[1] + after[1]))
      out[reference]['seconds'].append(after[0])
      out[reference]['cpu_seconds'].append(after[1])
      before = after
  return out


def force(out):
  """Waits for a tensor (or nested list/tuple of tensors) to be computed."""
  if hasattr(out, 'numpy'):
    out.numpy()
  elif isinstance(out, (list, tuple)):
    for o in out:
      force(o)


def median(values):
  values = sorted(values)
  n = len(values)
  return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])


def median_interval(values, level=0.95):
  """A distribution-free confidence interval for the median of `values`.

  With `n` independent draws sorted as `x_1 <= ... <= x_n`, the interval
  `[x_k, x_(n+1-k)]` holds the population median with probability
  `1 - 2 P(Binomial(n, 1/2) <= k - 1)`, whatever the distribution; `k` is
  the largest for which that is at least `level`.

  Returns:
    `(low, high, coverage)`, or None when `n` is too small for `level`
    (fewer than 6 draws for 95%).
  """
  values = sorted(values)
  n = len(values)
  below = 0.  # P(Binomial(n, 1/2) <= k - 1), for the k being tried.
  best = None
  for k in range(1, n // 2 + 1):
    below += math.comb(n, k - 1) / 2. ** n
    coverage = 1. - 2. * below
    if coverage < level:
      break
    best = (values[k - 1], values[n - k], coverage)
  return best


def median_ratio(numerator, denominator):
  """Median over rounds of numerator[r] / denominator[r]."""
  return median([a / b for a, b in zip(numerator, denominator)])


def ceiling_calls(batch, height, width, channels, matmul_size=2048):
  """Zero-argument callables: a 3x3 fp32 conv and a square fp32 matmul.

  Returns (calls, flops): the conv is `channels -> channels`, SAME padding,
  on `(batch, height, width, channels)`; graph mode, as the model runs.
  """
  tf, _ = tf_modules()
  gen = tf.random.Generator.from_seed(0)
  x = gen.normal((batch, height, width, channels))
  k = gen.normal((3, 3, channels, channels)) * 0.1
  a = gen.normal((matmul_size, matmul_size))
  b = gen.normal((matmul_size, matmul_size))
  conv = tf.function(lambda: tf.nn.conv2d(x, k, 1, 'SAME'))
  matmul = tf.function(lambda: tf.matmul(a, b))
  calls = {'ceiling_conv3x3': conv, 'ceiling_matmul': matmul}
  flops = {'ceiling_conv3x3': 2 * batch * height * width * channels * channels * 9,
           'ceiling_matmul': 2 * matmul_size ** 3}
  return calls, flops
