"""Vector flows on a 2-D toy: settings of RealNVPChain((2,)) against TFP's RealNVP.

  python benchmarks/vector_grid.py                       # the default grid
  python benchmarks/vector_grid.py --specs "tfp" "couplings=8,hidden=256x256,bn=0"
  python benchmarks/vector_grid.py --toy moons   # the package's standardised moons

Every setting trains for `--steps` steps of batch 256 on the same 20,000
points (default: scikit-learn's `make_moons(noise=0.05)`) and is scored by
the held-out negative log-likelihood in nats on 20,000 other points (lower
is better), next to scikit-learn's 16-component `GaussianMixture`. A spec is
`tfp` (TFP's `tfb.RealNVP` stack with
`real_nvp_default_template`, reversals between couplings; keys couplings,
hidden, lr, decay) or comma-separated `key=value` of `RealNVPChain`'s vector
settings:

  couplings (8), hidden (128x128), bn (1: invertible batch norm after each
  coupling), momentum (0.95), actnorm (0; 1: Glow's ActNorm after each
  coupling, with bn=0), conv1x1 (0; 1: Glow's invertible 1x1 convolution,
  here a learned DxD mixing, before each coupling), masks (half | random),
  lr (1e-3), decay (none | cosine: to 5% over the steps)

Results: `benchmarks/results/vector_grid-<toy>[-tag].json` and `.md`.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import environment  # pylint: disable=wrong-import-position
from benchkit import results as results_io  # pylint: disable=wrong-import-position

DEFAULTS = dict(couplings='8', hidden='128x128', bn='1', momentum='0.95',
                actnorm='0', conv1x1='0', masks='half', lr='1e-3',
                decay='none')
GRID = (
    'tfp',
    '',                                     # RealNVPChain((2,)) defaults
    'bn=0',
    'momentum=0.99',
    'hidden=256x256',
    'hidden=256x256,bn=0',
    'couplings=16',
    'couplings=16,bn=0',
    'lr=3e-3,decay=cosine',
    'lr=3e-3,decay=cosine,bn=0',
    'hidden=256x256,lr=3e-3,decay=cosine,bn=0',
    'tfp,lr=3e-3,decay=cosine',
)


def parse_spec(spec):
  parts = [p for p in spec.split(',') if p]
  is_tfp = bool(parts) and parts[0] == 'tfp'
  if is_tfp:
    parts = parts[1:]
  values = dict(DEFAULTS)
  for part in parts:
    key, _, value = part.partition('=')
    if key not in DEFAULTS:
      raise SystemExit(f'unknown key {key!r} in spec {spec!r}; keys: '
                       f'{sorted(DEFAULTS)}')
    values[key] = value
  return is_tfp, values


def run_spec(spec, args, train, test):
  import keras  # pylint: disable=g-import-not-at-top
  from benchkit import toys  # pylint: disable=g-import-not-at-top
  is_tfp, v = parse_spec(spec)
  hidden = tuple(int(h) for h in v['hidden'].split('x'))
  keras.backend.clear_session()
  if is_tfp:
    model = toys.tfp_model(int(v['couplings']), hidden, seed=args.seed)
  else:
    model = toys.our_model(
        seed=args.seed, num_couplings=int(v['couplings']), hidden_units=hidden,
        batch_norm=v['bn'] == '1', batch_norm_momentum=float(v['momentum']),
        act_norm=v['actnorm'] == '1', invertible_1x1_conv=v['conv1x1'] == '1',
        vector_masks=v['masks'], mask_seed=args.seed)
  out = toys.train_and_score(
      model, train, test, steps=args.steps, batch_size=args.batch_size,
      learning_rate=float(v['lr']),
      decay=None if v['decay'] == 'none' else v['decay'], seed=args.seed)
  out.update(spec=spec or 'RealNVPChain defaults', model='tfp' if is_tfp
             else 'ours', settings=v, seed=args.seed)
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--specs', nargs='*', default=None,
                      help='settings to compare (default: the built-in grid)')
  parser.add_argument('--toy', default='sklearn_moons',
                      help='sklearn_moons (make_moons, noise 0.05) or a name '
                      'of tfp_realnvp.data.TOY_2D_NAMES')
  parser.add_argument('--steps', type=int, default=3000)
  parser.add_argument('--batch-size', type=int, default=256)
  parser.add_argument('--seeds', default='0')
  parser.add_argument('--tag', default='')
  args = parser.parse_args(argv)
  environment.setup_environment()
  from benchkit import toys  # pylint: disable=g-import-not-at-top
  specs = GRID if args.specs is None else args.specs
  runs = []
  name = f'vector_grid-{args.toy}{"-" + args.tag if args.tag else ""}'
  for seed in [int(s) for s in args.seeds.split(',')]:
    args.seed = seed
    train, test = toys.toy_data(args.toy, seed=seed)
    gmm = toys.gaussian_mixture_nll(train, test, 16, seed)
    runs.append(dict(spec='GaussianMixture(16) (scikit-learn)', model='gmm',
                     test_nll=gmm, params=16 * 6 - 1, seed=seed,
                     seconds=0.))
    print(f'GaussianMixture(16) seed {seed}: held-out NLL {gmm:.3f}',
          flush=True)
    for spec in specs:
      run = run_spec(spec, args, train, test)
      runs.append(run)
      print(f'{run["spec"]:45s} seed {seed}: held-out NLL '
            f'{run["test_nll"]:.3f} nats ({run.get("test_nonfinite", 0)} '
            f'non-finite), {run["params"]} params, '
            f'{run["seconds"]:.0f} s', flush=True)
      results_io.write_json(name + '.json', dict(
          script='vector_grid.py', argv=sys.argv[1:], toy=args.toy,
          steps=args.steps, machine=environment.machine_info(), runs=runs))
  by_spec = {}
  for run in runs:
    by_spec.setdefault(run['spec'], []).append(run)
  lines = [f'`python benchmarks/vector_grid.py {" ".join(sys.argv[1:])}`', '',
           f'{args.toy}, {args.steps} steps of batch {args.batch_size}, '
           f'held-out NLL (nats, lower is better):', '',
           '| setting | params | held-out NLL (mean) | per seed |',
           '|---|---:|---:|---|']
  for spec, group in by_spec.items():
    values = [r['test_nll'] for r in group]
    lines.append(f'| {spec} | {group[0]["params"]} | '
                 f'{sum(values) / len(values):.3f} | '
                 f'{" / ".join(f"{x:.3f}" for x in values)} |')
  text = '\n'.join(lines)
  results_io.write_text(name + '.md', text + '\n')
  print(text)


if __name__ == '__main__':
  main()
