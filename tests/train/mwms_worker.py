"""One worker of the MultiWorkerMirroredStrategy test (run as a subprocess).

TF_CONFIG (set by the test) makes `pick_strategy()` return a
MultiWorkerMirroredStrategy. The worker trains the tiny flow of
`tests/train/train_testlib.py` for a few steps on the digits and writes its final
variables and per-epoch bits/dim to `--out` (an .npz).
"""

import argparse
import os
import sys

os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # pylint: disable=g-import-not-at-top
import train_testlib  # pylint: disable=g-import-not-at-top

from tfp_realnvp.train import describe_strategy
from tfp_realnvp.train import is_chief
from tfp_realnvp.train import pick_strategy


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--out', required=True)
  parser.add_argument('--checkpoint-dir', required=True)
  args = parser.parse_args()
  strategy = pick_strategy()     # first: MWMS must precede any device use
  print(describe_strategy(strategy), flush=True)
  trainer, history = train_testlib.train_tiny(strategy,
                                       checkpoint_dir=args.checkpoint_dir)
  np.savez(args.out, chief=is_chief(strategy),
           replicas=strategy.num_replicas_in_sync,
           train_bpd=[h['train_bits_per_dim'] for h in history],
           **train_testlib.variables_dict(trainer))
  print('worker done', flush=True)


if __name__ == '__main__':
  main()
