"""Speed of Real NVP: training step, log_prob and sample, against the machine and TFP.

One command:

  python benchmarks/speed.py --config mnist-small            # graph, float32
  python benchmarks/speed.py --config mnist-small --all      # + XLA, mixed bf16

In one process, side by side and interleaved round after round (so that a
change of load on a shared machine hits every measurement alike):

* this machine's ceilings: a 3x3 fp32 convolution at the configuration's
  first-scale shape (batch, H, W, hidden_channels -> hidden_channels) and a
  2048x2048 fp32 matmul;
* `RealNVPChain` (the configuration): images/s of a training step
  (`log_prob` in training mode under a GradientTape + Keras Adam), of
  `log_prob` and of `sample`, for each mode (`tf.function` graph, XLA) and
  precision (float32, mixed_bfloat16 networks);
* TFP's `tfb.Glow` with its default networks, `num_hidden` chosen for the
  parameter count of ours, on the same image shape (float32);
* vector flows: `RealNVPChain((D,))` and a chain of TFP's `tfb.RealNVP`
  (default template) with the same couplings and hidden units.

FLOPs come from TensorFlow's profiler on each traced graph
(`tf.compat.v1.profiler`, `float_operation`), with an analytic count of the
convolutions as a cross-check; achieved GFLOP/s are shown as a percentage of
the ceilings measured in the same rounds. Peak resident memory of a short
training run is measured in a fresh subprocess per configuration.

Results: `benchmarks/results/speed-<config>.json` and the table in
`benchmarks/results/latest.md` (see `report.py`).
"""

import argparse
import json
import os
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import configs  # pylint: disable=wrong-import-position
from benchkit import environment  # pylint: disable=wrong-import-position
from benchkit import flops as flop_count  # pylint: disable=wrong-import-position
from benchkit import models  # pylint: disable=wrong-import-position
from benchkit import results as results_io  # pylint: disable=wrong-import-position
from benchkit import steps as step_fns  # pylint: disable=wrong-import-position
from benchkit import timing  # pylint: disable=wrong-import-position


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  configs.add_config_args(parser)
  parser.add_argument('--modes', default='graph',
                      help='comma list of graph,xla (default graph)')
  parser.add_argument('--precisions', default='float32',
                      help='comma list of float32,mixed_bfloat16')
  parser.add_argument('--all', action='store_true',
                      help='every mode and precision (XLA compiles take minutes)')
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--round-seconds', type=float, default=0.6,
                      help='time of each measurement within a round')
  parser.add_argument('--no-glow', action='store_true')
  parser.add_argument('--glow-steps', type=int, default=4,
                      help='flow steps per Glow block (num_hidden is fitted)')
  parser.add_argument('--no-vector', action='store_true')
  parser.add_argument('--vector-dim', type=int, default=64)
  parser.add_argument('--vector-couplings', type=int, default=8)
  parser.add_argument('--vector-hidden', default='256,256')
  parser.add_argument('--vector-batch', type=int, default=256)
  parser.add_argument('--no-memory', action='store_true',
                      help='skip the peak-RSS subprocesses')
  parser.add_argument('--memory-steps', type=int, default=5)
  parser.add_argument('--no-sample', action='store_true')
  parser.add_argument('--tag', default='',
                      help='suffix of the JSON file name')
  parser.add_argument('--worker', help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.all:
    args.modes = ','.join(configs.MODES)
    args.precisions = ','.join(configs.PRECISIONS)
  args.modes = [m for m in args.modes.split(',') if m]
  args.precisions = [p for p in args.precisions.split(',') if p]
  for m in args.modes:
    if m not in configs.MODES:
      parser.error(f'unknown mode {m!r}')
  for p in args.precisions:
    if p not in configs.PRECISIONS:
      parser.error(f'unknown precision {p!r}')
  args.vector_hidden = tuple(int(h) for h in args.vector_hidden.split(','))
  return args


# -- memory worker (fresh process per configuration) ------------------------------
def memory_worker(args, spec):
  """Builds one model, runs a few training steps, prints peak RSS as JSON."""
  tf, _ = environment.tf_modules()
  cfg = configs.parse_config(args.config, args)
  start_rss = environment.peak_rss_mb()
  model, mode, precision = spec['model'], spec['mode'], spec['precision']
  if model == 'realnvp':
    dist, _ = models.build_realnvp(cfg, precision)
    shape = (cfg['batch_size'],) + cfg['event_shape']
    steps = step_fns.Steps(dist, shape, jit_compile=(mode == 'xla'))
  elif model == 'glow':
    dist, _ = models.build_glow(cfg['event_shape'], cfg['num_scales'],
                                 args.glow_steps, spec['glow_hidden'])
    shape = (cfg['batch_size'],) + cfg['event_shape']
    steps = step_fns.Steps(dist, shape, jit_compile=(mode == 'xla'),
                          training_kwargs=False)
  else:
    raise ValueError(model)
  x = tf.random.uniform(shape, 0.01, 0.99, seed=1)
  built_rss = environment.peak_rss_mb()
  for _ in range(args.memory_steps):
    loss = steps.train(x)
  loss.numpy()
  print(json.dumps(dict(peak_rss_mb=environment.peak_rss_mb(),
                        rss_after_import_mb=start_rss,
                        rss_after_build_mb=built_rss,
                        steps=args.memory_steps)))


def run_memory(args, spec):
  cmd = [sys.executable, os.path.abspath(__file__), '--worker', json.dumps(spec),
         '--config', args.config, '--memory-steps', str(args.memory_steps),
         '--glow-steps', str(args.glow_steps), '--onednn', args.onednn]
  for key in ('event_shape', 'num_scales', 'hidden_channels', 'num_res_blocks',
              'batch_size'):
    value = getattr(args, key)
    if value is not None:
      cmd += ['--' + key.replace('_', '-'), str(value)]
  proc = subprocess.run(cmd, capture_output=True, text=True)
  if proc.returncode != 0:
    return dict(error=proc.stderr.strip().splitlines()[-1:] or ['failed'])
  return json.loads(proc.stdout.strip().splitlines()[-1])


def _normalized(times, name, clock):
  """Seconds per call over the flanking conv reference, per round.

  `clock` is 'wall' or 'cpu' (process CPU seconds, all threads).
  """
  t = times[name]
  if clock == 'cpu':
    return [a / r for a, r in zip(t['cpu_seconds'], t['reference_cpu'])]
  return [a / r for a, r in zip(t['seconds'], t['reference'])]


def summarize(times, flops, entries, ceilings, args):
  """Fills `entries` and `ceilings`; returns the ratios between models.

  Throughputs are medians over rounds. Percentages of a ceiling and ratios
  between two functions are medians over rounds of per-round ratios of
  normalised times (time / flanking conv reference), computed on wall time
  and on CPU time: the load of other processes cancels out of both, and
  CPU-time figures are the steadier ones on a busy machine.
  """
  med = timing.median
  conv = times['ceiling_conv3x3']
  conv_flops = flops['ceiling_conv3x3']
  ceilings['ceiling_conv3x3'] = dict(
      gflops_best=conv_flops / min(conv['seconds']) / 1e9,
      gflops_median=conv_flops / med(conv['seconds']) / 1e9,
      gflops_per_cpu_second_median=conv_flops / med(conv['cpu_seconds']) / 1e9,
      seconds=conv['seconds'], cpu_seconds=conv['cpu_seconds'],
      flops=conv_flops)
  mm = times['ceiling_matmul']
  mm_flops = flops['ceiling_matmul']
  mm_over_conv = {clock: med([(mm_flops / conv_flops) / n
                              for n in _normalized(times, 'ceiling_matmul',
                                                   clock)])
                  for clock in ('wall', 'cpu')}
  ceilings['ceiling_matmul'] = dict(
      gflops_best=mm_flops / min(mm['seconds']) / 1e9,
      gflops_median=mm_flops / med(mm['seconds']) / 1e9,
      gflops_per_cpu_second_median=mm_flops / med(mm['cpu_seconds']) / 1e9,
      relative_to_conv=mm_over_conv['wall'],
      relative_to_conv_cpu=mm_over_conv['cpu'],
      seconds=mm['seconds'], cpu_seconds=mm['cpu_seconds'], flops=mm_flops)
  for name, t in times.items():
    if name.startswith('ceiling_'):
      continue
    key, what = name.rsplit('/', 1)
    n_items = entries[key]['batch']
    pct = {clock: med([100 * flops[name] / conv_flops / n
                       for n in _normalized(times, name, clock)])
           for clock in ('wall', 'cpu')}
    entries[key][what] = dict(
        seconds=t['seconds'], cpu_seconds=t['cpu_seconds'],
        reference_seconds=t['reference'],
        reference_cpu_seconds=t['reference_cpu'], flops=flops[name],
        items_per_s_median=n_items / med(t['seconds']),
        items_per_s_best=n_items / min(t['seconds']),
        items_per_cpu_s_median=n_items / med(t['cpu_seconds']),
        gflops_median=flops[name] / med(t['seconds']) / 1e9,
        gflops_best=flops[name] / min(t['seconds']) / 1e9,
        pct_conv_ceiling=pct['wall'], pct_conv_ceiling_cpu=pct['cpu'],
        pct_matmul_ceiling=pct['wall'] / mm_over_conv['wall'],
        pct_matmul_ceiling_cpu=pct['cpu'] / mm_over_conv['cpu'])

  def ratio(a, b, clock):  # > 1: a is faster than b.
    return med([tb / ta for ta, tb in zip(_normalized(times, a, clock),
                                           _normalized(times, b, clock))])

  ratios = {}

  def add(label, a, b, unit, with_flops=False):
    if a in times and b in times:
      for clock in ('wall', 'cpu'):
        ratios[f'{label}: {unit} ({clock} time)'] = ratio(a, b, clock)
        if with_flops:
          ratios[f'{label}: achieved GFLOP/s ({clock} time)'] = (
              ratio(a, b, clock) * flops[a] / flops[b])

  for mode in args.modes:
    glow = f'glow/{mode}/float32'
    for precision in args.precisions:
      ours = f'realnvp/{mode}/{precision}'
      for what in ('train', 'log_prob', 'sample'):
        add(f'{ours} vs {glow} {what}', f'{ours}/{what}', f'{glow}/{what}',
            'images/s', with_flops=True)
    for label in ('ours_vector', 'ours_vector_nobn'):
      ours = f'{label}/{mode}/float32'
      other = f'tfp_realnvp_vector/{mode}/float32'
      for what in ('train', 'log_prob', 'sample'):
        add(f'{ours} vs {other} {what}', f'{ours}/{what}', f'{other}/{what}',
            'vectors/s')
  for what in ('train', 'log_prob', 'sample'):
    for precision in args.precisions:
      add(f'realnvp {precision} xla vs graph {what}',
          f'realnvp/xla/{precision}/{what}',
          f'realnvp/graph/{precision}/{what}', 'images/s')
    for mode in args.modes:
      add(f'realnvp {mode} mixed_bfloat16 vs float32 {what}',
          f'realnvp/{mode}/mixed_bfloat16/{what}',
          f'realnvp/{mode}/float32/{what}', 'images/s')
  return ratios


# -- the benchmark --------------------------------------------------------------
def main(argv=None):
  args = parse_args(argv)
  environment.setup_environment(args.onednn)
  if args.worker:
    memory_worker(args, json.loads(args.worker))
    return
  tf, _ = environment.tf_modules()
  cfg = configs.parse_config(args.config, args)
  batch = cfg['batch_size']
  height, width, _ = cfg['event_shape']
  image_batch = (batch,) + cfg['event_shape']
  x = tf.random.uniform(image_batch, 0.01, 0.99, seed=1)
  print(f'config {args.config}: {cfg}', flush=True)

  calls, flops, entries = {}, {}, {}
  ceilings, ceiling_flops = timing.ceiling_calls(
      batch, height, width, cfg['hidden_channels'])
  calls.update(ceilings)
  flops.update(ceiling_flops)

  def add_model(key, steps, meta, sample=True):
    entries[key] = dict(meta)
    whats = ['train', 'log_prob'] + (['sample'] if sample else [])
    for what in whats:
      name = f'{key}/{what}'
      try:
        start = time.perf_counter()
        timing.force(steps.call(what, steps_x[key]))
        entries[key][f'{what}_first_call_s'] = time.perf_counter() - start
        concrete = steps.concrete(what)
        flops[name] = flop_count.profiler_flops(concrete)
        entries[key][f'{what}_ops'] = flop_count.op_counts(concrete)
      except Exception as e:  # pylint: disable=broad-except
        traceback.print_exc()
        entries[key][f'{what}_error'] = f'{type(e).__name__}: {str(e)[:300]}'
        continue
      calls[name] = (lambda s=steps, w=what, k=key: s.call(w, steps_x[k]))
      print(f'  traced {name}: {flops[name] / 1e9:.2f} GFLOP, first call '
            f'{entries[key][f"{what}_first_call_s"]:.1f} s', flush=True)

  steps_x = {}
  our_params = None
  for precision in args.precisions:
    for mode in args.modes:
      key = f'realnvp/{mode}/{precision}'
      dist, flow = models.build_realnvp(cfg, precision)
      steps = step_fns.Steps(dist, image_batch, jit_compile=(mode == 'xla'))
      our_params = models.count_params(steps.variables)
      steps_x[key] = x
      conv_fwd = flop_count.analytic_conv_flops(flow, batch)
      add_model(key, steps, dict(model='RealNVPChain', mode=mode,
                                 precision=precision, params=our_params,
                                 batch=batch, analytic_conv_flops_forward=conv_fwd),
                sample=not args.no_sample)

  glow_hidden = None
  if not args.no_glow:
    glow_hidden = models.glow_hidden_for_params(
        cfg['event_shape'], cfg['num_scales'], args.glow_steps,
        our_params or 1_000_000)
    for mode in args.modes:
      key = f'glow/{mode}/float32'
      try:
        dist, _ = models.build_glow(cfg['event_shape'], cfg['num_scales'],
                                     args.glow_steps, glow_hidden)
        steps = step_fns.Steps(dist, image_batch, jit_compile=(mode == 'xla'),
                              training_kwargs=False)
      except Exception as e:  # pylint: disable=broad-except
        traceback.print_exc()
        entries[key] = dict(model='tfb.Glow', error=str(e)[:300])
        continue
      steps_x[key] = x
      add_model(key, steps, dict(
          model='tfb.Glow', mode=mode, precision='float32',
          params=models.count_params(steps.variables), batch=batch,
          glow_blocks=cfg['num_scales'], glow_steps_per_block=args.glow_steps,
          glow_num_hidden=glow_hidden), sample=not args.no_sample)

  if not args.no_vector:
    dim, vb = args.vector_dim, args.vector_batch
    xv = tf.random.normal((vb, dim), seed=2)
    for mode in args.modes:
      for label, builder in (
          ('ours_vector', lambda: models.build_our_vector(
              dim, args.vector_couplings, args.vector_hidden, batch_norm=True)),
          ('ours_vector_nobn', lambda: models.build_our_vector(
              dim, args.vector_couplings, args.vector_hidden, batch_norm=False)),
          ('tfp_realnvp_vector', lambda: models.build_tfp_realnvp_vector(
              dim, args.vector_couplings, args.vector_hidden))):
        key = f'{label}/{mode}/float32'
        ours = label.startswith('ours')
        try:
          dist, _ = builder()
          steps = step_fns.Steps(dist, (vb, dim), jit_compile=(mode == 'xla'),
                                training_kwargs=ours)
        except Exception as e:  # pylint: disable=broad-except
          traceback.print_exc()
          entries[key] = dict(model=label, error=str(e)[:300])
          continue
        steps_x[key] = xv
        add_model(key, steps, dict(
            model='RealNVPChain((D,))' if ours else 'tfb.RealNVP chain',
            batch_norm=(label == 'ours_vector') if ours else False,
            mode=mode, precision='float32', batch=vb, dim=dim,
            couplings=args.vector_couplings, hidden=list(args.vector_hidden),
            params=models.count_params(steps.variables)),
                  sample=not args.no_sample)

  print(f'timing {len(calls)} functions, {args.rounds} rounds, each next to '
        f'the conv reference', flush=True)
  times = timing.time_interleaved(
      calls, reference='ceiling_conv3x3', rounds=args.rounds,
      target_seconds=args.round_seconds)
  results = dict(
      script='speed.py', config=args.config, config_values=dict(
          cfg, event_shape=list(cfg['event_shape'])),
      argv=sys.argv[1:], machine=environment.machine_info(),
      rounds=args.rounds, ceilings={}, models=entries)
  results['ratios'] = summarize(times, flops, entries, results['ceilings'],
                                args)
  if not args.no_memory:
    print('peak RSS, one subprocess per configuration...', flush=True)
    for key, entry in entries.items():
      model = key.split('/')[0]
      if model not in ('realnvp', 'glow') or 'error' in entry:
        continue
      spec = dict(model=model, mode=entry['mode'], precision=entry['precision'],
                  glow_hidden=glow_hidden)
      entry['memory'] = run_memory(args, spec)
      print(f'  {key}: {entry["memory"]}', flush=True)

  name = f'speed-{args.config}{"-" + args.tag if args.tag else ""}.json'
  path = results_io.write_json(name, results)
  print(f'wrote {path}')
  import report  # pylint: disable=g-import-not-at-top
  print(report.speed_table(results))
  report.write_latest()


if __name__ == '__main__':
  main()
