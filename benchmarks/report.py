"""Markdown tables from the JSON results; writes `benchmarks/results/latest.md`.

  python benchmarks/report.py        # rebuild latest.md from results/*.json

`speed.py` and `quality.py` call this at the end of every run, so latest.md
always shows the newest result of each script and configuration.
"""

import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import results as results_io  # pylint: disable=wrong-import-position


def _fmt(value, digits=1):
  if value is None:
    return '-'
  if isinstance(value, float):
    return f'{value:.{digits}f}'
  return str(value)


def _cfg_text(cfg):
  shape = 'x'.join(str(d) for d in cfg['event_shape'])
  return (f'{shape}, {cfg["num_scales"]} scales, {cfg["hidden_channels"]} '
          f'channels, {cfg["num_res_blocks"]} residual blocks, batch '
          f'{cfg["batch_size"]}')


def speed_table(results):
  """The markdown of one speed.py result."""
  m = results['machine']
  ceil = results['ceilings']
  lines = [
      f'### Speed: `{results["config"]}` ({_cfg_text(results["config_values"])})',
      '',
      f'Command: `python benchmarks/speed.py {" ".join(results["argv"])}`'.replace(
          '`python benchmarks/speed.py `', '`python benchmarks/speed.py`'),
      f'Machine: {m["cpu"]}, {m["cores"]} cores, load {_fmt(m["load_average_1min"])}, '
      f'TF {m["tensorflow"]}, TFP {m["tensorflow_probability"]}, Keras '
      f'{m["keras"]}, oneDNN {"on" if m["onednn"] else "off"}, commit '
      f'{m["commit"]}, {m["date"]}.',
      f'Ceilings measured in this run (best / median wall GFLOP/s; median '
      f'GFLOP per CPU second): 3x3 conv '
      f'{_fmt(ceil["ceiling_conv3x3"]["gflops_best"])} / '
      f'{_fmt(ceil["ceiling_conv3x3"]["gflops_median"])}; '
      f'{_fmt(ceil["ceiling_conv3x3"].get("gflops_per_cpu_second_median"))}, '
      f'2048^2 matmul {_fmt(ceil["ceiling_matmul"]["gflops_best"])} / '
      f'{_fmt(ceil["ceiling_matmul"]["gflops_median"])}; '
      f'{_fmt(ceil["ceiling_matmul"].get("gflops_per_cpu_second_median"))} '
      f'(matmul / conv: {_fmt(ceil["ceiling_matmul"].get("relative_to_conv_cpu"), 2)} '
      f'on CPU time).',
      '',
      '| model | mode | precision | params | train img/s | log_prob img/s | '
      'sample img/s | train GFLOP/img | train GFLOP/s | train % conv ceiling '
      '(CPU / wall) | log_prob % conv ceiling (CPU / wall) | peak RSS MB |',
      '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for key, e in results['models'].items():
    if 'error' in e:
      lines.append(f'| {e.get("model", key)} | {e.get("mode", "")} | | | error: '
                   f'{e["error"][:80]} | | | | | | | |')
      continue
    name = e['model']
    if e.get('batch_norm') is False and 'RealNVPChain' in name:
      name += ' (no BN)'
    row = [name, e['mode'], e['precision'], f'{e["params"] / 1e6:.2f}M']
    for what in ('train', 'log_prob', 'sample'):
      w = e.get(what)
      row.append(_fmt(w['items_per_s_median']) if w else
                 ('err' if f'{what}_error' in e else '-'))
    w = e.get('train')
    row.append(f'{w["flops"] / e["batch"] / 1e9:.3f}' if w else '-')
    row.append(_fmt(w['gflops_median']) if w else '-')
    for what in ('train', 'log_prob'):
      w = e.get(what)
      row.append(f'{w["pct_conv_ceiling_cpu"]:.0f}% / {w["pct_conv_ceiling"]:.0f}%'
                 if w else '-')
    mem = e.get('memory') or {}
    row.append(_fmt(mem.get('peak_rss_mb'), 0) if 'peak_rss_mb' in mem else '-')
    lines.append('| ' + ' | '.join(row) + ' |')
  if results.get('ratios'):
    lines += ['', 'Ratios, measured side by side in this run (median over rounds '
              'of per-round ratios of load-normalised times; > 1: the first '
              'is faster):', '', '| comparison | CPU time | wall time |',
              '|---|---:|---:|']
    for name, value in results['ratios'].items():
      if name.endswith('(cpu time)'):
        wall = results['ratios'].get(name.replace('(cpu time)', '(wall time)'))
        lines.append(f'| {name[:-len(" (cpu time)")]} | {value:.2f} | '
                     f'{_fmt(wall, 2)} |')
  return '\n'.join(lines)


def quality_table(results):
  """The markdown of one quality.py result."""
  m = results['machine']
  lines = [
      f'### Quality in a budget: held-out bits/dim after '
      f'{_fmt(results["budget_seconds"], 0)} s of training',
      '',
      f'Command: `python benchmarks/quality.py {" ".join(results["argv"])}`'.replace(
          '`python benchmarks/quality.py `', '`python benchmarks/quality.py`'),
      f'Machine: {m["cpu"]}, {m["cores"]} cores, load {_fmt(m["load_average_1min"])}, '
      f'TF {m["tensorflow"]}, commit {m["commit"]}, {m["date"]}.',
      '',
      '| dataset | shape | levels | model | mode | batch | steps | images seen | '
      'train s | test bits/dim | best test bits/dim |',
      '|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|',
  ]
  for run in results['runs']:
    if 'error' in run:
      lines.append(f'| {run["dataset"]} | error: {run["error"][:80]} |'
                   + ' |' * 9)
      continue
    c = run['curve']
    last = c[-1] if c else {}
    lines.append(
        f'| {run["dataset"]} | {"x".join(map(str, run["event_shape"]))} | '
        f'{run["num_levels"]} | {run["model_text"]} | {run["mode"]} | '
        f'{run["batch_size"]} | {last.get("step", 0)} | '
        f'{last.get("images", 0)} | {_fmt(last.get("train_seconds"), 0)} | '
        f'{_fmt(last.get("test_bpd"), 3)} | '
        f'{_fmt(min(p["test_bpd"] for p in c) if c else None, 3)} |')
  lines += ['', 'Curves (test bits/dim at training seconds):', '']
  for run in results['runs']:
    if 'error' in run or not run['curve']:
      continue
    points = ', '.join(f'{p["train_seconds"]:.0f}s: {p["test_bpd"]:.3f}'
                       for p in run['curve'])
    lines.append(f'- {run["dataset"]}: {points}')
  return '\n'.join(lines)


def write_latest():
  """Writes results/latest.md from the newest JSON of each script and config."""
  speed = sorted(glob.glob(os.path.join(results_io.RESULTS_DIR, 'speed-*.json')),
                 key=os.path.getmtime, reverse=True)
  quality = sorted(glob.glob(os.path.join(results_io.RESULTS_DIR,
                                          'quality*.json')),
                   key=os.path.getmtime, reverse=True)
  parts = ['# Benchmark results (latest)', '',
           'Made by `benchmarks/speed.py` and `benchmarks/quality.py`; see '
           '`benchmarks/README.md`. Timings are medians of interleaved rounds on '
           'a shared 2-core machine: compare the ratios and the percentages of '
           'the ceilings measured in the same run, not absolute figures across '
           'runs.', '']
  for path in speed:
    with open(path) as f:
      parts += [speed_table(json.load(f)), '']
  for path in quality:
    with open(path) as f:
      parts += [quality_table(json.load(f)), '']
  os.makedirs(results_io.RESULTS_DIR, exist_ok=True)
  out = os.path.join(results_io.RESULTS_DIR, 'latest.md')
  with open(out, 'w') as f:
    f.write('\n'.join(parts))
  return out


if __name__ == '__main__':
  print(write_latest())
