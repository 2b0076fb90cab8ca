"""Drives the PyTorch Real NVP of chrischute/real-nvp on our data, for comparisons.

Runs under a Python that has PyTorch (not this package's environment) and
imports the model, loss and optimiser helpers of a checkout of
https://github.com/chrischute/real-nvp given by `--reference-dir`; nothing
of it is copied here. `vs_reference.py` starts it; by hand:

  REF=/path/to/real-nvp
  TORCH_PY=/path/to/torch-venv/bin/python
  $TORCH_PY benchmarks/reference_driver.py train --reference-dir $REF \
      --data data.npz --steps 200 --evals 4 --out ref.json
  $TORCH_PY benchmarks/reference_driver.py serve --reference-dir $REF   # JSON lines

What is the reference's and what is ours:

* Model: `models.RealNVP(num_scales, in_channels, mid_channels, num_blocks)`,
  its couplings, s/t ResNets and squeezes, called through its multi-scale
  part (`net.flows(y, sldj, reverse)`). Loss: `models.RealNVPLoss(k)` with
  `k` the data's grey levels. Optimiser: Adam on
  `util.get_param_groups(net, weight_decay, norm_suffix='weight_g')` with
  `util.clip_grad_norm`, as its `train.py` does.
* Data and dequantization: ours, so that both models see the same thing.
  The reference's own `RealNVP.forward` dequantizes inside the model with
  256 levels (`(x * 255 + u) / 256`); here the caller's integer images
  `k` are dequantized as `x = (k + u) / L`, `u ~ U[0, 1)`, for any number
  of levels `L` (17 for scikit-learn's digits), and mapped to logits with
  the Real NVP paper's preprocessing `y = logit(a + (1 - 2a) x)`, `a = 0.05`
  (the reference's `data_constraint = 0.9` is the same map), with its
  log-det. The test images arrive already dequantized (fixed noise), the
  same array `tfp_realnvp` is evaluated on.

Bits/dim: `RealNVPLoss` returns the mean of `-log p(x) + D log L` over the
batch, in nats; divided by `D ln 2` that is bits/dim as `tfp_realnvp`
computes it.

`train` writes a JSON curve (held-out bits/dim at evenly spaced steps or
seconds of training, evaluation time not counted). `serve` reads JSON
commands, one per line, and answers each with one JSON line: `build` a model,
then `time` its training step, `log_prob` or `sample` for about a given
number of seconds (images/s, wall and process CPU time), so that a caller
can interleave its own measurements with the reference's.
"""

import argparse
import json
import math
import os
import sys
import time

LOGIT_ALPHA = 0.05


def import_reference(reference_dir):
  """`(RealNVP, RealNVPLoss, util)` from a checkout of chrischute/real-nvp."""
  reference_dir = os.path.abspath(reference_dir)
  if not os.path.isfile(os.path.join(reference_dir, 'models', 'real_nvp',
                                     'real_nvp.py')):
    raise SystemExit(f'{reference_dir} is not a checkout of chrischute/real-nvp '
                     f'(models/real_nvp/real_nvp.py is missing)')
  sys.path.insert(0, reference_dir)
  import warnings  # pylint: disable=g-import-not-at-top
  # The reference uses torch.nn.utils.weight_norm, deprecated in PyTorch 2.
  warnings.filterwarnings('ignore', category=FutureWarning)
  import util  # pylint: disable=g-import-not-at-top
  from models import RealNVP  # pylint: disable=g-import-not-at-top
  from models import RealNVPLoss  # pylint: disable=g-import-not-at-top
  return RealNVP, RealNVPLoss, util


class Reference:
  """The reference model, its loss and optimiser, on NHWC numpy data."""

  def __init__(self, reference_dir, event_shape, num_scales, hidden_channels,
               num_res_blocks, num_levels, learning_rate=1e-3,
               weight_decay=5e-5, clip_norm=100., seed=0):
    import torch  # pylint: disable=g-import-not-at-top
    self.torch = torch
    real_nvp, real_nvp_loss, util = import_reference(reference_dir)
    torch.manual_seed(seed)
    height, width, channels = event_shape
    self.event_shape = (height, width, channels)
    self.dims = height * width * channels
    self.num_levels = num_levels
    self.net = real_nvp(num_scales=num_scales, in_channels=channels,
                        mid_channels=hidden_channels, num_blocks=num_res_blocks)
    contiguous_inputs(self.net, torch)
    self.loss_fn = real_nvp_loss(k=num_levels)
    self.util = util
    self.clip_norm = clip_norm
    self.optimizer = torch.optim.Adam(
        util.get_param_groups(self.net, weight_decay, norm_suffix='weight_g'),
        lr=learning_rate)
    self.num_params = sum(p.numel() for p in self.net.parameters())

  def _logits(self, x):
    """NCHW dequantized pixels in [0, 1] -> logits and the log-det per image."""
    torch = self.torch
    s = LOGIT_ALPHA + (1. - 2. * LOGIT_ALPHA) * x
    y = torch.log(s) - torch.log1p(-s)
    log_det = (math.log(1. - 2. * LOGIT_ALPHA) - torch.log(s)
               - torch.log1p(-s))
    return y, log_det.flatten(1).sum(-1)

  def _as_nchw(self, x):
    # With one channel, a permuted NHWC array already counts as contiguous
    # but has channels-last strides, which the reference's `view`s reject.
    return self.torch.from_numpy(x).permute(0, 3, 1, 2).clone(
        memory_format=self.torch.contiguous_format)

  def nll(self, x_nchw):
    """Mean of `-log p(x) + D log L` over the batch (nats), the training loss."""
    y, sldj = self._logits(x_nchw)
    z, sldj = self.net.flows(y, sldj, False)
    return self.loss_fn(z, sldj)

  def train_step(self, x_nhwc):
    self.net.train()
    x = self._as_nchw(x_nhwc)
    self.optimizer.zero_grad()
    loss = self.nll(x)
    loss.backward()
    self.util.clip_grad_norm(self.optimizer, self.clip_norm)
    self.optimizer.step()
    return float(loss.detach()) / (self.dims * math.log(2.))

  def log_prob_bpd(self, x_nhwc):
    """Bits/dim of each image of a batch, inference mode."""
    torch = self.torch
    self.net.eval()
    with torch.no_grad():
      y, sldj = self._logits(self._as_nchw(x_nhwc))
      z, sldj = self.net.flows(y, sldj, False)
      log_prior = (-0.5 * (z ** 2 + math.log(2 * math.pi))).flatten(1).sum(-1)
      nll = -(log_prior + sldj) + self.dims * math.log(self.num_levels)
    return (nll / (self.dims * math.log(2.))).numpy()

  def sample(self, num):
    torch = self.torch
    self.net.eval()
    height, width, channels = self.event_shape
    with torch.no_grad():
      z = torch.randn((num, channels, height, width))
      y, _ = self.net(z, reverse=True)
      return (torch.sigmoid(y) - LOGIT_ALPHA) / (1. - 2. * LOGIT_ALPHA)

  def evaluate(self, test, batch_size=500):
    import numpy as np  # pylint: disable=g-import-not-at-top
    values = [self.log_prob_bpd(test[i:i + batch_size])
              for i in range(0, len(test), batch_size)]
    return float(np.mean(np.concatenate(values)))

  def forward_flops_per_image(self, batch=8):
    """FLOPs of one log_prob pass per image (PyTorch's FlopCounterMode)."""
    torch = self.torch
    import numpy as np  # pylint: disable=g-import-not-at-top
    from torch.utils.flop_counter import FlopCounterMode  # pylint: disable=g-import-not-at-top
    x = np.random.default_rng(0).uniform(
        0.1, 0.9, (batch,) + self.event_shape).astype(np.float32)
    self.net.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
      y, sldj = self._logits(self._as_nchw(x))
      self.net.flows(y, sldj, False)
    return counter.get_total_flops() / batch


def contiguous_inputs(net, torch):
  """Makes every coupling's tensor inputs contiguous (a forward pre-hook).

  The reference's squeeze ends with a `permute`, and recent PyTorch
  versions then keep the channels-last strides through the convolutions,
  which its couplings' `s.view(...)` rejects ("view size is not compatible
  with input tensor's size and stride"). A contiguous copy of each
  coupling's input changes no value.
  """
  def hook(module, inputs):
    del module
    return tuple(a.contiguous() if torch.is_tensor(a) else a for a in inputs)

  for module in net.modules():
    if type(module).__name__ == 'CouplingLayer':
      module.register_forward_pre_hook(hook)


def training_batches(train, num_levels, batch_size, seed):
  """Endless dequantized NHWC batches: a fresh order per pass, (k + u) / L."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  while True:
    order = rng.permutation(len(train))
    for i in range(0, len(order) - batch_size + 1, batch_size):
      batch = train[order[i:i + batch_size]].astype(np.float32)
      noise = rng.random(batch.shape, dtype=np.float32)
      yield (batch + noise) / np.float32(num_levels)


def run_train(args):
  """Trains for `--steps` steps or `--budget` seconds; writes the curve."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(args.threads or os.cpu_count())
  data = np.load(args.data)
  train, test, num_levels = data['train'], data['test'], int(data['num_levels'])
  model = Reference(args.reference_dir, train.shape[1:], args.num_scales,
                    args.hidden_channels, args.num_res_blocks, num_levels,
                    args.learning_rate, args.weight_decay, args.clip_norm,
                    args.seed)
  stream = training_batches(train, num_levels, args.batch_size, args.seed)
  by_steps = args.steps is not None
  total = args.steps if by_steps else args.budget
  marks = [total * (i + 1) / args.evals for i in range(args.evals)]
  start = time.perf_counter()
  first = model.train_step(next(stream))
  first_step_seconds = time.perf_counter() - start
  curve = [dict(step=1, train_seconds=0., train_cpu_seconds=0.,
                test_bpd=model.evaluate(test), train_bpd=first)]
  log(args, f'reference: first step {first_step_seconds:.2f} s, '
      f'{model.num_params / 1e6:.2f}M params, test bpd '
      f'{curve[0]["test_bpd"]:.3f}')
  trained = cpu = 0.
  steps, recent = 1, []
  for mark in marks:
    while (steps if by_steps else trained) < mark:
      x = next(stream)
      t0, c0 = time.perf_counter(), time.process_time()
      recent.append(model.train_step(x))
      trained += time.perf_counter() - t0
      cpu += time.process_time() - c0
      steps += 1
    point = dict(step=steps, train_seconds=trained, train_cpu_seconds=cpu,
                 test_bpd=model.evaluate(test),
                 train_bpd=float(np.mean(recent[-20:])))
    curve.append(point)
    log(args, f'reference: {trained:7.1f} s, step {steps}, train bpd '
        f'{point["train_bpd"]:.3f}, test bpd {point["test_bpd"]:.3f}')
  result = dict(
      model='chrischute/real-nvp', num_params=model.num_params,
      forward_flops_per_image=model.forward_flops_per_image(),
      first_step_seconds=first_step_seconds, threads=torch.get_num_threads(),
      torch=torch.__version__, curve=curve, config=dict(
          num_scales=args.num_scales, hidden_channels=args.hidden_channels,
          num_res_blocks=args.num_res_blocks, batch_size=args.batch_size,
          learning_rate=args.learning_rate, weight_decay=args.weight_decay,
          clip_norm=args.clip_norm, seed=args.seed))
  with open(args.out, 'w') as f:
    json.dump(result, f, indent=1)


def run_serve(args):
  """Answers JSON commands from stdin, one JSON line each, until EOF."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(args.threads or os.cpu_count())
  model = batch = None
  for line in sys.stdin:
    if not line.strip():
      continue
    command = json.loads(line)
    what = command['command']
    if what == 'build':
      shape = tuple(command['event_shape'])
      model = Reference(args.reference_dir, shape, command['num_scales'],
                        command['hidden_channels'], command['num_res_blocks'],
                        command.get('num_levels', 256), seed=command.get('seed', 0))
      batch = np.random.default_rng(0).uniform(
          0.01, 0.99, (command['batch_size'],) + shape).astype(np.float32)
      for _ in range(2):  # Warm-up: allocator and thread pools.
        model.train_step(batch)
      reply = dict(num_params=model.num_params, threads=torch.get_num_threads(),
                   forward_flops_per_image=model.forward_flops_per_image())
    elif what == 'time':
      fn = {'train': lambda: model.train_step(batch),
            'log_prob': lambda: model.log_prob_bpd(batch),
            'sample': lambda: model.sample(len(batch))}[command['what']]
      calls = 0
      t0, c0 = time.perf_counter(), time.process_time()
      while calls < command.get('min_calls', 1) or (
          time.perf_counter() - t0 < command['seconds']):
        fn()
        calls += 1
      wall, cpu = time.perf_counter() - t0, time.process_time() - c0
      reply = dict(calls=calls, seconds_per_call=wall / calls,
                   cpu_seconds_per_call=cpu / calls,
                   images_per_second=calls * len(batch) / wall)
    else:
      reply = dict(error=f'unknown command {what!r}')
    print(json.dumps(reply), flush=True)


def log(args, text):
  if not args.quiet:
    print(text, file=sys.stderr, flush=True)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('command', choices=('train', 'serve'))
  parser.add_argument('--reference-dir', required=True,
                      help='a checkout of chrischute/real-nvp')
  parser.add_argument('--data', help='npz with train (uint8 NHWC), test '
                      '(dequantized float32 NHWC) and num_levels')
  parser.add_argument('--out', help='JSON output of train')
  parser.add_argument('--steps', type=int, help='train for this many steps')
  parser.add_argument('--budget', type=float, default=60.,
                      help='or for this many seconds of training')
  parser.add_argument('--evals', type=int, default=4)
  parser.add_argument('--num-scales', type=int, default=2)
  parser.add_argument('--hidden-channels', type=int, default=32)
  parser.add_argument('--num-res-blocks', type=int, default=4)
  parser.add_argument('--batch-size', type=int, default=64)
  parser.add_argument('--learning-rate', type=float, default=1e-3)
  parser.add_argument('--weight-decay', type=float, default=5e-5)
  parser.add_argument('--clip-norm', type=float, default=100.)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--threads', type=int, default=0,
                      help='intra-op threads (0: one per core)')
  parser.add_argument('--quiet', action='store_true')
  args = parser.parse_args(argv)
  if args.command == 'train':
    if not args.data or not args.out:
      parser.error('train needs --data and --out')
    run_train(args)
  else:
    run_serve(args)


if __name__ == '__main__':
  main()
