"""FLOP counts of traced functions and of the s/t networks' convolutions."""

from benchkit.environment import tf_modules


def profiler_flops(concrete_function):
  """Floating-point operations of a traced function, by TF's v1 profiler.

  `tf.compat.v1.profiler.profile(graph, float_operation())` on the function's
  graph: the sum of the registered FLOP statistics of its ops (Conv2D and its
  two gradients, MatMul, element-wise ops...). Graphs that hold TF1-style
  variables in their collections (TFP's default RealNVP template) trip the
  profiler, so the collection is emptied while it runs.
  """
  tf, _ = tf_modules()
  graph = concrete_function.graph
  opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  opts['output'] = 'none'
  key = tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES
  saved = list(graph.get_collection(key))
  graph.clear_collection(key)
  try:
    info = tf.compat.v1.profiler.profile(graph, options=opts)
  finally:
    for v in saved:
      graph.add_to_collection(key, v)
  return int(info.total_float_ops)


def op_counts(concrete_function, types=('Conv2D', 'Conv2DBackpropInput',
                                        'Conv2DBackpropFilter', 'MatMul')):
  counts = {}
  for op in concrete_function.graph.get_operations():
    if op.type in types:
      counts[op.type] = counts.get(op.type, 0) + 1
  counts['total_ops'] = len(concrete_function.graph.get_operations())
  return counts


def analytic_conv_flops(flow, batch_size):
  """Forward FLOPs of every convolution of the s/t ResNets (2 per MAC)."""
  from tfp_realnvp.nets.weight_norm import WeightNormConv2D  # pylint: disable=g-import-not-at-top
  total = 0
  for coupling in flow.couplings:
    shape = coupling._cond_shape  # pylint: disable=protected-access
    positions = 1
    for d in shape[:-1]:
      positions *= d
    for layer in coupling.network._flatten_layers(include_self=False,  # pylint: disable=protected-access
                                                  recursive=True):
      if isinstance(layer, WeightNormConv2D):
        kh, kw, cin, cout = layer.direction.shape
        total += 2 * positions * kh * kw * cin * cout
  return total * batch_size
