"""`FlowBijector`: the contract every bijector of this package follows.

#### Value and log-det in one pass

A coupling layer computes its value and its log-det from one run of its s/t network, and an
invertible batch norm in training mode must update its running averages once per pass. So a
subclass implements two hooks, each returning both:

```none
_forward_and_log_det(x, **kwargs) -> (y, fldj)     # log-det reduced over the event
_inverse_and_log_det(y, **kwargs) -> (x, ildj)
```

The hooks always see exactly one batch dimension: the public methods flatten any batch
shape (none included) to one axis before, and restore it after. The keyword arguments are
the same for every method and are routed per call: `training` (batch statistics, running
averages updated) and `conditional_input` (the labels of a class-conditional flow); a hook
takes what it needs and ignores the rest.

TFP's public methods (`forward`, `inverse`, `forward_log_det_jacobian`,
`inverse_log_det_jacobian`), and `forward_and_log_det` / `inverse_and_log_det`, which return
both, all go through one cache of passes (`pass_cache.PassCache`, whose docstring states the
rules): the network runs once per `TransformedDistribution.log_prob`, `sample` and
`experimental_sample_and_log_prob`, also through `tfb.Chain` and `tfb.Invert`, and a value or
log-det asked for after a variable update is never stale.

Composites (`FlowSequence`, `FactorOut`, `Inverted`) walk their parts with `_call_pass`,
which runs a part's hook on the already flattened batch without the cache; a TFP bijector that
is not a `FlowBijector` is wrapped once, when the composite is built (`as_flow_bijector`).

#### Identity

Two bijectors are equal only if one is a copy of the other: building the same architecture
twice gives two different maps (different weights), which must never share cached values.
`copy()` without arguments (and batch slicing, which TFP implements with it) returns an
object that shares every network and variable and compares equal; `copy(**changes)` builds a
new bijector from the changed constructor arguments, with new variables, that does not.

#### Checks

Inputs are converted to float32 (Python numbers and NumPy arrays are cast, as TFP does); a
tensor of another dtype raises `TypeError`. The event part of the input's shape is checked
against the bijector's event shape (`ValueError` naming both). In training mode the input must
be finite, whatever `validate_args` says (`InvalidArgumentError` before any running average is
touched); with `validate_args=True` every input is checked for NaN and Inf. A batch of zero
events returns empty results without running any network.
"""

import copy as copy_lib

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp import _compat
from tfp_realnvp.bijectors.pass_cache import PassCache

tfb = tfp.bijectors

__all__ = ['FlowBijector', 'as_flow_bijector', 'assert_finite', 'reduce_event']

# Keyword arguments routed to every hook, with their defaults.
CALL_KWARGS = {'training': False, 'conditional_input': None}


class _Identity:
  """What equal bijectors share: created once per constructed bijector."""
  __slots__ = ()


class FlowBijector(tfb.Bijector):
  """Base of this package's bijectors: value and log-det from one pass, any batch shape.

  See the module docstring for the contract. Subclasses call `__init__` with TFP's
  arguments and implement `_forward_and_log_det` and `_inverse_and_log_det`; they may declare
  the event shapes they accept with `_data_event_shape` (the input of `inverse`) and
  `_latent_event_shape` (the input of `forward`), both `_event_shape_tuple` by default (a
  bijector that keeps the event's shape sets only that), and list their own variables'
  L2-regularised subset in `l2_regularized_variables`.

  Every bijector follows TFP's direction convention: `forward` maps latent to data
  (sampling) and `inverse` is the paper's `f`, data to latent (density).
  """

  def __init__(self, *, parameters, name, validate_args=False, forward_min_event_ndims,
               inverse_min_event_ndims=None, is_constant_jacobian=False):
    super().__init__(
        forward_min_event_ndims=forward_min_event_ndims,
        inverse_min_event_ndims=(forward_min_event_ndims if inverse_min_event_ndims is None
                                 else inverse_min_event_ndims),
        is_constant_jacobian=is_constant_jacobian,
        validate_args=validate_args,
        dtype=tf.float32,
        parameters=parameters,
        name=name)
    self._identity = _Identity()
    self._pass_cache = PassCache()
    self._variables_for_state = None

  # -- to implement -------------------------------------------------------------
  def _forward_and_log_det(self, x, **kwargs):
    raise NotImplementedError

  def _inverse_and_log_det(self, y, **kwargs):
    raise NotImplementedError

  _event_shape_tuple = None    # static event shape of a shape-keeping bijector, if fixed

  @property
  def _data_event_shape(self):
    """Static event shape of `inverse`'s input, if fixed."""
    return self._event_shape_tuple

  @property
  def _latent_event_shape(self):
    """Static event shape of `forward`'s input, if fixed."""
    return self._event_shape_tuple

  @property
  def l2_regularized_variables(self):
    """Variables the paper's L2 penalty applies to (the couplings' scales); default none."""
    return ()

  # -- identity -----------------------------------------------------------------
  def __eq__(self, other):
    return (type(self) is type(other)
            and self._identity is getattr(other, '_identity', None))

  def __hash__(self):
    return hash((type(self), id(self._identity)))

  def copy(self, **override_parameters_kwargs):
    """A copy: without arguments the same map (shared networks and variables, equal).

    With arguments, a new bijector built from the constructor arguments updated with them
    (TFP's `copy` semantics): it has variables of its own and does not compare equal.
    """
    if not override_parameters_kwargs:
      return copy_lib.copy(self)
    return super().copy(**override_parameters_kwargs)

  def __getitem__(self, slices):
    """Batch slicing: the same map (a copy sharing everything, which compares equal).

    These bijectors have an empty batch shape (their parameters are networks and per-channel
    vectors shared by every event), so any slice of one, as TFP takes when it slices a
    `TransformedDistribution` whose base has a batch shape, is the bijector itself.
    """
    del slices
    return self.copy()

  def _state_variables(self):
    """Every variable whose value the map depends on (cached: built once)."""
    if self._variables_for_state is None:
      self._variables_for_state = tuple(self.variables)
    return self._variables_for_state

  # -- public methods -------------------------------------------------------------
  def forward(self, x, name='forward', **kwargs):
    return self._cached_pass('forward', x, name, kwargs)[0]

  def inverse(self, y, name='inverse', **kwargs):
    return self._cached_pass('inverse', y, name, kwargs)[0]

  def forward_log_det_jacobian(self, x, event_ndims=None, name='forward_log_det_jacobian',
                               **kwargs):
    ldj = self._cached_pass('forward', x, name, kwargs)[1]
    return self._sum_extra_event_dims(ldj, event_ndims, self.forward_min_event_ndims)

  def inverse_log_det_jacobian(self, y, event_ndims=None, name='inverse_log_det_jacobian',
                               **kwargs):
    ldj = self._cached_pass('inverse', y, name, kwargs)[1]
    return self._sum_extra_event_dims(ldj, event_ndims, self.inverse_min_event_ndims)

  def forward_and_log_det(self, x, event_ndims=None, name='forward_and_log_det', **kwargs):
    """`(forward(x), forward_log_det_jacobian(x, event_ndims))` from one pass."""
    y, ldj = self._cached_pass('forward', x, name, kwargs)
    return y, self._sum_extra_event_dims(ldj, event_ndims, self.forward_min_event_ndims)

  def inverse_and_log_det(self, y, event_ndims=None, name='inverse_and_log_det', **kwargs):
    """`(inverse(y), inverse_log_det_jacobian(y, event_ndims))` from one pass."""
    x, ldj = self._cached_pass('inverse', y, name, kwargs)
    return x, self._sum_extra_event_dims(ldj, event_ndims, self.inverse_min_event_ndims)

  # -- the pass -----------------------------------------------------------------
  def _cached_pass(self, direction, x, name, kwargs):
    kwargs = self._routed_kwargs(kwargs)
    with _compat.bijector_name_scope(self, name):
      x = self._as_float32(x, direction)
      return self._pass_cache.lookup_or_compute(
          self, direction, x, kwargs, lambda: self._batched_pass(direction, x, kwargs))

  def _routed_kwargs(self, kwargs):
    unknown = sorted(set(kwargs) - set(CALL_KWARGS))
    if unknown:
      raise TypeError(f'{self.name}: unexpected keyword argument(s) {unknown}; the keyword '
                      f'arguments of a flow are {sorted(CALL_KWARGS)}.')
    routed = dict(CALL_KWARGS, **kwargs)
    routed['training'] = bool(routed['training'])
    return routed

  def _as_float32(self, x, direction):
    if tf.is_tensor(x) or isinstance(x, tf.Variable):
      if x.dtype != tf.float32:
        raise TypeError(
            f'{self.name}.{direction}: expected a float32 input, got {x.dtype.name}. The '
            f'flows of this package compute in float32 (mixed precision applies to the s/t '
            f'networks only); cast the input with tf.cast(x, tf.float32).')
      return tf.convert_to_tensor(x)
    return tf.convert_to_tensor(x, dtype=tf.float32)

  def _event_rank(self, direction):
    rank = (self.forward_min_event_ndims if direction == 'forward'
            else self.inverse_min_event_ndims)
    return int(rank)

  def _expected_event_shape(self, direction):
    return self._latent_event_shape if direction == 'forward' else self._data_event_shape

  def _check_input_shape(self, x, direction):
    rank = x.shape.rank
    event_rank = self._event_rank(direction)
    what = 'latents' if direction == 'forward' else 'data'
    expected = self._expected_event_shape(direction)
    shown = (f'(..., {", ".join(map(str, expected))})' if expected
             else f'rank >= {event_rank}')
    if rank is None:
      raise ValueError(f'{self.name}.{direction}: the rank of the input must be known '
                       f'statically (expected {what} of shape {shown}).')
    if rank < event_rank:
      raise ValueError(f'{self.name}.{direction}: expected {what} of shape {shown}, got '
                       f'rank {rank} with shape {tuple(x.shape)}.')
    if expected is not None:
      actual = tuple(x.shape[rank - event_rank:])
      if any(a is not None and a != e for a, e in zip(actual, expected)):
        raise ValueError(f'{self.name}.{direction}: expected {what} of shape {shown}, got '
                         f'{tuple(x.shape)}.')

  def _batched_pass(self, direction, x, kwargs):
    """Runs the hook on `x` with its batch dimensions flattened to one, then restores them."""
    self._check_input_shape(x, direction)
    event_rank = self._event_rank(direction)
    batch_rank = x.shape.rank - event_rank
    if kwargs['training'] or self.validate_args:
      x = assert_finite(x, f'{self.name}.{direction}')
    static_batch = x.shape[:batch_rank]
    dynamic_shape = tf.shape(x)
    batch_shape = dynamic_shape[:batch_rank]
    event_shape = dynamic_shape[batch_rank:]
    flat = tf.reshape(x, tf.concat([[-1], event_shape], 0))
    static_event = x.shape[batch_rank:]
    flat = tf.ensure_shape(flat, [static_batch.num_elements()] + static_event.as_list())
    kwargs = dict(kwargs)
    if kwargs['conditional_input'] is not None:
      kwargs['conditional_input'] = self._flat_conditional_input(
          kwargs['conditional_input'], static_batch, batch_shape)

    num_events = static_batch.num_elements()
    if num_events == 0:
      y, ldj = self._empty_pass(direction, flat)
    elif num_events is not None:
      y, ldj = self._call_pass(direction, flat, kwargs)
    else:
      y, ldj = tf.cond(tf.size(flat) > 0,
                       lambda: self._call_pass(direction, flat, kwargs),
                       lambda: self._empty_pass(direction, flat))
    static_out_event = y.shape[1:]
    y = tf.reshape(y, tf.concat([batch_shape, tf.shape(y)[1:]], 0))
    ldj = tf.reshape(ldj, batch_shape)
    y = tf.ensure_shape(y, static_batch.concatenate(static_out_event))
    return y, tf.ensure_shape(ldj, static_batch)

  def _flat_conditional_input(self, labels, static_batch, batch_shape):
    """The labels with the batch flattened like the events (extra event axes kept)."""
    labels = tf.convert_to_tensor(labels)
    batch_rank = len(static_batch)
    extra = labels.shape.rank - batch_rank if labels.shape.rank is not None else None
    if extra is None or extra < 0:
      raise ValueError(
          f'{self.name}: conditional_input of shape {tuple(labels.shape)} does not match the '
          f'batch shape {tuple(static_batch)} of the input.')
    if not static_batch.is_compatible_with(labels.shape[:batch_rank]):
      raise ValueError(
          f'{self.name}: conditional_input of shape {tuple(labels.shape)} does not match the '
          f'batch shape {tuple(static_batch)} of the input.')
    return tf.reshape(labels, tf.concat([[-1], tf.shape(labels)[batch_rank:]], 0))

  def _empty_pass(self, direction, flat):
    """The results of a pass on zero events, without running anything."""
    out_event = self._output_event_shape_tensor(direction, tf.shape(flat)[1:])
    empty = tf.zeros(tf.concat([[0], out_event], 0), flat.dtype)
    return empty, tf.zeros([0], flat.dtype)

  def _output_event_shape_tensor(self, direction, input_event_shape):
    if direction == 'forward':
      return self._forward_event_shape_tensor(input_event_shape)
    return self._inverse_event_shape_tensor(input_event_shape)

  def _call_pass(self, direction, flat, kwargs):
    """The hook of `direction` on a flat batch `(N,) + event`, no cache, no reshaping."""
    if direction == 'forward':
      return self._forward_and_log_det(flat, **kwargs)
    return self._inverse_and_log_det(flat, **kwargs)

  def _sum_extra_event_dims(self, ldj, event_ndims, min_event_ndims):
    if event_ndims is None:
      return ldj
    extra = int(event_ndims) - int(min_event_ndims)
    if extra < 0:
      raise ValueError(f'{self.name}: event_ndims must be at least {int(min_event_ndims)}, '
                       f'got {event_ndims}.')
    if extra == 0:
      return ldj
    return tf.reduce_sum(ldj, axis=list(range(-extra, 0)))

  # TFP calls these only through the public methods above, which are overridden; they exist
  # so that TFP's generic code (e.g. `_is_injective` checks) finds a complete bijector.
  def _forward(self, x, **kwargs):
    return self._call_pass('forward', x, self._routed_kwargs(kwargs))[0]

  def _inverse(self, y, **kwargs):
    return self._call_pass('inverse', y, self._routed_kwargs(kwargs))[0]

  # -- event shapes -----------------------------------------------------------------
  def _checked_event_shape(self, shape, expected, method):
    shape = tf.TensorShape(shape)
    if expected is None or shape.rank is None:
      return shape
    if shape.rank < len(expected) or not shape[shape.rank - len(expected):].is_compatible_with(
        expected):
      raise ValueError(f'{self.name}.{method}: expected an event shape (..., '
                       f'{", ".join(map(str, expected))}), got {shape}.')
    return shape

  def _forward_event_shape(self, input_shape):
    shape = self._checked_event_shape(input_shape, self._latent_event_shape,
                                      'forward_event_shape')
    if self._latent_event_shape is None or shape.rank is None:
      return shape
    return shape[:shape.rank - len(self._latent_event_shape)].concatenate(
        self._data_event_shape)

  def _inverse_event_shape(self, output_shape):
    shape = self._checked_event_shape(output_shape, self._data_event_shape,
                                      'inverse_event_shape')
    if self._data_event_shape is None or shape.rank is None:
      return shape
    return shape[:shape.rank - len(self._data_event_shape)].concatenate(
        self._latent_event_shape)

  def _forward_event_shape_tensor(self, input_shape):
    if self._latent_event_shape is None:
      return input_shape
    rank = len(self._latent_event_shape)
    return tf.concat([input_shape[:tf.size(input_shape) - rank],
                      tf.constant(self._data_event_shape, tf.int32)], 0)

  def _inverse_event_shape_tensor(self, output_shape):
    if self._data_event_shape is None:
      return output_shape
    rank = len(self._data_event_shape)
    return tf.concat([output_shape[:tf.size(output_shape) - rank],
                      tf.constant(self._latent_event_shape, tf.int32)], 0)

  @classmethod
  def _parameter_properties(cls, dtype):
    return dict()


def as_flow_bijector(bijector, event_ndims):
  """`bijector` itself if it is a `FlowBijector`, else a `FlowBijector` wrapping it."""
  if isinstance(bijector, FlowBijector):
    return bijector
  if not isinstance(bijector, tfb.Bijector):
    raise TypeError(f'expected a tfp.bijectors.Bijector, got {type(bijector).__name__}.')
  return _TFPBijectorStep(bijector, event_ndims)


class _TFPBijectorStep(FlowBijector):
  """A TFP bijector as a step of a composite: its public methods, with `event_ndims`."""

  def __init__(self, bijector, event_ndims):
    parameters = dict(locals())
    self._bijector = bijector
    self._step_event_ndims = int(event_ndims)
    super().__init__(parameters=parameters, name=bijector.name,
                     forward_min_event_ndims=int(event_ndims),
                     is_constant_jacobian=bijector.is_constant_jacobian)

  @property
  def bijector(self):
    return self._bijector

  def _forward_and_log_det(self, x, **kwargs):
    del kwargs
    y = self._bijector.forward(x)
    return y, self._bijector.forward_log_det_jacobian(x, event_ndims=self._step_event_ndims)

  def _inverse_and_log_det(self, y, **kwargs):
    del kwargs
    x = self._bijector.inverse(y)
    return x, self._bijector.inverse_log_det_jacobian(y, event_ndims=self._step_event_ndims)

  def _forward_event_shape(self, input_shape):
    return self._bijector.forward_event_shape(input_shape)

  def _inverse_event_shape(self, output_shape):
    return self._bijector.inverse_event_shape(output_shape)

  def _forward_event_shape_tensor(self, input_shape):
    return self._bijector.forward_event_shape_tensor(input_shape)

  def _inverse_event_shape_tensor(self, output_shape):
    return self._bijector.inverse_event_shape_tensor(output_shape)


def assert_finite(x, name):
  """`x`, after a run-time check that it holds no NaN or Inf (error names `name`)."""
  with tf.control_dependencies([tf.debugging.assert_all_finite(
      x, f'{name}: input contains NaN or Inf')]):
    return tf.identity(x)


def reduce_event(values, event_ndims):
  """Sums `values` over its last `event_ndims` axes."""
  if event_ndims == 0:
    return values
  return tf.reduce_sum(values, axis=list(range(-event_ndims, 0)))
