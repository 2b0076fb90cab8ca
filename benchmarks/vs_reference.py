"""tfp_realnvp against the PyTorch reference and TFP's RealNVP, side by side.

  python benchmarks/vs_reference.py --reference-dir REF --reference-python PY
  python benchmarks/vs_reference.py --reference-dir REF --reference-python PY \
      --smoke                                   # about two minutes in all

REF is a checkout of https://github.com/chrischute/real-nvp (kept outside
this repository) and PY a Python with PyTorch, e.g. a venv made with
`python3 -m venv torch-venv && torch-venv/bin/pip install torch numpy`.
The reference runs in that Python through `reference_driver.py`, which
imports its model, loss and optimiser helpers from REF.

Tasks (`--tasks`, default all), each model trained once, back to back:

* `fashion`: Fashion-MNIST 28x28 (Debian's files), `--fashion-budget`
  seconds of training wall time (default 600), then test bits/dim on all
  10,000 test images (`--eval-examples`).
  With `--fashion-learning-rate LR` (default 3e-3; 0: skip) ours is
  trained a second time with Adam at LR instead of the paper's 1e-3 (the
  main job's `--lr`), shown in a row of its own: under one epoch, a larger
  step learns more per step. That run lowers its rate along a cosine to 1%
  of LR over the budget (the main job's `--decay cosine`, here by elapsed
  training time; `--no-fashion-anneal`: constant), so that it ends at a
  settled point rather than wherever a constant step leaves it.
  `--fashion-recompute-batch-norm B` (default 0: not) also has that run
  recompute every batch-norm running average over B training batches of
  `benchkit.training.RECOMPUTE_BATCH_SIZE` (512) images before its last
  evaluation (`recompute_batch_norm_statistics`), timed inside the budget;
  the table then shows the figure before it too.
* `digits`: scikit-learn's digits 8x8 (the package's 1500 / 297 split, 17
  levels), trained `max(--digits-budgets)` seconds (default 120,240) and
  evaluated `--digits-evals` times; the table gives the best held-out
  bits/dim reached within each budget. With `--digits-random-shift P`
  (default 0.25) and `--digits-dropout R` (default 0.2) ours is trained a
  second time with regularisers the reference does not have, shown in rows
  of their own: one-pixel shifts of the training images
  (`image_pipeline(random_shift=P)`) and dropout in the s/t networks'
  residual blocks (`RealNVPChain(dropout_rate=R)`); `--digits-learning-rate`
  sets that run's Adam step (default 3e-3: with both regularisers the
  model is still learning at 240 s, and a larger step than the paper's 1e-3
  reaches lower held-out bits/dim within these budgets). That run too is
  annealed over its budget (`--no-digits-anneal`: constant); as an
  annealed run ends at its budget, there is one per budget.
* `moons`: two moons (scikit-learn's `make_moons(noise=0.05)`, or
  `--moons-data moons` for the package's standardised toy; 20,000 training
  and 20,000 held-out points), `--moons-steps` steps (3000) of batch 256:
  TFP's `tfb.RealNVP` x8 (`real_nvp_default_template`, reversals between
  couplings) against `RealNVPChain(event_shape=(2,))` with its defaults;
  held-out negative log-likelihood in nats, with scikit-learn's
  16-component `GaussianMixture` for scale.
* `throughput`: images/s of a training step, `log_prob` and `sample` of both
  image models at the same flags (Fashion-MNIST shape), timed in interleaved
  rounds (the reference's process and ours take turns; `--throughput-rounds`
  of `--throughput-seconds`, default 20 of 5 s, about 10 minutes), with the
  median of the per-round ratios and a 95% distribution-free confidence
  interval of that median. On a shared machine single rounds of the same
  code spread by +-10%; 20 rounds pin the median to a few percent.

Same for both image models: data, split and dequantization (`x = (k + u) / L`
with fresh noise for training, one fixed dequantized test array for both),
the flags (`--num-scales 2 --hidden-channels 32 --num-res-blocks 4
--batch-size 64`) and the recipe of the Real NVP paper (Adam 1e-3, L2 5e-5,
gradient clipping at 100; the reference applies its L2 to every weight-norm
gain, ours to the couplings' scales, as each was written). Evaluation and the
first step (tracing) are not counted in the budgets.

Wall-clock budgets measure what a user gets on this machine: run them on a
quiet machine. The load average is recorded before each run.

Output: `benchmarks/results/vs_reference[-tag].json` and `.md`.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import environment  # pylint: disable=wrong-import-position
from benchkit import reference as reference_lib  # pylint: disable=wrong-import-position
from benchkit import results as results_io  # pylint: disable=wrong-import-position
from benchkit import timing  # pylint: disable=wrong-import-position
from benchkit.training import RECOMPUTE_BATCH_SIZE  # pylint: disable=wrong-import-position

TASKS = ('fashion', 'digits', 'moons', 'throughput')
# The throughput table gives this distribution-free confidence interval of the
# median per-round ratio.
THROUGHPUT_INTERVAL_LEVEL = 0.95
DEFAULT_LEARNING_RATE = 1e-3  # The Real NVP paper's Adam step.
SMOKE = dict(fashion_budget=15., digits_budgets='8,16', digits_evals=4,
             moons_steps=100, eval_examples=500, throughput_rounds=2,
             throughput_seconds=0.5)


def image_flags(args):
  return dict(num_scales=args.num_scales, hidden_channels=args.hidden_channels,
              num_res_blocks=args.num_res_blocks)


def run_image_task(args, name, budget, evals, folder):
  """Trains ours, then the reference, for `budget` seconds on `name`."""
  import keras  # pylint: disable=g-import-not-at-top
  from benchkit import training  # pylint: disable=g-import-not-at-top
  from benchkit import variants  # pylint: disable=g-import-not-at-top
  data = training.load_image_data(
      name, args.eval_examples if name == 'fashion_mnist' else 0)
  print(f'{name}: {len(data.train)} train, {len(data.test)} test images, '
        f'{budget:.0f} s each', flush=True)
  out = dict(dataset=name, budget_seconds=budget, num_test=len(data.test))

  def train_ours(key, random_shift=0., dropout_rate=0., label='tfp_realnvp',
                 learning_rate=DEFAULT_LEARNING_RATE, anneal=False,
                 seconds=budget, recompute_batch_norm=0):
    keras.backend.clear_session()
    model = variants.package_model(data.event_shape, seed=args.seed,
                                   precision=args.precision,
                                   dropout_rate=dropout_rate, **image_flags(args))
    out[f'{key}_load_before'] = environment.load_average()
    out[key] = training.train(model, data, budget=seconds, evals=evals,
                              batch_size=args.batch_size, seed=args.seed,
                              jit_compile=args.xla, random_shift=random_shift,
                              learning_rate=learning_rate, anneal=anneal,
                              recompute_batch_norm=recompute_batch_norm,
                              label=label)
    out[key]['params'] = model.num_params

  train_ours('ours')
  out['reference_load_before'] = environment.load_average()
  out['reference'] = reference_lib.train(
      args, reference_lib.write_data(data, folder),
      os.path.join(folder, f'reference-{name}.json'), budget=budget,
      evals=evals, batch_size=args.batch_size, seed=args.seed,
      **image_flags(args))
  if name == 'fashion_mnist' and args.fashion_learning_rate:
    out['learning_rate'] = args.fashion_learning_rate
    out['anneal'] = args.fashion_anneal
    out['recompute_batch_norm'] = args.fashion_recompute_batch_norm
    out['recompute_batch_size'] = RECOMPUTE_BATCH_SIZE
    train_ours('ours_lr', label=f'tfp_realnvp, Adam {args.fashion_learning_rate:g}'
               + (', annealed' if args.fashion_anneal else ''),
               learning_rate=args.fashion_learning_rate,
               anneal=args.fashion_anneal,
               recompute_batch_norm=args.fashion_recompute_batch_norm)
  if name == 'digits' and (args.digits_random_shift or args.digits_dropout):
    out['regularisers'] = dict(random_shift=args.digits_random_shift,
                               dropout_rate=args.digits_dropout)
    if args.digits_learning_rate != DEFAULT_LEARNING_RATE:
      out['regularisers']['learning_rate'] = args.digits_learning_rate
    out['anneal'] = args.digits_anneal
    label = f'tfp_realnvp, {regularisers(out)}'
    if args.digits_anneal:
      for seconds in digits_budgets(args):
        # An annealed run ends at its budget: one run per budget.
        train_ours(f'ours_regularised_{seconds:g}', args.digits_random_shift,
                   args.digits_dropout, f'{label}, annealed over {seconds:g} s',
                   learning_rate=args.digits_learning_rate, anneal=True,
                   seconds=seconds)
    else:
      train_ours('ours_regularised', args.digits_random_shift,
                 args.digits_dropout, label,
                 learning_rate=args.digits_learning_rate)
  return out


def digits_budgets(args):
  """The digits task's budgets in seconds, shortest first."""
  return sorted(float(b) for b in args.digits_budgets.split(','))


def regularisers(task):
  """`random_shift=P, dropout_rate=R` of a digits task's regularised run."""
  return ', '.join(f'{k}={v:g}' for k, v in task['regularisers'].items() if v)


# An evaluation scheduled at the budget's end runs a fraction of a second
# after it; it still counts as within the budget.
BUDGET_TOLERANCE = 1.01


def best_within(curve, seconds):
  return min(p['test_bpd'] for p in curve
             if p['train_seconds'] <= seconds * BUDGET_TOLERANCE)


def steps_within(curve, seconds):
  return max(p['step'] for p in curve
             if p['train_seconds'] <= seconds * BUDGET_TOLERANCE)


# -- two moons ------------------------------------------------------------------
def run_moons(args):
  import keras  # pylint: disable=g-import-not-at-top
  from benchkit import toys  # pylint: disable=g-import-not-at-top
  train, test = toys.toy_data(args.moons_data, seed=args.seed)
  hidden = tuple(int(h) for h in args.moons_tfp_hidden.split(','))
  out = dict(steps=args.moons_steps, batch_size=256, num_train=len(train),
             num_test=len(test), tfp_hidden_layers=list(hidden),
             learning_rate=args.moons_learning_rate, decay=args.moons_decay,
             data=args.moons_data,
             gaussian_mixture_16_nll=toys.gaussian_mixture_nll(
                 train, test, 16, args.seed))
  for label in ('tfp', 'ours'):
    keras.backend.clear_session()
    model = (toys.tfp_model(8, hidden, seed=args.seed) if label == 'tfp'
             else toys.our_model(seed=args.seed))
    out[label] = toys.train_and_score(
        model, train, test, steps=args.moons_steps,
        learning_rate=args.moons_learning_rate, seed=args.seed,
        decay=None if args.moons_decay == 'none' else args.moons_decay)
    print(f'moons: {label}: {args.moons_steps} steps ({out[label]["seconds"]:.0f} s), '
          f'held-out NLL in nats: {moons_figure(out[label])}', flush=True)
  return out


# -- throughput -----------------------------------------------------------------
def run_throughput(args):
  import keras  # pylint: disable=g-import-not-at-top
  tf, _ = environment.tf_modules()
  from benchkit import flops  # pylint: disable=g-import-not-at-top
  from benchkit import variants  # pylint: disable=g-import-not-at-top

  from tfp_realnvp.train import maximum_likelihood_step  # pylint: disable=g-import-not-at-top
  shape = tuple(int(d) for d in args.throughput_shape.split(','))
  batch = args.batch_size
  keras.backend.clear_session()
  model = variants.package_model(shape, seed=args.seed, precision=args.precision,
                                 **image_flags(args))
  x = tf.random.uniform((batch,) + shape, 0.01, 0.99, seed=1)
  step = maximum_likelihood_step(model.dist, keras.optimizers.Adam(1e-3),
                                 l2_variables=model.l2_variables,
                                 jit_compile=args.xla)
  def log_prob_fn(x):
    return model.dist.log_prob(x)

  def sample_fn():
    return model.dist.sample(batch, seed=(1, 2))

  log_prob = tf.function(log_prob_fn, jit_compile=args.xla)
  sample = tf.function(sample_fn, jit_compile=args.xla)
  ours = dict(train=lambda: step(x), log_prob=lambda: log_prob(x),
              sample=sample)
  for fn in ours.values():
    for _ in range(2):
      timing.force(fn())
  server = reference_lib.Server(args)
  try:
    built = server.ask(command='build', event_shape=list(shape),
                       batch_size=batch, seed=args.seed, **image_flags(args))
    rounds = {w: [] for w in ours}
    for r in range(args.throughput_rounds):
      for what, fn in ours.items():
        ref = server.ask(command='time', what=what,
                         seconds=args.throughput_seconds)
        calls = 0
        t0, c0 = time.perf_counter(), time.process_time()
        while calls < 1 or time.perf_counter() - t0 < args.throughput_seconds:
          timing.force(fn())
          calls += 1
        wall = (time.perf_counter() - t0) / calls
        cpu = (time.process_time() - c0) / calls
        rounds[what].append(dict(
            ours_images_per_second=batch / wall,
            reference_images_per_second=ref['images_per_second'],
            ratio_wall=ref['seconds_per_call'] / wall,
            ratio_cpu=ref['cpu_seconds_per_call'] / cpu))
      print(f'throughput round {r + 1}: ' + ', '.join(
          f'{w} {v[-1]["ratio_wall"]:.2f}x' for w, v in rounds.items()),
            flush=True)
  finally:
    server.close()
  summary = {}
  for what, values in rounds.items():
    summary[what] = dict(
        ours_images_per_second=statistics.median(
            v['ours_images_per_second'] for v in values),
        reference_images_per_second=statistics.median(
            v['reference_images_per_second'] for v in values),
        ratio_wall=statistics.median(v['ratio_wall'] for v in values),
        ratio_wall_interval=timing.median_interval(
            [v['ratio_wall'] for v in values], THROUGHPUT_INTERVAL_LEVEL),
        ratio_cpu=statistics.median(v['ratio_cpu'] for v in values))
  return dict(event_shape=list(shape), batch_size=batch, rounds=rounds,
              seconds_per_round=args.throughput_seconds,
              summary=summary, ours_params=model.num_params,
              ours_conv_flops_per_image=flops.analytic_conv_flops(model, 1),
              reference_params=built['num_params'],
              reference_flops_per_image=built['forward_flops_per_image'],
              reference_threads=built['threads'])


# -- report ---------------------------------------------------------------------
def moons_figure(run):
  """The held-out NLL of a two-moons run, or when and how it diverged."""
  if run.get('diverged_by_step') is None:
    return f'{run["test_nll"]:.3f}'
  best = run.get('best_finite_test_nll')
  before = f'; best before it {best:.3f}' if best is not None else ''
  return f'diverged (NaN) by step {run["diverged_by_step"]}{before}'


def minimum_rounds_for_interval():
  return next(n for n in range(1, 100)
              if timing.median_interval(range(n), THROUGHPUT_INTERVAL_LEVEL))


def throughput_seconds(t):
  seconds = t.get('seconds_per_round')
  return '' if seconds is None else f' of {seconds:g} s'


def moons_ratio(t):
  if any(t[k].get('diverged_by_step') is not None for k in ('tfp', 'ours')):
    return ''
  return f'{t["ours"]["test_nll"] / t["tfp"]["test_nll"]:.2f}'


def markdown(results):
  ours_name = ('tfp_realnvp (s/t networks in mixed bfloat16)'
               if results.get('precision') else 'tfp_realnvp')
  lines = [f'| task | chrischute/real-nvp (PyTorch) | {ours_name} | '
           'ratio (ours / reference) |', '|---|---|---|---:|']
  tasks = results['tasks']
  if 'fashion' in tasks:
    t = tasks['fashion']
    ref = t['reference']['curve'][-1]
    runs = [('ours', '')]
    if 'ours_lr' in t:
      lr = t['learning_rate']
      flags = f'--lr {lr:g}' + (' --decay cosine' if t.get('anneal') else '')
      what = f'; ours with Adam {lr:g}' + (
          ' annealed over the budget' if t.get('anneal') else '')
      what += f' (`{flags}`)'
      batches = t.get('recompute_batch_norm')
      if batches:
        what += (f', batch-norm averages recomputed over {batches} x '
                 f'{t["recompute_batch_size"]} training images inside the budget')
      runs.append(('ours_lr', what))
    for key, what in runs:
      ours = t[key]['curve'][-1]
      before = ours.get('test_bpd_before_recompute')
      before = '' if before is None else f'; {before:.3f} before recomputing'
      lines.append(
          f'| Fashion-MNIST, {t["budget_seconds"]:.0f} s of training, '
          f'{t["num_test"]} test images{what} | {ref["test_bpd"]:.3f} bpd '
          f'({ref["step"]} steps) | {ours["test_bpd"]:.3f} ({ours["step"]} '
          f'steps{before}) | {ours["test_bpd"] / ref["test_bpd"]:.3f} |')
    low = min(t['reference']['curve'][1:], key=lambda p: p['test_bpd'])
    if low is not ref:
      lines.append(
          f"| (Fashion-MNIST: the reference's lowest evaluation, at "
          f"{low['train_seconds']:.0f} s) | {low['test_bpd']:.3f} | | |")
  if 'digits' in tasks:
    t = tasks['digits']
    runs = [('ours', '')]
    if 'ours_regularised' in t:
      runs.append(('ours_regularised', f'; ours with `{regularisers(t)}`'))
    if f'ours_regularised_{t["budgets"][0]:g}' in t:
      runs.append(('ours_regularised', f'; ours with `{regularisers(t)}`, '
                   'annealed over the budget'))
    for key, what in runs:
      for budget in t['budgets']:
        run = t.get(key) or t[f'{key}_{budget:g}']
        ref_curve, our_curve = t['reference']['curve'], run['curve']
        ref_best, our_best = (best_within(ref_curve, budget),
                              best_within(our_curve, budget))
        lines.append(
            f'| digits 8x8, {budget:.0f} s, best held-out{what} | {ref_best:.3f} '
            f'({steps_within(ref_curve, budget)} steps) | {our_best:.3f} '
            f'({steps_within(our_curve, budget)} steps) | '
            f'{our_best / ref_best:.3f} |')
  if 'moons' in tasks:
    t = tasks['moons']
    lines.append(
        f'| two moons, {t["steps"]} steps of {t["batch_size"]}, held-out '
        f'nats | TFP\'s `tfb.RealNVP` x8: {moons_figure(t["tfp"])} | '
        f'{moons_figure(t["ours"])} | {moons_ratio(t)} |')
    lines.append(f'| (two moons: scikit-learn\'s 16-component GaussianMixture) '
                 f'| {t["gaussian_mixture_16_nll"]:.3f} | | |')
  if 'throughput' in tasks:
    t = tasks['throughput']
    shape = 'x'.join(str(d) for d in t['event_shape'])
    lines += ['', f'Throughput at the same flags ({shape}, batch '
              f'{t["batch_size"]}; ours {t["ours_params"] / 1e6:.2f}M '
              f'parameters, {t["ours_conv_flops_per_image"] / 1e9:.3f} GFLOP '
              f'per image forward; reference {t["reference_params"] / 1e6:.2f}M, '
              f'{t["reference_flops_per_image"] / 1e9:.3f} GFLOP, '
              f'{t["reference_threads"]} threads), images/s, medians of '
              f'{len(t["rounds"]["train"])} interleaved rounds'
              f'{throughput_seconds(t)}; the interval is a '
              f'{THROUGHPUT_INTERVAL_LEVEL:.0%} distribution-free confidence '
              'interval of the median per-round ratio (order statistics):', '',
              '| function | reference | tfp_realnvp | ours / reference (wall) '
              '| interval | (CPU time) |', '|---|---:|---:|---:|---:|---:|']
    for what, s in t['summary'].items():
      interval = s.get('ratio_wall_interval')
      interval = (f'{interval[0]:.2f}x-{interval[1]:.2f}x' if interval
                  else 'too few rounds')
      lines.append(f'| {what} | {s["reference_images_per_second"]:.1f} | '
                   f'{s["ours_images_per_second"]:.1f} | '
                   f'{s["ratio_wall"]:.2f}x | {interval} | '
                   f'{s["ratio_cpu"]:.2f}x |')
  m = results['machine']
  load = m['load_average_1min']
  lines += ['', f'Machine: {m["cpu"]}, {m["cores"]} cores, load average '
            f'{"-" if load is None else f"{load:.1f}"} at the start, TF '
            f'{m["tensorflow"]}, commit {m["commit"]}, reference commit '
            f'{results["reference_commit"] or "unknown"}, {m["date"]}.']
  return '\n'.join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--tasks', default=','.join(TASKS))
  parser.add_argument('--smoke', action='store_true',
                      help='short budgets: ' + ', '.join(
                          f'{k}={v}' for k, v in SMOKE.items()))
  parser.add_argument('--fashion-budget', type=float, default=600.)
  parser.add_argument('--fashion-evals', type=int, default=4)
  parser.add_argument('--fashion-learning-rate', type=float, default=3e-3,
                      help="a second run of ours with Adam at this rate; 0: none")
  parser.add_argument('--fashion-anneal', action=argparse.BooleanOptionalAction,
                      default=True,
                      help='that run lowers its learning rate along a cosine '
                      'to 1%% of it over the budget')
  parser.add_argument('--fashion-recompute-batch-norm', type=int, default=0,
                      metavar='BATCHES',
                      help='that run recomputes its batch-norm averages over this '
                      f'many training batches of {RECOMPUTE_BATCH_SIZE} before its '
                      'last evaluation, inside the budget (0: not)')
  parser.add_argument('--digits-budgets', default='120,240')
  parser.add_argument('--digits-evals', type=int, default=20)
  parser.add_argument('--digits-random-shift', type=float, default=0.25,
                      help='also train ours on the digits with this probability '
                      'of one-pixel shifts of the training images (0: not)')
  parser.add_argument('--digits-dropout', type=float, default=0.2,
                      help='and with this dropout rate in the residual blocks '
                      '(0: not)')
  parser.add_argument('--digits-learning-rate', type=float, default=3e-3,
                      help='and with Adam at this rate')
  parser.add_argument('--digits-anneal', action=argparse.BooleanOptionalAction,
                      default=True,
                      help='that run lowers its learning rate along a cosine '
                      'to 1%% of it over each budget, one run per budget')
  parser.add_argument('--moons-steps', type=int, default=3000)
  parser.add_argument('--moons-data', default='sklearn_moons',
                      help="sklearn_moons (scikit-learn's make_moons, noise "
                      "0.05) or moons (tfp_realnvp.data.make_toy_2d)")
  parser.add_argument('--moons-learning-rate', type=float, default=1e-3)
  parser.add_argument('--moons-decay', choices=('none', 'cosine'),
                      default='none',
                      help='cosine: decay the learning rate to 5%% over the '
                      'steps (both models)')
  parser.add_argument('--moons-tfp-hidden', default='128,128',
                      help="hidden layers of TFP's default template")
  parser.add_argument('--eval-examples', type=int, default=0,
                      help='Fashion-MNIST test images (0: all 10,000)')
  parser.add_argument('--throughput-rounds', type=int, default=20,
                      help='interleaved rounds of the throughput task (the '
                      f'{THROUGHPUT_INTERVAL_LEVEL * 100:g}%% interval needs at least '
                      f'{minimum_rounds_for_interval()})')
  parser.add_argument('--throughput-seconds', type=float, default=5.,
                      help='seconds per function and model in each round')
  parser.add_argument('--throughput-shape', default='28,28,1',
                      help='image shape of the throughput task')
  parser.add_argument('--xla', action='store_true',
                      help='compile our training step (and log_prob, sample) '
                      'with XLA')
  parser.add_argument('--num-scales', type=int, default=2)
  parser.add_argument('--hidden-channels', type=int, default=32)
  parser.add_argument('--num-res-blocks', type=int, default=4)
  parser.add_argument('--batch-size', type=int, default=64)
  parser.add_argument('--precision', choices=('bfloat16',), default=None,
                      help='our s/t networks in mixed bfloat16')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--tag', default='')
  reference_lib.add_reference_args(parser)
  args = parser.parse_args(argv)
  if args.smoke:
    for key, value in SMOKE.items():
      setattr(args, key, value)
  tasks = [t for t in args.tasks.split(',') if t]
  unknown = [t for t in tasks if t not in TASKS]
  if unknown:
    parser.error(f'unknown tasks {unknown}; choose from {TASKS}')
  if set(tasks) - {'moons'}:
    reference_lib.check_reference_args(parser, args)
  environment.setup_environment()
  folder = tempfile.mkdtemp(prefix='vs_reference_')
  results = dict(script='vs_reference.py', argv=sys.argv[1:],
                 machine=environment.machine_info(),
                 reference_commit=(environment.git_commit(args.reference_dir)
                                   if args.reference_dir else None),
                 precision=args.precision, tasks={})
  name = f'vs_reference{"-" + args.tag if args.tag else ""}'
  for task in tasks:
    if task == 'fashion':
      out = run_image_task(args, 'fashion_mnist', args.fashion_budget,
                           args.fashion_evals, folder)
    elif task == 'digits':
      budgets = digits_budgets(args)
      out = run_image_task(args, 'digits', budgets[-1], args.digits_evals,
                           folder)
      out['budgets'] = budgets
    elif task == 'moons':
      out = run_moons(args)
    else:
      out = run_throughput(args)
    results['tasks'][task] = out
    results_io.write_json(name + '.json', results)
  text = markdown(results)
  command = 'python benchmarks/vs_reference.py ' + ' '.join(sys.argv[1:])
  results_io.write_text(name + '.md', f'Command: `{command}`\n\n{text}\n')
  print(text)


if __name__ == '__main__':
  main()
