"""Score out-of-distribution image sets against a trained Real NVP run.

The in-distribution set is the run's test split (`RUN_DIR/config.json` names its
dataset); the flow is read from the run's SavedModel (`RUN_DIR/saved_model`,
its `log_prob`), so any exported flow can be scored. OOD sets (`--ood-sets`):
`digits`, `noise`, `constant`, `vflip` offline, `mnist`/`kmnist` through
tensorflow-datasets (skipped with a note when they cannot be loaded), and any
`--ood-data-dir` (an IDX folder or a `.npz`; its test split). Every set is
brought to the run's image shape and grey levels (`tfp_realnvp.ood.datasets`)
and dequantized with the same seed.

Methods (`tfp_realnvp.ood`; each an anomaly score, larger = more likely OOD, and
OOD is the positive class of every metric):

- `bits_per_dim`: the raw likelihood;
- `typicality`: `|log p(x) - mean log p(train)|` (Nalisnick et al. 2019), the
  mean over `--num-reference` training images;
- `complexity`: bits/dim minus the bits/dim of a lossless compressor's file,
  lossless JPEG 2000 (`--compressor`, default) or PNG (Serra et al. 2020);
- `likelihood_ratio`: `log p_0(x) - log p(x)` (Ren et al. 2019), with `p_0` a
  flow of the run's architecture trained for `--background-steps` steps on
  training images perturbed at rate `--mutation-rate` (or `--background-model`).

Also the batch typicality test (batches of `--typicality-batch-size` inputs, a
bootstrap threshold at `--alpha` from held-out training images).

Writes to `--output-dir` (default `RUN_DIR/ood`): `ood.json` (`results`: one
record `{ood_set, method, auroc, aupr, fpr95}` per set and method, and the
details, e.g. `complexity_by_compressor`: the metrics of both compressors),
`ood.md` (the same as tables), `bits_per_dim_histograms.png`,
`roc_curves.png`, and `background_saved_model/` when a background flow was
trained. Bad input (no run folder, no SavedModel, an unknown set...) ends with
one line on stderr and exit code 2.

```
python examples/detect_ood.py runs/train_mnist --output-dir runs/train_mnist/ood
python examples/detect_ood.py RUN --ood-sets digits noise --background-steps 0
python examples/detect_ood.py RUN --ood-data-dir ~/data/mnist.npz
```
"""

import argparse
import json
import logging
import os
import sys
import time

os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # pylint: disable=g-import-not-at-top

from tfp_realnvp.cli import common  # pylint: disable=g-import-not-at-top

PROG = 'detect_ood.py'
DEFAULT_OOD_SETS = ('digits', 'noise', 'constant', 'vflip', 'mnist', 'kmnist')
# Default of --background-steps when the run's step count is larger or unknown.
MAX_DEFAULT_BACKGROUND_STEPS = 2000
REQUIRED_CONFIG_KEYS = ('dataset', 'image_shape', 'num_levels')
# Keys of score_all's tables besides the OOD sets' names.
_RESERVED_NAMES = ('in', 'reference')
ARCHITECTURE_KEYS = ('num_scales', 'hidden_channels', 'num_res_blocks')
METHOD_DESCRIPTIONS = {
    'bits_per_dim': 'bits/dim, (-log p(x)/D + log L)/log 2 (raw likelihood)',
    'typicality': '|log p(x) - mean training log p| (Nalisnick et al. 2019, '
                  'https://arxiv.org/abs/1906.02994)',
    'complexity': 'bits/dim - compressed bits/dim (Serra et al. 2020, '
                  'https://arxiv.org/abs/1909.11480)',
    'likelihood_ratio': 'log p_background(x) - log p(x) (Ren et al. 2019, '
                        'https://arxiv.org/abs/1906.02845)',
}


class UsageError(Exception):
  """Bad input: reported as one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):

  def error(self, message):
    raise UsageError(message)


def _probability(text):
  value = float(text)
  if not 0. <= value <= 1.:
    raise argparse.ArgumentTypeError(f'must be in [0, 1], got {text}')
  return value


def parse_args(argv=None):
  parser = _Parser(prog=PROG, description=__doc__.split('\n\n')[0],
                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('run_dir', help='the --output-dir of examples/train_mnist.py')
  parser.add_argument('--output-dir', default=None, help='default RUN_DIR/ood')
  parser.add_argument('--ood-sets', nargs='*', default=list(DEFAULT_OOD_SETS),
                      choices=DEFAULT_OOD_SETS, metavar='SET',
                      help=f'OOD sets among {", ".join(DEFAULT_OOD_SETS)}')
  parser.add_argument('--ood-data-dir', action='append', default=[], metavar='PATH',
                      help='an extra OOD set: IDX folder or .npz (test split); '
                           'may be repeated')
  parser.add_argument('--data-dir', default=None,
                      help="override the run's --data-dir (in-distribution data)")
  parser.add_argument('--max-examples', type=common.positive_int, default=2000,
                      help='images scored per set (the first ones of each)')
  parser.add_argument('--num-reference', type=common.positive_int, default=2000,
                      help='training images whose mean log p is the typical one; '
                           'as many further ones set the batch test threshold')
  parser.add_argument('--batch-size', type=common.positive_int, default=500,
                      help='images per log_prob call')
  parser.add_argument('--background-steps', type=common.count, default=None,
                      help='training steps of the background flow; 0: no '
                           'likelihood_ratio (default: the run\'s steps from '
                           f'metrics.json, at most {MAX_DEFAULT_BACKGROUND_STEPS})')
  parser.add_argument('--background-model', default=None, metavar='SAVED_MODEL',
                      help='use this background SavedModel instead of training one')
  parser.add_argument('--mutation-rate', type=_probability, default=0.15,
                      help='probability of replacing a sub-pixel when training the '
                           'background flow')
  parser.add_argument('--compressor', default='jpeg2000', choices=('jpeg2000', 'png'),
                      help='lossless compressor of the complexity score (both are '
                           'reported in complexity_by_compressor)')
  parser.add_argument('--typicality-batch-size', type=common.positive_int, default=10,
                      help='inputs per batch of the batch typicality test')
  parser.add_argument('--num-batches', type=common.positive_int, default=200,
                      help='batches drawn from each set for the batch test')
  parser.add_argument('--alpha', type=float, default=0.01,
                      help='in-distribution rejection rate of the batch test')
  parser.add_argument('--seed', type=int, default=0,
                      help='seed of the generated sets, background flow and batches')
  args = parser.parse_args(argv)
  if not 0. < args.alpha < 1.:
    raise UsageError(f'--alpha must be in (0, 1); got {args.alpha}')
  if args.background_model is not None and args.background_steps:
    raise UsageError('--background-model and --background-steps exclude each other')
  return args


def _first_line(error):
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__


def read_run(run_dir):
  """Checks the run folder; returns its `(config, metrics, saved_model_path)`."""
  if not os.path.isdir(run_dir):
    raise UsageError(f'run folder {run_dir} does not exist')
  config_path = os.path.join(run_dir, 'config.json')
  if not os.path.isfile(config_path):
    raise UsageError(f'{config_path} not found: is {run_dir} the --output-dir of '
                     'examples/train_mnist.py?')
  try:
    with open(config_path) as f:
      config = json.load(f)
  except (OSError, ValueError) as err:
    raise UsageError(f'{config_path} is not readable JSON: {_first_line(err)}') from err
  if not isinstance(config, dict):
    raise UsageError(f'{config_path} holds no JSON object')
  missing = [key for key in REQUIRED_CONFIG_KEYS if key not in config]
  if missing:
    raise UsageError(f'{config_path} lacks the keys {missing}')
  saved_model = os.path.join(run_dir, 'saved_model')
  if not os.path.isfile(os.path.join(saved_model, 'saved_model.pb')):
    raise UsageError(f'{saved_model} holds no SavedModel: train without --no-export, '
                     'or export the run first')
  metrics = None
  metrics_path = os.path.join(run_dir, 'metrics.json')
  if os.path.isfile(metrics_path):
    try:
      with open(metrics_path) as f:
        metrics = json.load(f)
    except (OSError, ValueError):
      metrics = None
  return config, metrics, saved_model


def _load_log_prob(path, image_shape, what):
  from tfp_realnvp import ood  # pylint: disable=g-import-not-at-top
  try:
    return ood.saved_model_log_prob(path, event_shape=image_shape)
  except FileNotFoundError as err:
    raise UsageError(f'the {what} {path} holds no SavedModel (no saved_model.pb)') from err
  except ValueError as err:
    raise UsageError(f'{what}: {_first_line(err)} (config.json of the run: '
                     f'{tuple(image_shape)})') from err
  except Exception as err:  # pylint: disable=broad-except
    raise UsageError(f'cannot load the {what} {path}: {_first_line(err)}') from err


def load_in_distribution(config, data_dir):
  """The run's `ImageData`, loaded as `examples/train_mnist.py` loaded it."""
  from tfp_realnvp.data import load_images  # pylint: disable=g-import-not-at-top
  image_size = config.get('image_size')
  try:
    data = load_images(config['dataset'], data_dir=data_dir or config.get('data_dir'),
                       image_size=(image_size, image_size) if image_size else None,
                       max_examples=config.get('max_examples'))
  except (RuntimeError, OSError, ValueError, ImportError) as err:
    raise UsageError(f"cannot load the run's dataset {config['dataset']!r}: "
                     f'{_first_line(err)} (pass --data-dir)') from err
  shape = tuple(config['image_shape'])
  if data.image_shape != shape or data.num_levels != config['num_levels']:
    raise UsageError(f'the loaded {config["dataset"]} images are {data.image_shape} with '
                     f'{data.num_levels} levels, but the run was trained on {shape} with '
                     f'{config["num_levels"]}')
  return data


def build_ood_sets(args, config, test_images, log):
  """`({name: (images, source)}, [{'ood_set', 'reason'}])` of the requested sets."""
  from tfp_realnvp.ood import datasets  # pylint: disable=g-import-not-at-top
  shape = tuple(config['image_shape'])
  levels = config['num_levels']
  count = args.max_examples
  sets, skipped = {}, []
  for name in dict.fromkeys(args.ood_sets):
    if name == config['dataset']:
      skipped.append(dict(ood_set=name, reason='it is the in-distribution dataset'))
      continue
    if name == 'digits':
      images = datasets.digits_images(shape, levels)[:count]
      source = 'sklearn.datasets.load_digits, resized and rescaled'
    elif name == 'noise':
      images = datasets.noise_images(count, shape, levels, seed=args.seed)
      source = 'uniform levels'
    elif name == 'constant':
      images = datasets.constant_images(count, shape, levels, seed=args.seed)
      source = 'one uniform level per image'
    elif name == 'vflip':
      images = datasets.vflip_images(test_images)
      source = 'the in-distribution test images flipped upside down'
    else:
      try:
        images = datasets.tfds_images(name, shape, levels, max_examples=count)
        source = 'tensorflow_datasets (test split)'
      except (RuntimeError, OSError, ImportError) as err:
        reason = f'tensorflow-datasets could not load it: {_first_line(err)[:300]}'
        log(f'skipping {name}: {reason}')
        skipped.append(dict(ood_set=name, reason=reason))
        continue
    sets[name] = (images, source)
  for path in args.ood_data_dir:
    name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0] or path
    if name in sets or name in _RESERVED_NAMES:
      name = path
    try:
      images = datasets.local_images(path, shape, levels, max_examples=count)
    except (OSError, ValueError) as err:
      raise UsageError(f'--ood-data-dir {path}: {_first_line(err)}') from err
    sets[name] = (images, os.path.abspath(path))
  return sets, skipped


def _background_steps(args, metrics):
  if args.background_steps is not None:
    return args.background_steps
  run_steps = (metrics or {}).get('final_step')
  if not isinstance(run_steps, int) or run_steps < 1:
    return MAX_DEFAULT_BACKGROUND_STEPS
  return min(run_steps, MAX_DEFAULT_BACKGROUND_STEPS)


def train_background(args, config, train_images, steps, out, log):
  """Trains, exports and returns the path of the background SavedModel."""
  from tfp_realnvp import ood  # pylint: disable=g-import-not-at-top
  from tfp_realnvp.train import export_saved_model  # pylint: disable=g-import-not-at-top
  from tfp_realnvp.train import make_flow  # pylint: disable=g-import-not-at-top
  missing = [key for key in ARCHITECTURE_KEYS if key not in config]
  if missing:
    raise UsageError(f'config.json lacks {missing}, needed to build the background '
                     'flow; pass --background-steps 0 or --background-model')
  shape = tuple(config['image_shape'])

  def flow_fn():
    return make_flow(shape, num_scales=config['num_scales'],
                     hidden_channels=config['hidden_channels'],
                     num_res_blocks=config['num_res_blocks'])

  batch_size = min(int(config.get('batch_size', 64)), len(train_images))
  log(f'training the background flow: {steps} steps of {batch_size} training images '
      f'perturbed at rate {args.mutation_rate}')
  tic = time.time()
  flow = ood.train_background_flow(
      train_images, config['num_levels'], flow_fn, steps=steps, batch_size=batch_size,
      learning_rate=float(config.get('lr', 1e-3)), mutation_rate=args.mutation_rate,
      l2_scale=float(config.get('l2', 5e-5)),
      clip_norm=config.get('clip_norm') or None, seed=args.seed)
  path = os.path.join(out, 'background_saved_model')
  export_saved_model(flow, shape, path, num_levels=config['num_levels'])
  log(f'background flow trained in {time.time() - tic:.0f} s, exported to {path}')
  return path


def score_all(args, config, log_prob, background_log_prob, test, reference, sets):
  """Log-probs and the scores of every method, in and out of distribution.

  Returns `(in_scores, ood_scores, log_probs, compressor_scores)`: `in_scores`
  maps a method to its scores of the test images; `ood_scores` maps a method to
  `{set name: scores}`; `log_probs` holds the log-probs of `'in'`,
  `'reference'` and each set; `compressor_scores` maps each compressor to
  `('in' or set name) -> complexity scores`.
  """
  from tfp_realnvp import ood  # pylint: disable=g-import-not-at-top
  shape, levels = tuple(config['image_shape']), config['num_levels']

  def log_probs_of(fn, images):
    return ood.image_log_probs(fn, images, levels, batch_size=args.batch_size)

  named = dict(sets, **{'in': test})
  log_probs = {name: log_probs_of(log_prob, images) for name, images in named.items()}
  log_probs['reference'] = log_probs_of(log_prob, reference)
  compressor_scores = {
      compressor: {name: ood.complexity_scores(log_probs[name], images, levels, compressor)
                   for name, images in named.items()}
      for compressor in dict.fromkeys([args.compressor] + list(ood.complexity.COMPRESSORS))}
  by_method = dict(
      bits_per_dim={n: ood.bits_per_dim_scores(log_probs[n], shape, levels) for n in named},
      typicality={n: ood.typicality_scores(log_probs[n], log_probs['reference'])
                  for n in named},
      complexity=dict(compressor_scores[args.compressor]))
  if background_log_prob is not None:
    by_method['likelihood_ratio'] = {
        n: ood.likelihood_ratio_scores(log_probs[n], log_probs_of(background_log_prob, images))
        for n, images in named.items()}
  in_scores = {method: scores.pop('in') for method, scores in by_method.items()}
  return in_scores, by_method, log_probs, compressor_scores


def metric_records(in_scores, ood_scores, key='method'):
  """One `{ood_set, <key>, auroc, aupr, fpr95}` per set and method (or compressor)."""
  from tfp_realnvp import ood  # pylint: disable=g-import-not-at-top
  records = []
  names = next(iter(ood_scores.values()))
  for name in names:
    for method, by_set in ood_scores.items():
      try:
        values = ood.detection_metrics(in_scores[method], by_set[name])
      except ValueError as err:
        raise UsageError(f'{method} on {name}: {_first_line(err)}') from err
      records.append({'ood_set': name, key: method, **values})
  return records


def batch_typicality(args, log_probs, validation_lp, set_names):
  """The batch typicality test on random batches of the test split and each set."""
  from tfp_realnvp import ood  # pylint: disable=g-import-not-at-top
  size = args.typicality_batch_size
  if len(log_probs['in']) < size or len(validation_lp) < 1:
    return None
  test = ood.TypicalityTest(log_probs['reference'], validation_lp, size, alpha=args.alpha,
                            seed=args.seed)
  in_stats = test.statistic(test.random_batches(log_probs['in'], args.num_batches, args.seed))
  results = []
  for name in set_names:
    if len(log_probs[name]) < size or not np.isfinite(log_probs[name]).all():
      continue
    stats = test.statistic(test.random_batches(log_probs[name], args.num_batches,
                                               args.seed + 1))
    results.append(dict(ood_set=name, rejection_rate=float(np.mean(stats > test.threshold)),
                        auroc=ood.auroc(in_stats, stats)))
  return dict(batch_size=size, alpha=args.alpha, num_batches=args.num_batches,
              threshold_nats=test.threshold, entropy_nats=test.entropy,
              in_distribution_rejection_rate=float(np.mean(in_stats > test.threshold)),
              results=results)


def _format(value):
  return f'{value:.4f}' if np.isfinite(value) else str(value)


def markdown_report(report):
  """The tables of `ood.md` from the `ood.json` report."""
  methods = report['methods_run']
  sets = list(report['ood_sets'])
  by_key = {(r['ood_set'], r['method']): r for r in report['results']}
  lines = [f"# Out-of-distribution detection: {report['dataset']} flow", '',
           f"In-distribution: the first {report['in_distribution']['num_images']} images "
           f"of the {report['dataset']} test split; model: `{report['saved_model']}` "
           f"({report['run_steps']} training steps). Positive class: OOD; every score is "
           'larger for inputs more likely OOD. '
           f"`complexity` uses the {report['complexity_compressor']} compressor.", '',
           '## AUROC', '', '| OOD set | ' + ' | '.join(methods) + ' |',
           '|---|' + '---:|' * len(methods)]
  for name in sets:
    cells = [_format(by_key[(name, m)]['auroc']) for m in methods]
    lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  lines += ['', '## All metrics', '', '| OOD set | method | AUROC | AUPR | FPR95 |',
            '|---|---|---:|---:|---:|']
  for record in report['results']:
    lines.append(f"| {record['ood_set']} | {record['method']} | {_format(record['auroc'])} "
                 f"| {_format(record['aupr'])} | {_format(record['fpr95'])} |")
  lines += ['', '## complexity by compressor', '',
            '| OOD set | compressor | AUROC | AUPR | FPR95 |', '|---|---|---:|---:|---:|']
  for record in report['complexity_by_compressor']:
    lines.append(f"| {record['ood_set']} | {record['compressor']} | "
                 f"{_format(record['auroc'])} | {_format(record['aupr'])} | "
                 f"{_format(record['fpr95'])} |")
  lines += ['', '## Mean bits/dim', '', '| set | images | mean bits/dim |', '|---|---:|---:|',
            f"| {report['dataset']} (test) | {report['in_distribution']['num_images']} | "
            f"{_format(report['in_distribution']['mean_bits_per_dim'])} |"]
  for name, info in report['ood_sets'].items():
    lines.append(f"| {name} | {info['num_images']} | {_format(info['mean_bits_per_dim'])} |")
  batch = report.get('typicality_batch_test')
  if batch:
    lines += ['', f"## Batch typicality test (batches of {batch['batch_size']}, "
              f"alpha = {batch['alpha']:g})", '',
              f"In-distribution batches rejected: "
              f"{_format(batch['in_distribution_rejection_rate'])}.", '',
              '| OOD set | OOD batches rejected | AUROC (batches) |', '|---|---:|---:|']
    for record in batch['results']:
      lines.append(f"| {record['ood_set']} | {_format(record['rejection_rate'])} | "
                   f"{_format(record['auroc'])} |")
  if report['skipped']:
    lines += ['', '## Skipped', '']
    lines += [f"- {s['ood_set']}: {s['reason']}" for s in report['skipped']]
  if report.get('background'):
    lines += ['', f"Background flow of `likelihood_ratio`: {report['background']['source']}."]
  return '\n'.join(lines) + '\n'


def _setup_logging():
  logger = logging.getLogger('tfp_realnvp.ood')
  if not logger.handlers:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter('%(message)s'))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _log(message):
  print(message, flush=True)


def _run(argv):
  try:
    args = parse_args(argv)
  except SystemExit as exit_:  # --help
    return int(exit_.code or 0)
  config, run_metrics, saved_model = read_run(args.run_dir)
  out = args.output_dir or os.path.join(args.run_dir, 'ood')
  for path in args.ood_data_dir:
    if not os.path.exists(path):
      raise UsageError(f'--ood-data-dir {path} does not exist')
  if args.background_model is not None and not os.path.isdir(args.background_model):
    raise UsageError(f'--background-model {args.background_model} does not exist')
  try:
    os.makedirs(out, exist_ok=True)
  except OSError as err:
    raise UsageError(f'cannot create --output-dir {out}: {_first_line(err)}') from err
  _setup_logging()

  from tfp_realnvp import ood  # pylint: disable=g-import-not-at-top
  shape = tuple(config['image_shape'])
  log_prob = _load_log_prob(saved_model, shape, 'SavedModel')
  data = load_in_distribution(config, args.data_dir)
  test = data.test[:args.max_examples]
  # The first training images give the typical log p, as many further ones the
  # batch test's threshold (half each when the split is smaller).
  num_reference = min(args.num_reference, max(len(data.train) // 2, 1))
  reference = data.train[:num_reference]
  validation = data.train[num_reference:2 * num_reference]
  sets, skipped = build_ood_sets(args, config, test, _log)
  if not sets:
    raise UsageError('no OOD set to score: ' + '; '.join(
        f"{s['ood_set']}: {s['reason']}" for s in skipped))
  _log(f'in-distribution: {data.name} test split, {len(test)} images; OOD sets: ' +
       ', '.join(f'{name} ({len(images)})' for name, (images, _) in sets.items()))

  background, background_log_prob = None, None
  if args.background_model is not None:
    background_path = args.background_model
    background = dict(source=f'the SavedModel {os.path.abspath(background_path)}',
                      saved_model=os.path.abspath(background_path))
  else:
    steps = _background_steps(args, run_metrics)
    if steps > 0:
      background_path = train_background(args, config, data.train, steps, out, _log)
      background = dict(
          source=f'{steps} steps on training images perturbed at rate '
                 f'{args.mutation_rate}, exported to {background_path}',
          steps=steps, mutation_rate=args.mutation_rate, saved_model=background_path)
  if background is not None:
    background_log_prob = _load_log_prob(background_path, shape, 'background SavedModel')

  tic = time.time()
  set_images = {name: images for name, (images, _) in sets.items()}
  in_scores, ood_scores, log_probs, compressor_scores = score_all(
      args, config, log_prob, background_log_prob, test, reference, set_images)
  validation_lp = ood.image_log_probs(log_prob, validation, config['num_levels'],
                                      batch_size=args.batch_size)
  _log(f'scored every set in {time.time() - tic:.0f} s')
  results = metric_records(in_scores, ood_scores)
  by_compressor = metric_records(
      {c: scores['in'] for c, scores in compressor_scores.items()},
      {c: {n: v for n, v in scores.items() if n != 'in'}
       for c, scores in compressor_scores.items()}, key='compressor')
  batch_test = batch_typicality(args, log_probs, validation_lp, list(sets))

  figures = dict(bits_per_dim_histograms=os.path.join(out, 'bits_per_dim_histograms.png'),
                 roc_curves=os.path.join(out, 'roc_curves.png'))
  ood.plots.bits_per_dim_histograms(in_scores['bits_per_dim'], ood_scores['bits_per_dim'],
                                    in_name=f'{data.name} (test)',
                                    path=figures['bits_per_dim_histograms'])
  ood.plots.roc_curves(in_scores, ood_scores, path=figures['roc_curves'])

  methods = list(in_scores)
  report = dict(
      run_dir=os.path.abspath(args.run_dir), saved_model=os.path.abspath(saved_model),
      dataset=config['dataset'], image_shape=list(shape), num_levels=config['num_levels'],
      run_steps=(run_metrics or {}).get('final_step'),
      positive_class='out-of-distribution',
      score_direction='larger scores are more likely out-of-distribution',
      methods={m: METHOD_DESCRIPTIONS[m] for m in methods}, methods_run=methods,
      complexity_compressor=args.compressor,
      in_distribution=dict(
          name=f'{data.name} test split', num_images=int(len(test)),
          mean_bits_per_dim=float(np.mean(in_scores['bits_per_dim'])),
          num_reference=int(len(reference)), num_validation=int(len(validation)),
          mean_reference_log_prob=float(np.mean(log_probs['reference']))),
      ood_sets={name: dict(num_images=int(len(images)), source=source,
                           mean_bits_per_dim=float(np.mean(ood_scores['bits_per_dim'][name])))
                for name, (images, source) in sets.items()},
      skipped=skipped, background=background, results=results,
      complexity_by_compressor=by_compressor, typicality_batch_test=batch_test,
      figures={k: os.path.relpath(v, out) for k, v in figures.items()},
      dequantization_seed=ood.likelihood.DEQUANTIZATION_SEED, seed=args.seed)
  with open(os.path.join(out, 'ood.json'), 'w') as f:
    json.dump(report, f, indent=2)
    f.write('\n')
  table = markdown_report(report)
  with open(os.path.join(out, 'ood.md'), 'w') as f:
    f.write(table)
  _log(table.split('## All metrics')[0].rstrip())
  _log(f'wrote {out}/ood.json, ood.md and the figures')
  return 0


def main(argv=None):
  """Runs the job; returns the exit code (0, or 2 after a one-line error)."""
  try:
    return _run(argv)
  except UsageError as err:
    print(f'{PROG}: error: {" ".join(str(err).split())}', file=sys.stderr, flush=True)
    return 2


if __name__ == '__main__':
  sys.exit(main())
