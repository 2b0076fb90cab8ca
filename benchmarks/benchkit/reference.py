"""Running the PyTorch reference (chrischute/real-nvp) from a benchmark script.

The reference runs in its own Python (with PyTorch, `--reference-python`)
through `benchmarks/reference_driver.py`, which imports a checkout given by
`--reference-dir`. Data go to it as an `.npz` file: the integer training
images and the test images already dequantized, the same array our model is
scored on.
"""

import json
import os
import subprocess
import sys
import tempfile

from benchkit.environment import BENCH_DIR

DRIVER = os.path.join(BENCH_DIR, 'reference_driver.py')


def add_reference_args(parser):
  parser.add_argument('--reference-dir',
                      help='a checkout of https://github.com/chrischute/real-nvp')
  parser.add_argument('--reference-python',
                      help='a Python with PyTorch (e.g. a venv outside this '
                      'repository: pip install torch numpy)')
  parser.add_argument('--reference-threads', type=int, default=0,
                      help="the reference's intra-op threads (0: one per core)")


def check_reference_args(parser, args):
  if not args.reference_dir or not args.reference_python:
    parser.error('--reference-dir and --reference-python are needed for the '
                 'reference (or leave it out with the flags that skip it)')
  if not os.path.isdir(args.reference_dir):
    parser.error(f'--reference-dir {args.reference_dir} does not exist')


def write_data(data, folder=None):
  """Writes `ImageData` to an npz for the driver; returns its path."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  folder = folder or tempfile.mkdtemp(prefix='vs_reference_')
  path = os.path.join(folder, f'{data.name}.npz')
  np.savez(path, train=data.train, test=data.test, num_levels=data.num_levels)
  return path


def train(args, data_path, out_path, *, steps=None, budget=None, evals=4,
          num_scales=2, hidden_channels=32, num_res_blocks=4, batch_size=64,
          learning_rate=1e-3, seed=0, log=True):
  """Trains the reference in a subprocess; returns its JSON result."""
  command = [args.reference_python, DRIVER, 'train',
             '--reference-dir', args.reference_dir, '--data', data_path,
             '--out', out_path, '--evals', str(evals),
             '--num-scales', str(num_scales),
             '--hidden-channels', str(hidden_channels),
             '--num-res-blocks', str(num_res_blocks),
             '--batch-size', str(batch_size),
             '--learning-rate', str(learning_rate), '--seed', str(seed),
             '--threads', str(args.reference_threads)]
  command += ['--steps', str(steps)] if steps else ['--budget', str(budget)]
  if not log:
    command.append('--quiet')
  subprocess.run(command, check=True, stdout=sys.stdout, stderr=sys.stderr)
  with open(out_path) as f:
    return json.load(f)


class Server:
  """The driver in `serve` mode: build a model, time its functions on demand."""

  def __init__(self, args):
    self._process = subprocess.Popen(
        [args.reference_python, DRIVER, 'serve', '--reference-dir',
         args.reference_dir, '--threads', str(args.reference_threads)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

  def ask(self, **command):
    self._process.stdin.write(json.dumps(command) + '\n')
    self._process.stdin.flush()
    line = self._process.stdout.readline()
    if not line:
      raise RuntimeError('the reference driver stopped; see its stderr above')
    reply = json.loads(line)
    if 'error' in reply:
      raise RuntimeError(reply['error'])
    return reply

  def close(self):
    if self._process.poll() is None:
      self._process.stdin.close()
      self._process.wait(timeout=60)
