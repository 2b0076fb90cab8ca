"""Where the time goes: TensorFlow's profiler on a training step, log_prob or sample.

  python benchmarks/profile_step.py --config mnist-small --what train

Runs a few calls of the chosen `tf.function` under
`tf.profiler.experimental` (trace in `benchmarks/results/profile/`, viewable
with TensorBoard's profile plugin), then reads the trace itself and prints
the time per op type (Conv2D, Conv2DBackpropFilter, FusedBatchNormV3...) and
per part of the model (forward network, its gradient, the rest), plus the
op counts of the traced graph. This is the profile that guided the
optimisations listed in `benchmarks/README.md`.
"""

import argparse
import collections
import glob
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import configs  # pylint: disable=wrong-import-position
from benchkit import environment  # pylint: disable=wrong-import-position
from benchkit import flops as flop_count  # pylint: disable=wrong-import-position
from benchkit import models  # pylint: disable=wrong-import-position
from benchkit import results as results_io  # pylint: disable=wrong-import-position
from benchkit import steps as step_fns  # pylint: disable=wrong-import-position
from benchkit import timing  # pylint: disable=wrong-import-position


def op_time_breakdown(logdir):
  """(seconds per op type, seconds per model part) from the newest xplane."""
  from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-import-not-at-top
  files = sorted(glob.glob(os.path.join(logdir, '**', '*.xplane.pb'),
                           recursive=True), key=os.path.getmtime)
  space = xplane_pb2.XSpace()
  with open(files[-1], 'rb') as f:
    space.ParseFromString(f.read())
  by_type, by_part = collections.Counter(), collections.Counter()
  for plane in space.planes:
    if plane.name != '/host:CPU':
      continue
    metadata = plane.event_metadata
    for line in plane.lines:
      if line.name == 'python':
        continue
      for event in line.events:
        name = metadata[event.metadata_id].name
        # Ops are 'name:Type'; executor envelopes ('ExecutorState::Process',
        # which spans the ops it runs) and thread-pool events are not.
        if ':' not in name or '::' in name:
          continue
        op_name, op_type = name.rsplit(':', 1)
        seconds = event.duration_ps * 1e-12
        by_type[op_type] += seconds
        gradient = 'gradient_tape' in op_name
        if 'adam' in op_name.lower():
          part = 'optimizer (Adam)'
        elif '_net' in op_name:
          part = 's/t networks, ' + ('backward' if gradient else 'forward')
        else:
          part = 'flow outside the networks, ' + (
              'backward' if gradient else 'forward')
        by_part[part] += seconds
  return by_type, by_part


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  configs.add_config_args(parser)
  parser.add_argument('--what', default='train',
                      choices=('train', 'log_prob', 'sample'))
  parser.add_argument('--mode', default='graph', choices=configs.MODES)
  parser.add_argument('--precision', default='float32',
                      choices=configs.PRECISIONS)
  parser.add_argument('--calls', type=int, default=3)
  parser.add_argument('--top', type=int, default=25)
  args = parser.parse_args(argv)
  environment.setup_environment(args.onednn)
  tf, _ = environment.tf_modules()
  cfg = configs.parse_config(args.config, args)
  shape = (cfg['batch_size'],) + cfg['event_shape']
  dist, _ = models.build_realnvp(cfg, args.precision)
  steps = step_fns.Steps(dist, shape, jit_compile=(args.mode == 'xla'))
  x = tf.random.uniform(shape, 0.01, 0.99, seed=1)
  for _ in range(2):
    timing.force(steps.call(args.what, x))
  logdir = os.path.join(results_io.RESULTS_DIR, 'profile')
  shutil.rmtree(logdir, ignore_errors=True)
  tf.profiler.experimental.start(logdir)
  start = time.perf_counter()
  for _ in range(args.calls):
    timing.force(steps.call(args.what, x))
  wall = (time.perf_counter() - start) / args.calls
  tf.profiler.experimental.stop()
  by_type, by_part = op_time_breakdown(logdir)
  total = sum(by_type.values())
  print(f'{args.what} ({args.mode}, {args.precision}), {args.config}: '
        f'{wall:.3f} s per call under the profiler; op time summed over '
        f'threads {total / args.calls:.3f} s per call')
  print(f'\n{"op type":32s} {"s/call":>8s} {"share":>7s}')
  for op_type, seconds in by_type.most_common(args.top):
    print(f'{op_type:32s} {seconds / args.calls:8.4f} {100 * seconds / total:6.1f}%')
  print(f'\n{"part":44s} {"s/call":>8s} {"share":>7s}')
  for part, seconds in by_part.most_common():
    print(f'{part:44s} {seconds / args.calls:8.4f} {100 * seconds / total:6.1f}%')
  counts = flop_count.op_counts(steps.concrete(args.what), types=(
      'Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter',
      'FusedBatchNormV3', 'FusedBatchNormGradV3', 'MatMul', 'BiasAdd'))
  print('\ngraph op counts:', counts)
  print(f'trace: {logdir}')


if __name__ == '__main__':
  main()
