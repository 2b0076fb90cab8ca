"""Training throughput (images per second), graph mode versus XLA, in one run.

```
python benchmarks/train_speed.py --num-scales 2 --hidden-channels 32 \\
    --num-res-blocks 4 --batch-size 64 --steps 20
```

Each mode builds the same flow (same seed), runs `--warmup` steps (tracing and
compiling) and then times `--steps` training steps of the `Trainer` on
dequantized Fashion-MNIST batches (scikit-learn's digits, resized to
`--image-size`, without the Debian package), and prints one JSON line. The
line also gives the GFLOP/s of a reference convolution measured just before
and after (`conv_gflops`), to read the figures on a shared machine.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import environment  # pylint: disable=wrong-import-position
from benchkit import timing  # pylint: disable=wrong-import-position

environment.setup_environment()

import keras  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from tfp_realnvp.data import image_pipeline  # pylint: disable=g-import-not-at-top,wrong-import-position
from tfp_realnvp.train import make_flow  # pylint: disable=g-import-not-at-top,wrong-import-position
from tfp_realnvp.train import runs  # pylint: disable=g-import-not-at-top,wrong-import-position
from tfp_realnvp.train.strategy import describe_strategy  # pylint: disable=g-import-not-at-top,wrong-import-position
from tfp_realnvp.train.strategy import pick_strategy  # pylint: disable=g-import-not-at-top,wrong-import-position
from tfp_realnvp.train.trainer import TrainConfig  # pylint: disable=g-import-not-at-top,wrong-import-position
from tfp_realnvp.train.trainer import Trainer  # pylint: disable=g-import-not-at-top,wrong-import-position

__all__ = ['measure', 'conv_gflops']


def conv_gflops(repeats=10):
  """GFLOP/s of the reference 3x3, 32-channel conv on (64, 28, 28, 32), now.

  The convolution of `timing.ceiling_calls`; a value lower than usual says
  how much of the CPU the benchmark got on a shared machine.
  """
  calls, flops = timing.ceiling_calls(64, 28, 28, 32)
  conv = calls['ceiling_conv3x3']
  conv().numpy()
  tic = time.perf_counter()
  for _ in range(repeats):
    y = conv()
  y.numpy()
  seconds = (time.perf_counter() - tic) / repeats
  return flops['ceiling_conv3x3'] / seconds / 1e9


def measure(images, num_levels, batch_size, steps=20, warmup=3, jit=False,
            mixed_precision=None, strategy=None, seed=0, **flow_kwargs):
  """Times `steps` training steps; returns a dict with images_per_second."""
  shape = tuple(images.shape[1:])
  keras.utils.set_random_seed(seed)
  trainer = Trainer(
      lambda: make_flow(shape, mixed_precision=mixed_precision, **flow_kwargs),
      shape, TrainConfig(global_batch_size=batch_size, jit_compile=jit,
                         mixed_precision=mixed_precision),
      num_levels=num_levels, strategy=strategy)
  batches = iter(trainer.distribute(
      lambda: image_pipeline(images, num_levels, batch_size, seed=seed)))
  gflops_before = conv_gflops()
  tic = time.perf_counter()
  for _ in range(warmup):
    trainer.train_step(next(batches))
  warmup_seconds = time.perf_counter() - tic
  times = []
  for _ in range(steps):
    batch = next(batches)
    tic = time.perf_counter()
    result = trainer.train_step(batch)
    times.append(time.perf_counter() - tic)
  seconds = float(np.sum(times))
  return dict(jit=jit, mixed_precision=mixed_precision,
              conv_gflops_after=conv_gflops(),
              images_per_second=steps * batch_size / seconds,
              median_step_seconds=float(np.median(times)),
              conv_gflops_before=gflops_before,
              warmup_seconds=warmup_seconds, steps=steps,
              last_bits_per_dim=result.bits_per_dim,
              strategy=describe_strategy(trainer.strategy))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--dataset', default='fashion_mnist')
  parser.add_argument('--image-size', type=int, default=None)
  parser.add_argument('--num-scales', type=int, default=2)
  parser.add_argument('--hidden-channels', type=int, default=32)
  parser.add_argument('--num-res-blocks', type=int, default=4)
  parser.add_argument('--batch-size', type=int, default=64)
  parser.add_argument('--steps', type=int, default=20)
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--modes', default='graph,xla',
                      help='comma-separated: graph, xla, bfloat16, float16')
  args = parser.parse_args(argv)
  strategy = pick_strategy()
  size = (args.image_size, args.image_size) if args.image_size else None
  data = runs.load_dataset(args.dataset, image_size=size, max_examples=10000)
  print(f'# {data.name} {data.image_shape}, {describe_strategy(strategy)}',
        flush=True)
  for mode in args.modes.split(','):
    result = measure(
        data.train, data.num_levels, args.batch_size, steps=args.steps,
        warmup=args.warmup, jit=mode == 'xla',
        mixed_precision=mode if mode in ('bfloat16', 'float16') else None,
        strategy=strategy, num_scales=args.num_scales,
        hidden_channels=args.hidden_channels,
        num_res_blocks=args.num_res_blocks)
    result.update(mode=mode, dataset=data.name,
                  image_shape=list(data.image_shape),
                  batch_size=args.batch_size, num_scales=args.num_scales,
                  hidden_channels=args.hidden_channels,
                  num_res_blocks=args.num_res_blocks)
    print(json.dumps(result), flush=True)


if __name__ == '__main__':
  main()
