"""Builders of the flows under test: ours, TFP's Glow and TFP's RealNVP."""

from benchkit.environment import tf_modules


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
