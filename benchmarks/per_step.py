"""Learning per step: held-out bits/dim of model and recipe variants at equal steps.

  python benchmarks/per_step.py --dataset digits --steps 300 \
      --variants baseline,no_ibn,skip,bf16 --seeds 0,1
  python benchmarks/per_step.py --dataset fashion_mnist --steps 300 \
      --variants baseline,reference --reference-dir REF --reference-python PY

Every variant trains for the same number of steps on the same batches (the
package's pipeline with a fixed seed: same order and dequantization noise),
from weights drawn with the same seed, and is scored on the same test array
(dequantized once). Step counts, unlike wall-clock budgets, are not distorted
by other load on the machine; the cost of a step is given beside each
variant instead: parameters and the analytic FLOPs of the s/t networks'
convolutions per image (forward pass).

Variants (`--variants`, comma-separated; `--list` prints them): the package
defaults (`baseline`), without invertible batch norm, with other s/t network
shapes (the reference's concatenated-ReLU, skip-connection network, at equal
width, equal parameters or equal FLOPs), bfloat16 s/t networks, learning-rate
warm-up and other learning rates, batch sizes, L2 on every weight-norm gain,
and the PyTorch reference itself (`reference`). `--ema` adds the held-out
bits/dim of Polyak averages of the weights; `--recompute-bn` adds the
held-out bits/dim after recomputing every batch-norm statistic over the
training set.

Results: `benchmarks/results/per_step-<dataset>[-tag].json` and a markdown
table printed and written beside it.
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import environment  # pylint: disable=wrong-import-position
from benchkit import reference as reference_lib  # pylint: disable=wrong-import-position
from benchkit import results as results_io  # pylint: disable=wrong-import-position


def regularised(shift, dropout, learning_rate, decay='none', precision=None):
  """A variant with one-pixel shifts, dropout and its own Adam step."""
  words = [f'one-pixel moves ({shift:g}), dropout {dropout:g}, Adam '
           f'{learning_rate:g}' + (f' annealed ({decay})' if decay != 'none'
                                   else '')]
  model_kwargs = dict(dropout_rate=dropout)
  if precision:
    words.append(f'{precision} s/t networks')
    model_kwargs['precision'] = precision
  train_kwargs = dict(random_shift=shift, learning_rate=learning_rate)
  if decay != 'none':
    train_kwargs['decay'] = decay
  return ', '.join(words), model_kwargs, train_kwargs


# name -> (description, model kwargs, training kwargs). Model kwargs with
# 'assembled' build `variants.assembled_model`, else `variants.package_model`.
VARIANTS = {
    'baseline': ('package defaults (RealNVPChain, invertible BN)', {}, {}),
    'no_ibn': ('no invertible batch norm', dict(batch_norm=False), {}),
    'ibn_m0.99': ('invertible BN momentum 0.99',
                  dict(batch_norm_momentum=0.99), {}),
    'ibn_m0.8': ('invertible BN momentum 0.8', dict(batch_norm_momentum=0.8),
                 {}),
    'plain_w2': ('package ResNet, channel couplings 2x wide',
                 dict(assembled=True, network='plain', channel_width=2), {}),
    'skip': ("reference's s/t shape and widths (concat-ReLU, skips, "
             'channel couplings 2x wide)',
             dict(assembled=True, network='skip', channel_width=2), {}),
    'skip_noibn': ("reference's s/t shape and widths, no invertible BN",
                   dict(assembled=True, network='skip', channel_width=2,
                        batch_norm=False), {}),
    'skip_w1': ("reference's s/t shape, the package's widths",
                dict(assembled=True, network='skip', channel_width=1), {}),
    'skip_eqparams': ("reference's s/t shape, widths for the package's "
                      'parameter count', dict(assembled=True, network='skip',
                                              channel_width=2,
                                              match='params'), {}),
    'skip_eqflops': ("reference's s/t shape, widths for the package's "
                     'conv FLOPs', dict(assembled=True, network='skip',
                                        channel_width=2, match='flops'), {}),
    'skip_noconcat': ('skip network without concatenated ReLU',
                      dict(assembled=True, network='skip', channel_width=2,
                           network_kwargs=dict(concat_relu=False)), {}),
    'skip_noskips': ('skip network without the skip connections',
                     dict(assembled=True, network='skip', channel_width=2,
                          network_kwargs=dict(skips=False)), {}),
    'noibn_randout': ('no invertible BN, output convs start random (gain '
                      '0.577, as PyTorch weight_norm does)',
                      dict(batch_norm=False, output_gain=0.577), {}),
    'randout': ('output convs start random (gain 0.577)',
                dict(output_gain=0.577), {}),
    'skip_noibn_randout': ("reference's s/t shape and widths, no invertible "
                           'BN, random output init: the reference in the '
                           "package's chain",
                           dict(assembled=True, network='skip',
                                channel_width=2, batch_norm=False,
                                output_gain=0.577), {}),
    'bf16': ('bfloat16 s/t networks (mixed_bfloat16)',
             dict(precision='bfloat16'), {}),
    'warmup100': ('learning-rate warm-up, 100 steps', {},
                  dict(warmup_steps=100)),
    'warmup200': ('learning-rate warm-up, 200 steps', {},
                  dict(warmup_steps=200)),
    'lr2e-3': ('Adam 2e-3', {}, dict(learning_rate=2e-3)),
    'lr5e-4': ('Adam 5e-4', {}, dict(learning_rate=5e-4)),
    'lr2e-3_warmup100': ('Adam 2e-3, warm-up 100 steps', {},
                         dict(learning_rate=2e-3, warmup_steps=100)),
    'batch32': ('batch 32', {}, dict(batch_size=32)),
    'batch128': ('batch 128', {}, dict(batch_size=128)),
    'l2_gains': ('L2 5e-5 on every weight-norm gain too (as the reference)',
                 {}, dict(l2_gains=True)),
    'wd1e-2': ('AdamW, decoupled weight decay 1e-2', {},
               dict(weight_decay=1e-2)),
    'wd1e-1': ('AdamW, decoupled weight decay 1e-1', {},
               dict(weight_decay=1e-1)),
    'shift0.5': ('training images moved by one pixel with probability 0.5',
                 {}, dict(random_shift=0.5)),
    'shift0.25': ('training images moved by one pixel with probability 0.25',
                  {}, dict(random_shift=0.25)),
    'shift1.0': ('training images moved by one pixel, every one', {},
                 dict(random_shift=1.0)),
    'shift0.5_wd1e-2': ('one-pixel moves (0.5) and AdamW 1e-2', {},
                        dict(random_shift=0.5, weight_decay=1e-2)),
    'drop0.1': ('dropout 0.1 in the residual blocks', dict(dropout_rate=0.1), {}),
    'drop0.2': ('dropout 0.2 in the residual blocks', dict(dropout_rate=0.2), {}),
    'drop0.3': ('dropout 0.3 in the residual blocks', dict(dropout_rate=0.3), {}),
    'drop0.4': ('dropout 0.4 in the residual blocks', dict(dropout_rate=0.4), {}),
    'shift0.5_drop0.1': ('one-pixel moves (0.5) and dropout 0.1',
                         dict(dropout_rate=0.1), dict(random_shift=0.5)),
    'shift0.5_drop0.2': ('one-pixel moves (0.5) and dropout 0.2',
                         dict(dropout_rate=0.2), dict(random_shift=0.5)),
    'shift0.5_drop0.3': ('one-pixel moves (0.5) and dropout 0.3',
                         dict(dropout_rate=0.3), dict(random_shift=0.5)),
    'shift0.5_drop0.2_lr2e-3': ('one-pixel moves (0.5), dropout 0.2, Adam 2e-3',
                                dict(dropout_rate=0.2),
                                dict(random_shift=0.5, learning_rate=2e-3)),
    'shift0.5_drop0.1_lr2e-3': ('one-pixel moves (0.5), dropout 0.1, Adam 2e-3',
                                dict(dropout_rate=0.1),
                                dict(random_shift=0.5, learning_rate=2e-3)),
    'shift0.25_drop0.2': ('one-pixel moves (0.25) and dropout 0.2',
                          dict(dropout_rate=0.2), dict(random_shift=0.25)),
    'cosine': ('learning rate annealed to 1% over the run (cosine)', {},
               dict(decay='cosine')),
    'lr2e-3_cosine': ('Adam 2e-3 annealed to 1% over the run (cosine)', {},
                      dict(learning_rate=2e-3, decay='cosine')),
    'shift0.25_drop0.2_lr2e-3': regularised(0.25, 0.2, 2e-3),
    'shift0.25_drop0.2_lr2e-3_cosine': regularised(0.25, 0.2, 2e-3, 'cosine'),
    'shift0.25_drop0.2_lr2e-3_bf16': regularised(0.25, 0.2, 2e-3,
                                                 precision='bfloat16'),
    'shift0.25_drop0.2_lr3e-3': regularised(0.25, 0.2, 3e-3),
    'shift0.25_drop0.2_lr3e-3_cosine': regularised(0.25, 0.2, 3e-3, 'cosine'),
    'shift0.25_drop0.2_lr5e-3': regularised(0.25, 0.2, 5e-3),
    'shift0.25_drop0.1_lr2e-3': regularised(0.25, 0.1, 2e-3),
    'reference': ('chrischute/real-nvp (PyTorch)', dict(reference=True), {}),
}


def build(name, args, data):
  """(ImageModel, training kwargs) of a variant."""
  from benchkit import variants  # pylint: disable=g-import-not-at-top
  _, model_kwargs, train_kwargs = VARIANTS[name]
  model_kwargs = dict(model_kwargs)
  output_gain = model_kwargs.pop('output_gain', None)
  common = dict(num_scales=args.num_scales, hidden_channels=args.hidden_channels,
                num_res_blocks=args.num_res_blocks, seed=args.model_seed)
  if model_kwargs.pop('assembled', False):
    match = model_kwargs.pop('match', None)
    if match:
      common['hidden_channels'] = matched_width(
          data.event_shape, common, model_kwargs, match)
    model = variants.assembled_model(data.event_shape, **common, **model_kwargs)
  else:
    model = variants.package_model(data.event_shape, **common, **model_kwargs)
  if output_gain is not None:
    variants.set_output_gain(model, output_gain)
  model.description = VARIANTS[name][0]
  if name.startswith('skip_eq'):
    model.description += f' (F = {common["hidden_channels"]})'
  return model, dict(train_kwargs)


def conv_flops_per_image(model):
  from benchkit import flops  # pylint: disable=g-import-not-at-top
  return flops.analytic_conv_flops(model, 1)


def matched_width(event_shape, common, model_kwargs, match):
  """The first-scale width F of a variant closest to the baseline's cost."""
  import keras  # pylint: disable=g-import-not-at-top
  from benchkit import variants  # pylint: disable=g-import-not-at-top

  def cost(model):
    return (model.num_params if match == 'params'
            else conv_flops_per_image(model))

  baseline = variants.package_model(event_shape, **common)
  target = cost(baseline)
  best = None
  for width in range(max(4, common['hidden_channels'] // 3),
                     common['hidden_channels'] + 1, 2):
    kwargs = dict(common, hidden_channels=width)
    value = cost(variants.assembled_model(event_shape, **kwargs,
                                          **model_kwargs))
    if best is None or abs(value - target) < abs(best[1] - target):
      best = (width, value)
    keras.backend.clear_session()
  return best[0]


def run_variant(name, args, data, seed):
  import keras  # pylint: disable=g-import-not-at-top
  from benchkit import training  # pylint: disable=g-import-not-at-top
  from benchkit import variants  # pylint: disable=g-import-not-at-top
  keras.backend.clear_session()
  model, train_kwargs = build(name, args, data)
  learning_rate = train_kwargs.pop('learning_rate', args.learning_rate)
  warmup = train_kwargs.pop('warmup_steps', 0)
  decay = train_kwargs.pop('decay', 'none')
  if warmup or decay != 'none':
    from tfp_realnvp.train import WarmupDecay  # pylint: disable=g-import-not-at-top
    learning_rate = WarmupDecay(
        learning_rate, warmup_steps=warmup, decay=decay,
        decay_steps=None if decay == 'none' else args.steps - warmup)
  l2_variables = None
  if train_kwargs.pop('l2_gains', False):
    gains = [w.value for net in model.networks for w in net.weights
             if w.path.endswith('gain')]
    l2_variables = tuple(model.l2_variables) + tuple(gains)
    model.l2_variables = l2_variables
  batch_size = train_kwargs.pop('batch_size', args.batch_size)
  eval_fn = None
  if args.recompute_bn:
    helpers = {}

    def eval_fn(model, data, averages):
      if not helpers:
        helpers['recompute'] = variants.BatchNormRecomputer(
            model, data, num_examples=args.recompute_examples or None)
        helpers['evaluate'] = training.Evaluator(model.dist, data)

      def recomputed():
        snapshot = variants.snapshot_batch_norm_statistics(model)
        helpers['recompute']()
        value = helpers['evaluate']()
        variants.restore_batch_norm_statistics(snapshot)
        return value

      t0 = time.perf_counter()
      out = {'test_bpd_recomputed_bn': recomputed()}
      out['recompute_bn_seconds'] = time.perf_counter() - t0
      for avg in averages:  # Averaged weights need their own statistics.
        with avg.swapped():
          out[f'test_bpd_ema_{avg.decay:g}_recomputed_bn'] = recomputed()
      return out
  result = training.train(
      model, data, steps=args.steps, evals=args.evals, batch_size=batch_size,
      seed=args.data_seed + seed, learning_rate=learning_rate,
      ema_decays=args.ema, eval_fn=eval_fn, label=f'{name}/seed {seed}',
      log=print, **train_kwargs)
  result.update(variant=name, description=model.description,
                params=model.num_params,
                conv_gflops_per_image=conv_flops_per_image(model) / 1e9)
  return result


def run_reference(args, data, seed, folder):
  path = reference_lib.write_data(data, folder)
  result = reference_lib.train(
      args, path, os.path.join(folder, f'reference-{seed}.json'),
      steps=args.steps, evals=args.evals, num_scales=args.num_scales,
      hidden_channels=args.hidden_channels,
      num_res_blocks=args.num_res_blocks, batch_size=args.batch_size,
      learning_rate=args.learning_rate, seed=args.data_seed + seed)
  result.update(variant='reference', description=VARIANTS['reference'][0],
                params=result['num_params'],
                conv_gflops_per_image=result['forward_flops_per_image'] / 1e9)
  return result


def table(runs, steps):
  """Markdown: one row per variant, mean over seeds of the last evaluation."""
  by_name = {}
  for run in runs:
    by_name.setdefault(run['variant'], []).append(run)
  base = by_name.get('baseline')
  base_final = (sum(r['curve'][-1]['test_bpd'] for r in base) / len(base)
                if base else None)
  extra_keys = sorted({k for r in runs for k in r['curve'][-1]
                       if k.startswith('test_bpd_') and
                       isinstance(r['curve'][-1][k], float)})
  head = '| ' + ' | '.join(
      ['variant', 'params', 'conv GFLOP/img', 'seeds',
       f'test bpd at step {steps} (mean)', 'per seed', 'vs baseline',
       'best on curve'] + extra_keys) + ' |'
  lines = [head, '|' + '---|' * (8 + len(extra_keys))]
  for name, group in by_name.items():
    finals = [r['curve'][-1]['test_bpd'] for r in group]
    mean = sum(finals) / len(finals)
    best = min(p['test_bpd'] for r in group for p in r['curve'])
    extras = []
    for key in extra_keys:
      values = [r['curve'][-1].get(key) for r in group]
      values = [v for v in values if v is not None]
      extras.append(f'{sum(values) / len(values):.3f}' if values else '-')
    delta = f'{mean - base_final:+.3f}' if base_final is not None else '-'
    lines.append('| ' + ' | '.join(
        [f'{name}: {group[0]["description"]}',
         f'{group[0]["params"] / 1e6:.2f}M',
         f'{group[0]["conv_gflops_per_image"]:.3f}', str(len(group)),
         f'{mean:.3f}', ' / '.join(f'{v:.3f}' for v in finals), delta,
         f'{best:.3f}'] + extras) + ' |')
  return '\n'.join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--dataset', default='digits',
                      choices=('digits', 'fashion_mnist'))
  parser.add_argument('--variants', default='baseline,no_ibn')
  parser.add_argument('--list', action='store_true', help='list the variants')
  parser.add_argument('--steps', type=int, default=300)
  parser.add_argument('--evals', type=int, default=3)
  parser.add_argument('--seeds', default='0', help='comma-separated')
  parser.add_argument('--data-seed', type=int, default=0,
                      help='seed of the batches (plus the run seed)')
  parser.add_argument('--model-seed', type=int, default=0)
  parser.add_argument('--num-scales', type=int, default=2)
  parser.add_argument('--hidden-channels', type=int, default=32)
  parser.add_argument('--num-res-blocks', type=int, default=4)
  parser.add_argument('--batch-size', type=int, default=64)
  parser.add_argument('--learning-rate', type=float, default=1e-3)
  parser.add_argument('--eval-examples', type=int, default=2000,
                      help='test images (0: all)')
  parser.add_argument('--ema', default='',
                      help='Polyak decays to evaluate too, e.g. 0.99,0.998')
  parser.add_argument('--recompute-bn', action='store_true')
  parser.add_argument('--recompute-examples', type=int, default=10000)
  parser.add_argument('--tag', default='')
  reference_lib.add_reference_args(parser)
  args = parser.parse_args(argv)
  if args.list:
    for name, (description, _, _) in VARIANTS.items():
      print(f'{name:18s} {description}')
    return
  names = [n for n in args.variants.split(',') if n]
  unknown = [n for n in names if n not in VARIANTS]
  if unknown:
    parser.error(f'unknown variants {unknown}; --list shows them')
  if 'reference' in names:
    reference_lib.check_reference_args(parser, args)
  args.ema = tuple(float(d) for d in args.ema.split(',') if d)
  environment.setup_environment()
  from benchkit import training  # pylint: disable=g-import-not-at-top
  data = training.load_image_data(args.dataset, args.eval_examples)
  print(f'{args.dataset}: {len(data.train)} train, {len(data.test)} test, '
        f'{args.steps} steps per run', flush=True)
  folder = tempfile.mkdtemp(prefix='per_step_')
  runs = []
  name_json = f'per_step-{args.dataset}{"-" + args.tag if args.tag else ""}'
  for seed in [int(s) for s in args.seeds.split(',')]:
    for name in names:
      start = time.perf_counter()
      if name == 'reference':
        run = run_reference(args, data, seed, folder)
      else:
        run = run_variant(name, args, data, seed)
      run['seed'] = seed
      run['run_seconds'] = time.perf_counter() - start
      runs.append(run)
      results_io.write_json(name_json + '.json', dict(
          script='per_step.py', argv=sys.argv[1:], dataset=args.dataset,
          steps=args.steps, machine=environment.machine_info(), runs=runs))
  text = table(runs, args.steps)
  command = 'python benchmarks/per_step.py ' + ' '.join(sys.argv[1:])
  results_io.write_text(name_json + '.md', f'`{command}`\n\n{text}\n')
  print(text)
  print(json.dumps(dict(wrote=name_json + '.json')))


if __name__ == '__main__':
  main()
