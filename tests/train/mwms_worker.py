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
from tfp_realnvp.train.strategy import worker_id


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--out', required=True)
  parser.add_argument('--checkpoint-dir', required=True)
  parser.add_argument('--time-budget', type=float, default=None,
                      help='fit for this many seconds of a fake clock whose steps take '
                           '10 s on worker 0 and 12 s on worker 1, with a decay to the '
                           'deadline')
  args = parser.parse_args()
  strategy = pick_strategy()     # first: MWMS must precede any device use
  print(describe_strategy(strategy), flush=True)
  if args.time_budget is not None:
    _fit_to_a_deadline(strategy, args)
    return
  trainer, history = train_testlib.train_tiny(strategy,
                                       checkpoint_dir=args.checkpoint_dir)
  np.savez(args.out, chief=is_chief(strategy),
           replicas=strategy.num_replicas_in_sync,
           train_bpd=[h['train_bits_per_dim'] for h in history],
           **train_testlib.variables_dict(trainer))
  print('worker done', flush=True)


def _fit_to_a_deadline(strategy, args):
  from tfp_realnvp.train import trainer as trainer_module  # pylint: disable=g-import-not-at-top
  clock = train_testlib.FakeClock()
  trainer_module.time = clock
  trainer = train_testlib.make_trainer(strategy, checkpoint_dir=args.checkpoint_dir,
                                       decay='cosine', decay_steps=1000)
  train_testlib.timed_steps(trainer, clock, 10. if worker_id(strategy)[1] == 0 else 12.)
  trainer.fit(train_testlib.dataset_fn, epochs=1, steps_per_epoch=100,
              max_seconds=args.time_budget, decay_to_deadline=True, progress='none')
  np.savez(args.out, step=trainer.step, stopped_early=trainer.stopped_early,
           decay_progress=float(trainer.decay_progress.numpy()),
           learning_rate=trainer.learning_rate, **train_testlib.variables_dict(trainer))
  print('worker done', flush=True)


if __name__ == '__main__':
  main()
