"""A/B: this checkout's RealNVPChain against another checkout's, in one process.

  python benchmarks/ab.py --before /path/to/other/checkout --config mnist-small

Loads the other checkout's `tfp_realnvp` under the name `tfp_realnvp_before`
(a renamed copy in a temporary folder), builds the same configuration with
both, copies the variables of the first into the second, and then:

* checks that they compute the same thing: bits/dim of one batch in
  inference and in training mode, and the gradient of the training loss
  (largest differences printed);
* times the training step, `log_prob` and `sample` of both, interleaved
  round by round and each next to a 3x3 convolution reference, and prints
  after/before speed-ups (median of per-round ratios) and the percentage of
  the convolution ceiling of each.

This is how the before/after figures of each optimisation in
`benchmarks/README.md` were measured. Results go to
`benchmarks/results/ab-<config>.json`.
"""

import argparse
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import configs  # pylint: disable=wrong-import-position
from benchkit import environment  # pylint: disable=wrong-import-position
from benchkit import flops as flop_count  # pylint: disable=wrong-import-position
from benchkit import results as results_io  # pylint: disable=wrong-import-position
from benchkit import steps as step_fns  # pylint: disable=wrong-import-position
from benchkit import timing  # pylint: disable=wrong-import-position


def renamed_copy(checkout, new_name):
  """Copies `<checkout>/tfp_realnvp` to a temp dir as package `new_name`."""
  source = os.path.join(checkout, 'tfp_realnvp')
  if not os.path.isdir(source):
    raise SystemExit(f'{source} does not exist')
  root = tempfile.mkdtemp(prefix='ab_')
  target = os.path.join(root, new_name)
  shutil.copytree(source, target,
                  ignore=shutil.ignore_patterns('__pycache__'))
  for folder, _, files in os.walk(target):
    for name in files:
      if name.endswith('.py'):
        path = os.path.join(folder, name)
        with open(path) as f:
          text = f.read()
        text = re.sub(r'\btfp_realnvp\b', new_name, text)
        with open(path, 'w') as f:
          f.write(text)
  return root


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  configs.add_config_args(parser)
  parser.add_argument('--before', required=True,
                      help='a checkout (folder holding tfp_realnvp/)')
  parser.add_argument('--modes', default='graph')
  parser.add_argument('--precision', default='float32')
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--round-seconds', type=float, default=1.0)
  parser.add_argument('--what', default='train,log_prob,sample')
  parser.add_argument('--tag', default='')
  args = parser.parse_args(argv)
  environment.setup_environment(args.onednn)
  sys.path.insert(0, renamed_copy(args.before, 'tfp_realnvp_before'))
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  tf, tfp = environment.tf_modules()
  import tfp_realnvp_before  # pylint: disable=g-import-not-at-top

  import tfp_realnvp  # pylint: disable=g-import-not-at-top
  cfg = configs.parse_config(args.config, args)
  shape = (cfg['batch_size'],) + cfg['event_shape']
  precision = None if args.precision == 'float32' else args.precision

  def build(package):
    keras.utils.set_random_seed(0)
    flow = package.RealNVPChain(
        cfg['event_shape'], num_scales=cfg['num_scales'],
        hidden_channels=cfg['hidden_channels'],
        num_res_blocks=cfg['num_res_blocks'], network_dtype=precision)
    base = tfp.distributions.Sample(tfp.distributions.Normal(0., 1.),
                                    cfg['event_shape'])
    return tfp.distributions.TransformedDistribution(base, flow), flow

  dist_b, flow_b = build(tfp_realnvp_before)
  dist_a, flow_a = build(tfp_realnvp)
  vars_b, vars_a = flow_b.variables, flow_a.variables
  if [tuple(v.shape) for v in vars_b] != [tuple(v.shape) for v in vars_a]:
    raise SystemExit('the two versions have different variables')
  # Move every variable away from its initial value (zero-initialised output
  # layers would make the flows trivial), then copy A's values into B.
  rng = np.random.default_rng(0)
  for va, vb in zip(vars_a, vars_b):
    value = va.numpy()
    if 'moving_variance' in va.name or 'variance' in va.name:
      value = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
    else:
      value = value + 0.05 * rng.standard_normal(value.shape).astype(np.float32)
    va.assign(value)
    vb.assign(value)

  x = tf.random.uniform(shape, 0.01, 0.99, seed=3)
  dim = float(np.prod(cfg['event_shape']))
  checks = {}
  lp_a = dist_a.log_prob(x).numpy()
  lp_b = dist_b.log_prob(x).numpy()
  to_bpd = lambda lp: (-lp / dim + np.log(256.)) / np.log(2.)
  checks['max_abs_bpd_diff_inference'] = float(np.max(np.abs(
      to_bpd(lp_a) - to_bpd(lp_b))))
  checks['bpd_inference'] = float(np.mean(to_bpd(lp_a)))

  def loss_and_grads(dist):
    train_vars = dist.trainable_variables
    with tf.GradientTape() as tape:
      lp = dist.log_prob(x, bijector_kwargs={'training': True})
      loss = -tf.reduce_mean(lp)
    return lp.numpy(), [g.numpy() for g in tape.gradient(loss, train_vars)]

  lpt_a, g_a = loss_and_grads(dist_a)
  lpt_b, g_b = loss_and_grads(dist_b)
  checks['max_abs_bpd_diff_training'] = float(np.max(np.abs(
      to_bpd(lpt_a) - to_bpd(lpt_b))))
  scale = max(float(np.max(np.abs(g))) for g in g_b)
  checks['max_abs_grad_diff_over_max_grad'] = max(
      float(np.max(np.abs(a - b))) for a, b in zip(g_a, g_b)) / scale
  for va, vb in zip(vars_a, vars_b):  # Training mode moved the statistics.
    vb.assign(va)
  print('equivalence:', checks, flush=True)

  calls, flops = {}, {}
  ceilings, ceiling_flops = timing.ceiling_calls(
      cfg['batch_size'], cfg['event_shape'][0], cfg['event_shape'][1],
      cfg['hidden_channels'])
  calls['ceiling_conv3x3'] = ceilings['ceiling_conv3x3']
  flops['ceiling_conv3x3'] = ceiling_flops['ceiling_conv3x3']
  whats = args.what.split(',')
  for mode in args.modes.split(','):
    for label, dist in (('before', dist_b), ('after', dist_a)):
      steps = step_fns.Steps(dist, shape, jit_compile=(mode == 'xla'))
      for what in whats:
        name = f'{label}/{mode}/{what}'
        timing.force(steps.call(what, x))
        flops[name] = flop_count.profiler_flops(steps.concrete(what))
        calls[name] = (lambda s=steps, w=what: s.call(w, x))
        print(f'  traced {name}: {flops[name] / 1e9:.2f} GFLOP', flush=True)
  times = timing.time_interleaved(calls, 'ceiling_conv3x3', rounds=args.rounds,
                                   target_seconds=args.round_seconds)
  med = timing.median
  report = dict(config=args.config, config_values=dict(
      cfg, event_shape=list(cfg['event_shape'])), before=args.before,
                checks=checks, machine=environment.machine_info(), results={})
  print(f'\n{"function":22s} {"after/before speed-up":>22s} '
        f'{"% of conv ceiling, before -> after":>36s}')
  print(f'{"":22s} {"CPU time":>10s} {"wall":>10s}   {"CPU time":>16s} {"wall":>16s}')
  for mode in args.modes.split(','):
    for what in whats:
      b, a = f'before/{mode}/{what}', f'after/{mode}/{what}'
      entry = dict(flops_before=flops[b], flops_after=flops[a],
                   seconds_before=times[b]['seconds'],
                   seconds_after=times[a]['seconds'],
                   cpu_seconds_before=times[b]['cpu_seconds'],
                   cpu_seconds_after=times[a]['cpu_seconds'])
      for clock, secs, ref in (('cpu', 'cpu_seconds', 'reference_cpu'),
                               ('wall', 'seconds', 'reference')):
        norm = {n: [s / r for s, r in zip(times[n][secs], times[n][ref])]
                for n in (a, b)}
        entry[f'speedup_{clock}'] = med([x / y for x, y in zip(norm[b],
                                                                norm[a])])
        for label, n in (('before', b), ('after', a)):
          entry[f'pct_conv_{label}_{clock}'] = med(
              [100 * flops[n] / flops['ceiling_conv3x3'] / v for v in norm[n]])
      report['results'][f'{mode}/{what}'] = entry
      print(f'{mode + "/" + what:22s} {entry["speedup_cpu"]:10.2f} '
            f'{entry["speedup_wall"]:10.2f}   '
            f'{entry["pct_conv_before_cpu"]:6.0f}% -> {entry["pct_conv_after_cpu"]:4.0f}% '
            f'{entry["pct_conv_before_wall"]:6.0f}% -> {entry["pct_conv_after_wall"]:4.0f}%')
  name = f'ab-{args.config}{"-" + args.tag if args.tag else ""}.json'
  print('wrote', results_io.write_json(name, report))


if __name__ == '__main__':
  main()
