"""The paper's training recipe: the model for training, the loss, the constants, one step.

Maximum likelihood with the Real NVP paper's settings (section 4.1):

```none
loss(x) = -mean_i log p(x_i)  +  L2_SCALE * sum_k ||scale_k||^2
```

where `log p` is the flow's log-density in training mode (batch-norm statistics of the
batch, running averages updated once) and `scale_k` are the couplings' learned s-scale
vectors (`flow.l2_regularized_variables`). Adam with `LEARNING_RATE`, the gradient
clipped to the global norm `CLIP_NORM`, batches of `BATCH_SIZE`.

`Trainer` (any `tf.distribute` strategy, checkpoints, guards), `FlowModel` (Keras
`fit`) and `maximum_likelihood_step` (one device, a bare `tf.function`) all take their
loss and their defaults from here.

```python
flow = make_flow((28, 28, 1), num_scales=2, hidden_channels=32, num_res_blocks=4)
dist = make_distribution(flow, (28, 28, 1))
step = maximum_likelihood_step(dist, keras.optimizers.Adam(LEARNING_RATE),
                               l2_variables=flow.l2_regularized_variables)
for x in batches:
  nll = step(x)          # nats per image
```

A class-conditional flow (`make_flow(..., num_classes=K)`) models `p(x | y)`: the loss is
the same with `log p(x | y)`, and every entry point takes the batch's integer labels
(`step(x, labels)`, `maximum_likelihood_loss(dist, x, labels=labels)`), which reach the
flow as its `conditional_input`.

#### References
[1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
     ICLR 2017. https://arxiv.org/abs/1605.08803
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp.chain import RealNVPChain
from tfp_realnvp.classifier import conditional_num_classes

tfd = tfp.distributions

__all__ = [
    'BATCH_SIZE',
    'CLIP_NORM',
    'L2_SCALE',
    'LEARNING_RATE',
    'NETWORK_DTYPES',
    'check_labels_for',
    'clip_gradients',
    'flow_num_classes',
    'l2_penalty',
    'make_distribution',
    'make_flow',
    'maximum_likelihood_loss',
    'maximum_likelihood_step',
    'inference_log_prob',
    'training_log_prob',
    'uses_float16',
]

# The paper's constants (Dinh et al., 2017, section 4.1).
LEARNING_RATE = 1e-3      # Adam's learning rate
L2_SCALE = 5e-5           # L2 penalty on the couplings' s-scale vectors
CLIP_NORM = 100.          # global gradient-norm clipping
BATCH_SIZE = 64           # examples per step

# --mixed-precision value -> Keras dtype policy of the s/t networks.
NETWORK_DTYPES = {None: None, 'none': None, 'float32': None,
                  'bfloat16': 'mixed_bfloat16', 'float16': 'mixed_float16'}


def make_flow(event_shape, num_scales=2, hidden_channels=64, num_res_blocks=8,
              mixed_precision=None, validate_args=False, **kwargs):
  """A `RealNVPChain` for training.

  `mixed_precision` ('bfloat16' or 'float16') runs the s/t networks under the Keras
  policy `mixed_<dtype>`; the couplings, batch norms and log-dets stay float32.
  `validate_args` defaults to False here: the trainer checks its data at the entry
  (finite, in [0, 1]) and its non-finite guard handles bad values without stopping
  the run.

  Raises:
    ValueError: for an unknown `mixed_precision`, or an architecture that does not fit
      the event shape (see `RealNVPChain`).
  """
  if mixed_precision not in NETWORK_DTYPES:
    raise ValueError(f'mixed_precision must be one of bfloat16, float16 or '
                     f'None, got {mixed_precision!r}.')
  policy = NETWORK_DTYPES[mixed_precision]
  previous = keras.mixed_precision.global_policy()
  if policy is not None:
    # Layers that a network layer creates inside itself (the residual blocks'
    # convolutions and batch norms) take the global policy, not their parent's:
    # set it while the networks are built.
    keras.mixed_precision.set_global_policy(policy)
  try:
    return RealNVPChain(event_shape, num_scales=num_scales,
                        hidden_channels=hidden_channels,
                        num_res_blocks=num_res_blocks, network_dtype=policy,
                        validate_args=validate_args, **kwargs)
  finally:
    keras.mixed_precision.set_global_policy(previous)


def make_distribution(flow, event_shape):
  """`TransformedDistribution` of a standard normal over the event by `flow`."""
  return tfd.TransformedDistribution(
      tfd.Sample(tfd.Normal(0., 1.), tuple(event_shape)), flow)


def uses_float16(flow):
  """True when the flow's s/t networks compute in float16 (loss scaling needed)."""
  networks = getattr(flow, 'networks', ())
  if any(getattr(getattr(net, 'dtype_policy', None), 'name', '') == 'mixed_float16'
         for net in networks):
    return True
  return not networks and keras.mixed_precision.global_policy().name == 'mixed_float16'


def flow_num_classes(flow):
  """K of a class-conditional flow (or of a distribution's flow), None otherwise."""
  return conditional_num_classes(getattr(flow, 'bijector', flow))


def check_labels_for(num_classes, labels, what):
  """Raises `ValueError` unless labels are given exactly when the flow is conditional.

  Args:
    num_classes: K of a class-conditional flow, or None.
    labels: the labels given (None: none).
    what: the entry point, named at the start of the message.
  """
  if num_classes is not None and labels is None:
    raise ValueError(
        f'{what}: the flow is class-conditional (num_classes={num_classes}): it models '
        f'p(x | y) and needs the integer labels of the batch (e.g. (images, labels) '
        f'batches from image_pipeline(..., labels=train_labels)).')
  if num_classes is None and labels is not None:
    raise ValueError(
        f'{what}: labels were given, but the flow is not class-conditional: build it '
        f'with num_classes=K to condition on them, or leave them out.')


def _bijector_kwargs(labels, training):
  kwargs = {'training': True} if training else {}
  if labels is not None:
    kwargs['conditional_input'] = labels
  return kwargs


def training_log_prob(distribution, x, labels=None):
  """`log p(x)` (`log p(x | labels)` for a class-conditional flow) in training mode
  (batch statistics, running averages updated), float32."""
  log_prob = distribution.log_prob(x, bijector_kwargs=_bijector_kwargs(labels, True))
  return tf.cast(log_prob, tf.float32)


def inference_log_prob(distribution, x, labels=None):
  """`log p(x)` (`log p(x | labels)`) in inference mode (running statistics), float32."""
  log_prob = distribution.log_prob(x, bijector_kwargs=_bijector_kwargs(labels, False))
  return tf.cast(log_prob, tf.float32)


def l2_penalty(variables, scale=L2_SCALE):
  """`scale * sum(||v||^2)` over `variables` (0 when there are none)."""
  if not variables or not scale:
    return tf.constant(0., tf.float32)
  return scale * tf.add_n([tf.reduce_sum(tf.square(tf.cast(v, tf.float32)))
                           for v in variables])


def maximum_likelihood_loss(distribution, x, l2_variables=(), l2_scale=L2_SCALE,
                            labels=None):
  """The recipe's loss on one batch; returns `(loss, log_prob)`.

  `loss = -mean(log_prob) + l2_penalty(l2_variables, l2_scale)`, with `log_prob` the
  per-example log-density in training mode (`training_log_prob`), conditioned on
  `labels` for a class-conditional flow.
  """
  log_prob = training_log_prob(distribution, x, labels)
  loss = -tf.reduce_mean(log_prob) + l2_penalty(l2_variables, l2_scale)
  return loss, log_prob


def clip_gradients(grads, clip_norm, use_norm=None):
  """Clips to the global norm `clip_norm` (None: unchanged); returns `(grads, norm)`."""
  norm = tf.linalg.global_norm(grads) if use_norm is None else use_norm
  if clip_norm is None:
    return list(grads), norm
  clipped, _ = tf.clip_by_global_norm(grads, clip_norm, use_norm=norm)
  return clipped, norm


def maximum_likelihood_step(distribution, optimizer, *, l2_variables=(),
                            l2_scale=L2_SCALE, clip_norm=CLIP_NORM,
                            jit_compile=False):
  """The paper's training step on one device, as a `tf.function`.

  Returns `step(x) -> nll` (`step(x, labels)` for a class-conditional flow: integer
  labels, one per example), which lowers `maximum_likelihood_loss` by one update of
  `optimizer` on `distribution.trainable_variables`, after clipping the gradient to
  the global norm `clip_norm` (None: no clipping), and returns the mean negative
  log-likelihood (the loss without the L2 term, nats per example). The optimizer is
  built here, before any tracing. For several replicas, checkpoints and the
  non-finite guard use `Trainer`.

  Args:
    distribution: a `TransformedDistribution` of a flow.
    optimizer: a Keras optimizer.
    l2_variables: the variables of the L2 penalty, e.g.
      `flow.l2_regularized_variables` (the couplings' s-scales).
    l2_scale: the penalty's factor (paper: 5e-5).
    clip_norm: global gradient-norm clipping; None: no clipping.
    jit_compile: compile the step with XLA.

  Raises (from `step`):
    ValueError: labels missing for a class-conditional flow, or given to an
      unconditional one.
  """
  variables = list(distribution.trainable_variables)
  optimizer.build(variables)
  l2_variables = tuple(l2_variables)
  num_classes = flow_num_classes(distribution)

  def step(x, labels=None):
    check_labels_for(num_classes, labels, 'maximum_likelihood_step')
    with tf.GradientTape() as tape:
      loss, log_prob = maximum_likelihood_loss(distribution, x, l2_variables,
                                               l2_scale, labels=labels)
    grads, _ = clip_gradients(tape.gradient(loss, variables), clip_norm)
    optimizer.apply_gradients(zip(grads, variables))
    return -tf.reduce_mean(log_prob)

  return tf.function(step, jit_compile=jit_compile)
