"""The named model configurations of the benchmarks and their flags."""


# Model configurations: image event, scales, s/t width and depth, batch size.
CONFIGS = {
    # A smoke test that runs in seconds.
    'tiny': dict(event_shape=(8, 8, 1), num_scales=2, hidden_channels=16,
                 num_res_blocks=2, batch_size=64),
    # The configuration of the speed targets.
    'mnist-small': dict(event_shape=(28, 28, 1), num_scales=2,
                        hidden_channels=32, num_res_blocks=4, batch_size=64),
    # The package defaults (64 features, 8 residual blocks) on MNIST shapes.
    'mnist': dict(event_shape=(28, 28, 1), num_scales=2, hidden_channels=64,
                  num_res_blocks=8, batch_size=64),
    'cifar-small': dict(event_shape=(32, 32, 3), num_scales=3,
                        hidden_channels=32, num_res_blocks=4, batch_size=64),
}

PRECISIONS = ('float32', 'mixed_bfloat16')
MODES = ('graph', 'xla')


def parse_config(name, overrides):
  """A copy of `CONFIGS[name]` with command-line overrides applied."""
  if name not in CONFIGS:
    raise SystemExit(f'unknown --config {name!r}; choose from {sorted(CONFIGS)}')
  cfg = dict(CONFIGS[name])
  for key in ('num_scales', 'hidden_channels', 'num_res_blocks', 'batch_size'):
    value = getattr(overrides, key, None)
    if value is not None:
      cfg[key] = int(value)
  if getattr(overrides, 'event_shape', None):
    cfg['event_shape'] = tuple(int(d) for d in overrides.event_shape.split(','))
  cfg['event_shape'] = tuple(cfg['event_shape'])
  return cfg


def add_config_args(parser, default='mnist-small'):
  parser.add_argument('--config', default=default,
                      help=f'one of {sorted(CONFIGS)} (default {default})')
  parser.add_argument('--event-shape', help='override, e.g. 32,32,3')
  parser.add_argument('--num-scales', type=int)
  parser.add_argument('--hidden-channels', type=int)
  parser.add_argument('--num-res-blocks', type=int)
  parser.add_argument('--batch-size', type=int)
  parser.add_argument('--onednn', choices=('default', 'on', 'off'),
                      default='default',
                      help='TF_ENABLE_ONEDNN_OPTS for this run (default: as set)')
