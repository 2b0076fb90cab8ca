"""Train a multi-scale Real NVP on images: Fashion-MNIST by default, offline.

Data: `--dataset fashion_mnist` (the default) reads Debian's
`dataset-fashion-mnist` folder (`apt-get install -y dataset-fashion-mnist`);
without it the run falls back to scikit-learn's 8x8 digits and says so.
Other datasets (`mnist`, `kmnist`, `cifar10`, `celeb_a`) come from
`--data-dir` (a folder of IDX files or a `.npz`) or tensorflow-datasets.

The strategy suits the machine (several GPUs: MirroredStrategy, one GPU: that
device, none: the CPU, `TF_CONFIG` set: MultiWorkerMirroredStrategy); the
global batch `--batch-size` is split over the replicas.

Per epoch: the test bits/dim (inference mode, fixed dequantization seed),
`OUTPUT_DIR/samples/epoch_NNN.png` at `--temperature`, TensorBoard scalars
and images in `OUTPUT_DIR/tensorboard`, and `OUTPUT_DIR/metrics.json`. At the
end: `OUTPUT_DIR/bits_per_dim.png` and the SavedModel `OUTPUT_DIR/saved_model`
(`log_prob`, `bits_per_dim`, `sample`; loads with TensorFlow alone). Then
`examples/evaluate.py OUTPUT_DIR` scores a checkpoint or the export and
samples at chosen temperatures.

Checkpoints go to `OUTPUT_DIR/checkpoints` every `--checkpoint-every` steps
and at each epoch's end; `--resume` continues the run in OUTPUT_DIR (step,
data position, optimizer state), `--overwrite` starts it afresh, and
`--time-limit MINUTES` ends the training early (with the same end-of-epoch
evaluation, checkpoint and export).

```
python examples/train_mnist.py                         # a few minutes on 2 CPU cores
python examples/train_mnist.py --resume --epochs 6     # continue the same run
python examples/train_mnist.py --epochs 20 --steps-per-epoch 0 \\
    --hidden-channels 32 --num-res-blocks 4 --jit      # full epochs, larger nets
bash examples/cifar10_paper.sh                         # the paper's CIFAR-10 setup
```
"""

import argparse
import logging
import os
import shutil
import sys
import time

os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras  # pylint: disable=g-import-not-at-top
import numpy as np
import tensorflow as tf

from tfp_realnvp import viz
from tfp_realnvp.data import IMAGE_DATASET_NAMES
from tfp_realnvp.data import image_pipeline
from tfp_realnvp.train import TrainConfig
from tfp_realnvp.train import Trainer
from tfp_realnvp.train import describe_strategy
from tfp_realnvp.train import is_chief
from tfp_realnvp.train import pick_strategy
from tfp_realnvp.train import runs
from tfp_realnvp.train.summaries import SummaryWriter

DEFAULT_DATASET = 'fashion_mnist'
# The lists of metrics.json, one entry per epoch.
PER_EPOCH_KEYS = ('epoch', 'step', 'train_bits_per_dim', 'test_bits_per_dim',
                  'images_per_second_per_epoch', 'seconds', 'learning_rate',
                  'skipped_steps', 'samples')


def parse_args(argv=None):
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  data = parser.add_argument_group('data')
  data.add_argument('--dataset', default=None, choices=IMAGE_DATASET_NAMES,
                    help=f'default {DEFAULT_DATASET}, falling back to digits '
                         f'when it is not installed')
  data.add_argument('--data-dir', default=None,
                    help='folder of IDX files or a .npz (see load_images)')
  data.add_argument('--image-size', type=int, default=None,
                    help='resize images to this square side')
  data.add_argument('--max-examples', type=int, default=None,
                    help='keep only this many images per split')
  data.add_argument('--max-test-examples', type=int, default=None,
                    help='test images scored per epoch (default: all)')
  data.add_argument('--horizontal-flip', action='store_true',
                    help='random left-right flips (natural images)')
  model = parser.add_argument_group('model')
  model.add_argument('--num-scales', type=int, default=2)
  model.add_argument('--hidden-channels', type=int, default=16)
  model.add_argument('--num-res-blocks', type=int, default=2)
  opt = parser.add_argument_group('training')
  opt.add_argument('--epochs', type=int, default=3)
  opt.add_argument('--steps-per-epoch', type=int, default=100,
                   help='global steps per epoch; 0: one pass over the data')
  opt.add_argument('--batch-size', type=int, default=64,
                   help='global batch, split over the replicas')
  opt.add_argument('--lr', type=float, default=1e-3)
  opt.add_argument('--warmup-steps', type=int, default=0)
  opt.add_argument('--decay', choices=('none', 'cosine', 'exponential'),
                   default='none')
  opt.add_argument('--l2', type=float, default=5e-5,
                   help='L2 penalty on the s-scale parameters')
  opt.add_argument('--clip-norm', type=float, default=100.)
  opt.add_argument('--jit', action='store_true', help='XLA-compile the step')
  opt.add_argument('--mixed-precision', default='none',
                   choices=('none', 'bfloat16', 'float16'),
                   help='dtype of the s/t networks (couplings stay float32)')
  opt.add_argument('--seed', type=int, default=0)
  opt.add_argument('--time-limit', type=float, default=None,
                   help='minutes of training after which the run ends its '
                        'epoch early (evaluation, samples, checkpoint, export)')
  out = parser.add_argument_group('output')
  out.add_argument('--output-dir', default=os.path.join('runs', 'train_mnist'))
  out.add_argument('--resume', action='store_true',
                   help='continue from the latest checkpoint in OUTPUT_DIR')
  out.add_argument('--overwrite', action='store_true',
                   help='start afresh in an OUTPUT_DIR that has checkpoints '
                        '(deletes them)')
  out.add_argument('--checkpoint-every', type=int, default=100,
                   help='steps between checkpoints (also at each epoch end)')
  out.add_argument('--temperature', type=float, default=0.7,
                   help='sampling temperature of the per-epoch sample grids')
  out.add_argument('--num-samples', type=int, default=64)
  out.add_argument('--eval-batch-size', type=int, default=500)
  out.add_argument('--no-export', action='store_true',
                   help='skip the SavedModel export')
  out.add_argument('--quiet', action='store_true', help='no progress bar')
  return parser.parse_args(argv)


def setup_logging(output_dir, chief):
  logger = logging.getLogger('tfp_realnvp')
  logger.setLevel(logging.INFO)
  logger.propagate = False
  for handler in list(logger.handlers):
    logger.removeHandler(handler)
  stream = logging.StreamHandler(sys.stdout)
  stream.setFormatter(logging.Formatter('%(message)s'))
  logger.addHandler(stream)
  if chief:
    file_handler = logging.FileHandler(os.path.join(output_dir, 'train.log'))
    file_handler.setFormatter(logging.Formatter('%(asctime)s %(message)s'))
    logger.addHandler(file_handler)
  return logger


def run_config(args, images):
  return dict(
      dataset=images.name, source=images.source, num_levels=images.num_levels,
      image_shape=list(images.image_shape), num_train=len(images.train),
      num_test=len(images.test), num_scales=args.num_scales,
      hidden_channels=args.hidden_channels,
      num_res_blocks=args.num_res_blocks, batch_size=args.batch_size,
      lr=args.lr, warmup_steps=args.warmup_steps, decay=args.decay, l2=args.l2,
      clip_norm=args.clip_norm, jit=args.jit,
      mixed_precision=(None if args.mixed_precision == 'none'
                       else args.mixed_precision),
      seed=args.seed, horizontal_flip=args.horizontal_flip,
      data_dir=args.data_dir, image_size=args.image_size,
      max_examples=args.max_examples, eval_seed=runs.EVAL_SEED)


def check_resume_config(saved, current):
  changed = {k: (saved.get(k), current.get(k)) for k in runs.ARCHITECTURE_KEYS
             if saved.get(k) != current.get(k)}
  if changed:
    details = ', '.join(f'{k}: {a} -> {b}' for k, (a, b) in changed.items())
    raise SystemExit(f'--resume: these settings differ from the saved run '
                     f'({details}); use the same ones or a new --output-dir.')


def main(argv=None):
  args = parse_args(argv)
  # Before anything touches the devices (MultiWorkerMirroredStrategy).
  strategy = pick_strategy()
  chief = is_chief(strategy)
  os.makedirs(args.output_dir, exist_ok=True)
  log = setup_logging(args.output_dir, chief)
  keras.utils.set_random_seed(args.seed)

  requested = args.dataset or DEFAULT_DATASET
  images = runs.load_dataset(
      requested, data_dir=args.data_dir,
      image_size=(args.image_size, args.image_size) if args.image_size else None,
      max_examples=args.max_examples, fallback=args.dataset is None,
      log=log.warning)
  shape = images.image_shape
  log.info('dataset: %s from %s (train %s, test %s, %d levels)%s', images.name,
           images.source, images.train.shape, images.test.shape,
           images.num_levels,
           '' if images.name == requested else f' instead of {requested}')
  log.info('strategy: %s', describe_strategy(strategy))

  checkpoint_dir = os.path.join(args.output_dir, 'checkpoints')
  if not args.resume and tf.train.latest_checkpoint(checkpoint_dir):
    if not args.overwrite:
      raise SystemExit(f'{checkpoint_dir} holds checkpoints of an earlier run: '
                       f'pass --resume to continue it, --overwrite to start '
                       f'afresh, or another --output-dir.')
    if chief:
      shutil.rmtree(checkpoint_dir)
      log.warning('--overwrite: deleted the checkpoints in %s',
                  checkpoint_dir)
  config_path = os.path.join(args.output_dir, 'config.json')
  metrics_path = os.path.join(args.output_dir, 'metrics.json')
  config = run_config(args, images)
  saved = runs.read_json(config_path)
  if args.resume and saved is not None:
    check_resume_config(saved, config)
  if chief:
    runs.write_json(config_path, config)

  steps_per_epoch = args.steps_per_epoch or len(images.train) // args.batch_size
  if steps_per_epoch < 1:
    raise SystemExit(f'--batch-size {args.batch_size} is larger than the '
                     f'{len(images.train)} training images.')
  train_config = TrainConfig(
      global_batch_size=args.batch_size, learning_rate=args.lr,
      l2_scale=args.l2, clip_norm=args.clip_norm or None,
      warmup_steps=args.warmup_steps, decay=args.decay,
      decay_steps=max(1, args.epochs * steps_per_epoch - args.warmup_steps),
      mixed_precision=config['mixed_precision'], jit_compile=args.jit,
      checkpoint_every=args.checkpoint_every or None)
  trainer = Trainer(runs.flow_fn_from_config(config), shape, train_config,
                    num_levels=images.num_levels, strategy=strategy,
                    checkpoint_dir=checkpoint_dir)
  num_params = sum(int(np.prod(v.shape)) for v in trainer.trainable_variables)
  log.info('Real NVP: %d scales, %d couplings, %d parameters; %d steps per '
           'epoch of %d images', args.num_scales, len(trainer.flow.couplings),
           num_params, steps_per_epoch, args.batch_size)

  test_images = images.test[:args.max_test_examples]

  def test_batches():
    return image_pipeline(test_images, images.num_levels,
                          min(args.eval_batch_size, len(test_images)),
                          training=False, seed=runs.EVAL_SEED,
                          drop_remainder=False)

  def train_batches():
    return image_pipeline(images.train, images.num_levels, args.batch_size,
                          training=True, seed=args.seed,
                          horizontal_flip=args.horizontal_flip)

  metrics = dict(dataset=images.name, source=images.source,
                 num_levels=images.num_levels, image_shape=list(shape),
                 strategy=describe_strategy(strategy),
                 replicas=strategy.num_replicas_in_sync, config=config,
                 **{key: [] for key in PER_EPOCH_KEYS})
  if args.resume:
    previous = runs.read_json(metrics_path)
    if previous:
      for key in PER_EPOCH_KEYS:
        metrics[key] = list(previous.get(key, []))
  writer = (SummaryWriter(os.path.join(args.output_dir, 'tensorboard'))
            if chief else None)
  samples_dir = os.path.join(args.output_dir, 'samples')

  def on_epoch_end(epoch, logs):
    if not chief:
      return
    tic = time.time()
    test_bpd = trainer.evaluate(test_batches())
    samples = trainer.sample(args.num_samples, args.temperature, seed=args.seed)
    path = os.path.join(samples_dir, f'epoch_{epoch:03d}.png')
    viz.image_grid(samples, title=f'{images.name}, epoch {epoch}, '
                   f'T = {args.temperature:g}', path=path)
    writer.scalar('bits_per_dim/train', logs['train_bits_per_dim'], epoch)
    writer.scalar('bits_per_dim/test', test_bpd, epoch)
    writer.scalar('images_per_second', logs['images_per_second'], epoch)
    writer.scalar('learning_rate', logs['learning_rate'], epoch)
    writer.image(f'samples_T{args.temperature:g}',
                 viz.tile_images(np.clip(samples, 0., 1.), pad=1), epoch)
    writer.flush()
    # A resumed run replaces the entries of the epochs it repeats.
    keep = [i for i, e in enumerate(metrics['epoch']) if e < epoch]
    for key in PER_EPOCH_KEYS:
      metrics[key] = [metrics[key][i] for i in keep]
    for key, value in (('epoch', epoch), ('step', logs['step']),
                       ('train_bits_per_dim', logs['train_bits_per_dim']),
                       ('test_bits_per_dim', test_bpd),
                       ('images_per_second_per_epoch',
                        logs['images_per_second']),
                       ('seconds', logs['seconds']),
                       ('learning_rate', logs['learning_rate']),
                       ('skipped_steps', logs['skipped_steps']),
                       ('samples', os.path.relpath(path, args.output_dir))):
      metrics[key].append(value)
    runs.write_json(metrics_path, metrics)
    log.info('epoch %d%s: train %.4f, test %.4f bits/dim, %.1f images/s '
             '(evaluation and samples %.1f s)', epoch,
             ' (ended early by --time-limit)' if logs['partial'] else '',
             logs['train_bits_per_dim'], test_bpd, logs['images_per_second'],
             time.time() - tic)

  start = time.time()
  history = trainer.fit(train_batches, epochs=args.epochs,
                        steps_per_epoch=steps_per_epoch, resume=args.resume,
                        on_epoch_end=on_epoch_end,
                        max_seconds=(None if args.time_limit is None
                                     else 60. * args.time_limit),
                        verbose=0 if args.quiet else 1)
  if not chief:
    return 0
  rates = [h['images_per_second'] for h in history
           if np.isfinite(h['images_per_second'])]
  metrics['images_per_second'] = (float(np.mean(rates)) if rates
                                  else metrics.get('images_per_second'))
  metrics['wall_seconds'] = time.time() - start
  metrics['final_step'] = trainer.step
  metrics['time_limit_reached'] = trainer.stopped_early
  if metrics['test_bits_per_dim']:
    metrics['final_test_bits_per_dim'] = metrics['test_bits_per_dim'][-1]
  viz.bits_per_dim_curves(
      metrics, path=os.path.join(args.output_dir, 'bits_per_dim.png'),
      title=f'Real NVP on {images.name}')
  if not args.no_export:
    path = trainer.export(os.path.join(args.output_dir, 'saved_model'))
    metrics['saved_model'] = os.path.relpath(path, args.output_dir)
    log.info('exported the SavedModel to %s', path)
  runs.write_json(metrics_path, metrics)
  final = metrics.get('final_test_bits_per_dim')
  log.info('done: %s, %d steps, test %s bits/dim, %s images/s; outputs in %s',
           images.name, trainer.step,
           'n/a' if final is None else f'{final:.4f}',
           'n/a' if metrics['images_per_second'] is None
           else f"{metrics['images_per_second']:.1f}", args.output_dir)
  return 0


if __name__ == '__main__':
  sys.exit(main())
