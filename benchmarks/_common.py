"""Shared pieces of the benchmark scripts: setup, models, timing, FLOPs, output.

Import this module before TensorFlow: `setup_environment` sets the variables
TensorFlow reads at import time (oneDNN, log level).
"""

import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
RESULTS_DIR = os.path.join(BENCH_DIR, 'results')
# Run from a fresh clone without PYTHONPATH. BENCH_PACKAGE_DIR points the
# scripts at another checkout's tfp_realnvp instead (A/B comparisons).
PACKAGE_DIR = os.environ.get('BENCH_PACKAGE_DIR', REPO_DIR)
if PACKAGE_DIR not in sys.path:
  sys.path.insert(0, PACKAGE_DIR)

# Model configurations: image event, scales, s/t width and depth, batch size.
CONFIGS = {
    # A smoke test that runs in seconds.
    'tiny': dict(event_shape=(8, 8, 1), num_scales=2, hidden_channels=16,
                 num_res_blocks=2, batch_size=64),
    # The configuration of issue 5's targets.
    'mnist-small': dict(event_shape=(28, 28, 1), num_scales=2,
                        hidden_channels=32, num_res_blocks=4, batch_size=64),
    # The package defaults (64 features, 8 residual blocks) on MNIST shapes.
    'mnist': dict(event_shape=(28, 28, 1), num_scales=2, hidden_channels=64,
                  num_res_blocks=8, batch_size=64),
    'cifar-small': dict(event_shape=(32, 32, 3), num_scales=3,
                        hidden_channels=32, num_res_blocks=4, batch_size=64),
}

PRECISIONS = ('float32', 'mixed_bfloat16')
MODES = ('graph', 'xla')


def setup_environment(onednn='default', threads=0):
  """Sets TensorFlow's import-time environment; call before importing TF.

  Args:
    onednn: 'on' or 'off' sets TF_ENABLE_ONEDNN_OPTS; 'default' leaves it as
      it is (TensorFlow turns oneDNN on by default only on recent Intel CPUs).
    threads: intra-op threads (0: TensorFlow's default, one per core).
  """
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
  if onednn in ('on', 'off'):
    os.environ['TF_ENABLE_ONEDNN_OPTS'] = '1' if onednn == 'on' else '0'
  if threads:
    os.environ['TF_NUM_INTRAOP_THREADS'] = str(threads)


def parse_config(name, overrides):
  """A copy of `CONFIGS[name]` with command-line overrides applied."""
  if name not in CONFIGS:
    raise SystemExit(f'unknown --config {name!r}; choose from {sorted(CONFIGS)}')
  cfg = dict(CONFIGS[name])
  for key in ('num_scales', 'hidden_channels', 'num_res_blocks', 'batch_size'):
    value = getattr(overrides, key, None)
    if value is not None:
      cfg[key] = int(value)
  if getattr(overrides, 'event_shape', None):
    cfg['event_shape'] = tuple(int(d) for d in overrides.event_shape.split(','))
  cfg['event_shape'] = tuple(cfg['event_shape'])
  return cfg


def add_config_args(parser, default='mnist-small'):
  parser.add_argument('--config', default=default,
                      help=f'one of {sorted(CONFIGS)} (default {default})')
  parser.add_argument('--event-shape', help='override, e.g. 32,32,3')
  parser.add_argument('--num-scales', type=int)
  parser.add_argument('--hidden-channels', type=int)
  parser.add_argument('--num-res-blocks', type=int)
  parser.add_argument('--batch-size', type=int)
  parser.add_argument('--onednn', choices=('default', 'on', 'off'),
                      default='default',
                      help='TF_ENABLE_ONEDNN_OPTS for this run (default: as set)')


def tf_modules():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_probability as tfp  # pylint: disable=g-import-not-at-top
  return tf, tfp


def onednn_enabled():
  try:
    from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
    return bool(_pywrap_util_port.IsMklEnabled())
  except Exception:  # pylint: disable=broad-except
    return None


def machine_info():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_probability as tfp  # pylint: disable=g-import-not-at-top
  import keras  # pylint: disable=g-import-not-at-top
  cpu = platform.processor() or ''
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          cpu = line.split(':', 1)[1].strip()
          break
  except OSError:
    pass
  try:
    load = os.getloadavg()[0]
  except OSError:
    load = None
  return dict(
      cpu=cpu, cores=os.cpu_count(), load_average_1min=load,
      python=platform.python_version(), tensorflow=tf.__version__,
      tensorflow_probability=tfp.__version__, keras=keras.__version__,
      onednn=onednn_enabled(),
      intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
      commit=git_commit(), package_dir=PACKAGE_DIR,
      date=datetime.datetime.now().isoformat(timespec='seconds'))


def git_commit():
  try:
    out = subprocess.run(['git', '-C', REPO_DIR, 'rev-parse', '--short', 'HEAD'],
                         capture_output=True, text=True, timeout=10)
    dirty = subprocess.run(['git', '-C', REPO_DIR, 'status', '--porcelain',
                            '--untracked-files=no'],
                           capture_output=True, text=True, timeout=10)
    return out.stdout.strip() + ('+dirty' if dirty.stdout.strip() else '')
  except Exception:  # pylint: disable=broad-except
    return None


def peak_rss_mb():
  """Peak resident memory of this process, in MiB.

  `VmHWM` from /proc/self/status: unlike `getrusage(RUSAGE_SELF).ru_maxrss`,
  which Linux carries over from the parent across fork and exec (a child of a
  big benchmark process would report the parent's peak), it is the peak of
  this process's own memory since it started.
  """
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith('VmHWM:'):
          return int(line.split()[1]) / 1024.
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.


# -- models ---------------------------------------------------------------------
def build_realnvp(cfg, precision='float32', seed=0):
  """`(distribution, flow)`: RealNVPChain over a standard normal, for `cfg`."""
  import keras  # pylint: disable=g-import-not-at-top
  tf, tfp = tf_modules()
  from tfp_realnvp import RealNVPChain  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  flow = RealNVPChain(
      cfg['event_shape'], num_scales=cfg['num_scales'],
      hidden_channels=cfg['hidden_channels'],
      num_res_blocks=cfg['num_res_blocks'],
      network_dtype=None if precision == 'float32' else precision)
  base = tfp.distributions.Sample(tfp.distributions.Normal(0., 1.),
                                  cfg['event_shape'])
  del tf
  return tfp.distributions.TransformedDistribution(base, flow), flow


def glow_hidden_for_params(event_shape, num_blocks, steps, target_params):
  """The `num_hidden` of Glow's default networks that best matches a budget."""
  best = None
  for hidden in range(16, 1025, 8):
    params = glow_param_estimate(event_shape, num_blocks, steps, hidden)
    if best is None or abs(params - target_params) < abs(best[1] - target_params):
      best = (hidden, params)
  return best[0]


def glow_param_estimate(event_shape, num_blocks, steps, hidden):
  """Weights of `tfb.Glow` with `GlowDefaultNetwork(num_hidden=hidden)`."""
  height, width, channels = event_shape
  total = 0
  remaining = channels
  for block in range(num_blocks):
    remaining *= 4
    half = remaining // 2
    per_step = (9 * half * hidden + hidden) + (hidden * hidden + hidden) + (
        9 * hidden * 2 * (remaining - half) + 2 * (remaining - half))
    per_step += remaining * remaining + 2 * remaining  # 1x1 conv, actnorm.
    total += steps * per_step
    if block < num_blocks - 1:
      exit_out = remaining // 2
      total += 9 * (remaining - exit_out) * 2 * exit_out + 2 * exit_out
      remaining -= exit_out
  del height, width
  return total


def build_glow(event_shape, num_blocks, steps, hidden, seed=0):
  """`tfb.Glow` with TFP's default coupling and exit networks."""
  import functools  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  tf, tfp = tf_modules()
  tfb, tfd = tfp.bijectors, tfp.distributions
  tf_keras.utils.set_random_seed(seed)
  glow = tfb.Glow(
      output_shape=event_shape, num_glow_blocks=num_blocks,
      num_steps_per_block=steps,
      coupling_bijector_fn=functools.partial(tfb.GlowDefaultNetwork,
                                             num_hidden=hidden),
      exit_bijector_fn=tfb.GlowDefaultExitNetwork, seed=seed)
  size = 1
  for d in event_shape:
    size *= d
  base = tfd.Sample(tfd.Normal(0., 1.), [size])
  del tf
  return tfd.TransformedDistribution(base, glow), glow


def build_tfp_realnvp_vector(dim, num_couplings, hidden_units, seed=0):
  """A chain of TFP's `tfb.RealNVP` (default template) with reversals."""
  tf, tfp = tf_modules()
  tfb, tfd = tfp.bijectors, tfp.distributions
  tf.random.set_seed(seed)
  steps = []
  for k in range(num_couplings):
    steps.append(tfb.RealNVP(
        num_masked=dim // 2,
        shift_and_log_scale_fn=tfb.real_nvp_default_template(
            hidden_layers=list(hidden_units), name=f'tfp_rnvp_{k}')))
    if k < num_couplings - 1:
      steps.append(tfb.Permute(list(range(dim))[::-1]))
  flow = tfb.Chain(list(reversed(steps)))
  base = tfd.Sample(tfd.Normal(0., 1.), [dim])
  return tfd.TransformedDistribution(base, flow), flow


def build_our_vector(dim, num_couplings, hidden_units, batch_norm, seed=0):
  import keras  # pylint: disable=g-import-not-at-top
  _, tfp = tf_modules()
  from tfp_realnvp import RealNVPChain  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  flow = RealNVPChain((dim,), num_couplings=num_couplings,
                      hidden_units=tuple(hidden_units), batch_norm=batch_norm)
  base = tfp.distributions.Sample(tfp.distributions.Normal(0., 1.), [dim])
  return tfp.distributions.TransformedDistribution(base, flow), flow


def count_params(variables):
  total = 0
  for v in variables:
    n = 1
    for d in v.shape:
      n *= int(d)
    total += n
  return total


# -- step functions -------------------------------------------------------------
class Steps:
  """Training step, `log_prob` and `sample` of one model, as `tf.function`s.

  A training step is `-mean(log_prob(x))` in training mode under a
  `GradientTape` and one Keras Adam update. `log_prob` and `sample` run in
  inference mode, outside any tape (no gradient graph is built).
  """

  def __init__(self, dist, batch_shape, jit_compile, training_kwargs=True,
               variables=None, seed=0):
    import keras  # pylint: disable=g-import-not-at-top
    tf, _ = tf_modules()
    self.dist = dist
    self.batch_shape = tuple(batch_shape)
    self.jit_compile = jit_compile
    kwargs = ({'bijector_kwargs': {'training': True}} if training_kwargs
              else {})
    self._x_spec = tf.TensorSpec(self.batch_shape, tf.float32)
    if variables is None:
      variables = dist.trainable_variables
    self.variables = list(variables)
    if not self.variables:
      # TFP's default templates create their variables at the first call.
      with tf.GradientTape() as tape:
        dist.log_prob(tf.zeros(self.batch_shape), **kwargs)
      self.variables = list(tape.watched_variables())
    self.optimizer = keras.optimizers.Adam(1e-3)
    self.optimizer.build(self.variables)
    variables_ = self.variables
    optimizer = self.optimizer

    def train(x):
      with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(dist.log_prob(x, **kwargs))
      grads = tape.gradient(loss, variables_)
      optimizer.apply_gradients(zip(grads, variables_))
      return loss

    def log_prob(x):
      return dist.log_prob(x)

    def sample(seed):
      return dist.sample(self.batch_shape[0], seed=seed)

    self.train = tf.function(train, jit_compile=jit_compile)
    self.log_prob = tf.function(log_prob, jit_compile=jit_compile)
    self.sample = tf.function(sample, jit_compile=jit_compile)
    self._seed = tf.constant([seed, 1], tf.int32)

  def concrete(self, what):
    tf, _ = tf_modules()
    if what == 'sample':
      return self.sample.get_concrete_function(
          tf.TensorSpec([2], tf.int32))
    return getattr(self, what).get_concrete_function(self._x_spec)

  def call(self, what, x):
    if what == 'sample':
      return self.sample(self._seed)
    return getattr(self, what)(x)


def profiler_flops(concrete_function):
  """Floating-point operations of a traced function, by TF's v1 profiler.

  `tf.compat.v1.profiler.profile(graph, float_operation())` on the function's
  graph: the sum of the registered FLOP statistics of its ops (Conv2D and its
  two gradients, MatMul, element-wise ops...). Graphs that hold TF1-style
  variables in their collections (TFP's default RealNVP template) trip the
  profiler, so the collection is emptied while it runs.
  """
  tf, _ = tf_modules()
  graph = concrete_function.graph
  opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  opts['output'] = 'none'
  key = tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES
  saved = list(graph.get_collection(key))
  graph.clear_collection(key)
  try:
    info = tf.compat.v1.profiler.profile(graph, options=opts)
  finally:
    for v in saved:
      graph.add_to_collection(key, v)
  return int(info.total_float_ops)


def op_counts(concrete_function, types=('Conv2D', 'Conv2DBackpropInput',
                                        'Conv2DBackpropFilter', 'MatMul')):
  counts = {}
  for op in concrete_function.graph.get_operations():
    if op.type in types:
      counts[op.type] = counts.get(op.type, 0) + 1
  counts['total_ops'] = len(concrete_function.graph.get_operations())
  return counts


def analytic_conv_flops(flow, batch_size):
  """Forward FLOPs of every convolution of the s/t ResNets (2 per MAC)."""
  from tfp_realnvp.nets.weight_norm import WeightNormConv2D  # pylint: disable=g-import-not-at-top
  total = 0
  for coupling in flow.couplings:
    shape = coupling._cond_shape  # pylint: disable=protected-access
    positions = 1
    for d in shape[:-1]:
      positions *= d
    for layer in coupling.network._flatten_layers(include_self=False,  # pylint: disable=protected-access
                                                  recursive=True):
      if isinstance(layer, WeightNormConv2D):
        kh, kw, cin, cout = layer.direction.shape
        total += 2 * positions * kh * kw * cin * cout
  return total * batch_size


# -- timing ---------------------------------------------------------------------
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
      _force(fn())
    start = time.perf_counter()
    _force(fn())
    once = time.perf_counter() - start
    goal = reference_seconds if name == reference else target_seconds
    repeats[name] = max(1, int(round(goal / max(once, 1e-6))))

  def measure(name):
    fn, n = calls[name], repeats[name]
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
      out = fn()
    _force(out)
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


def _force(out):
  if hasattr(out, 'numpy'):
    out.numpy()
  elif isinstance(out, (list, tuple)):
    for o in out:
      _force(o)


def median(values):
  values = sorted(values)
  n = len(values)
  return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])


def median_ratio(numerator, denominator):
  """Median over rounds of numerator[r] / denominator[r]."""
  return median([a / b for a, b in zip(numerator, denominator)])


# -- ceilings -------------------------------------------------------------------
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


# -- output ---------------------------------------------------------------------
def write_json(name, payload):
  os.makedirs(RESULTS_DIR, exist_ok=True)
  path = os.path.join(RESULTS_DIR, name)
  with open(path, 'w') as f:
    json.dump(payload, f, indent=1, sort_keys=False)
  return path


def read_json(name):
  path = os.path.join(RESULTS_DIR, name)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)
