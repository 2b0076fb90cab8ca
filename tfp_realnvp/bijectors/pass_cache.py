"""The value/log-det cache of `FlowBijector`: one entry per pass, as long as its output lives.

A *pass* is one evaluation of a bijector in one direction: `inverse(y) -> (x, ildj)` or
`forward(x) -> (y, fldj)`. TFP asks for the value and the log-det in separate calls
(`TransformedDistribution.log_prob` calls `inverse(y)`, then `forward_log_det_jacobian(x)`;
`tfb.Chain` also calls `forward(x)` again), so each pass is kept, keyed by its input and by its
output, for the calls that follow. The rules:

1. An entry lives as long as the output tensor of its pass (held by a weak reference; the
   input is held strongly until then), and the output of the latest pass computed in a
   thread is also held until the next one: so `ildj(x)` followed by `inverse(x)`, or
   `inverse(x)` whose result was dropped followed by `ildj(x)`, still run one pass (which
   matters in training mode, where a second pass would update the statistics again).
2. In eager mode an entry also records the state of the bijector's variables (a hash of their
   values, taken after the pass, so training-mode statistics updated by the pass count) and
   whether a gradient tape could record; it is reused only while both still hold. A value or
   log-det asked for after a variable update is therefore never stale, and a pass computed
   outside a tape is never handed to a tape that needs its gradient.
3. Inside a traced graph (`tf.function`), the key is the symbolic tensor; a trace is a single
   program, and its entries die with the graph.
4. Entries are per thread: `tf.distribute.MirroredStrategy` runs each replica in a thread of
   its own, and the replicas must never evict or reuse each other's passes.
5. The keyword arguments of the pass (`training`, `conditional_input`) are part of the key.
"""

import hashlib
import threading
import weakref

import numpy as np
import tensorflow as tf

from tfp_realnvp import _compat

__all__ = ['PassCache']

OPPOSITE = {'forward': 'inverse', 'inverse': 'forward'}


class _Entry:
  """One pass: `input -> output` in `direction`, with its log-det."""

  __slots__ = ('direction', 'input', 'output_ref', 'log_det', 'state', 'recording',
               'kwargs_values', 'keys', '__weakref__')

  def __init__(self, direction, inputs, output_ref, log_det, state, recording, kwargs_values):
    self.direction = direction
    self.input = inputs
    self.output_ref = output_ref
    self.log_det = log_det
    self.state = state
    self.recording = recording
    self.kwargs_values = kwargs_values   # keeps tensors of the key alive: ids stay unique
    self.keys = ()


def _kwargs_key(kwargs):
  """A hashable key of the keyword arguments.

  Tensors count by identity (an eager tensor never changes; a symbolic one is one value of
  its graph); NumPy arrays, Python lists or tuples and (eager) variables by their contents,
  since they can change between two calls.
  """
  items = []
  for name in sorted(kwargs):
    value = kwargs[name]
    if isinstance(value, tf.Variable) and tf.executing_eagerly():
      array = value.numpy()   # a variable can be assigned between two calls
      items.append((name, 'array', array.dtype.str, array.shape, array.tobytes()))
    elif tf.is_tensor(value) or isinstance(value, tf.Variable):
      items.append((name, 'id', id(value)))
    elif isinstance(value, (np.ndarray, np.generic, list, tuple)):
      array = np.asarray(value)
      items.append((name, 'array', array.dtype.str, array.shape, array.tobytes()))
    else:
      items.append((name, 'value', value))
  return tuple(items)


class PassCache:
  """Per-thread storage of the passes of one bijector (shared by its shallow copies)."""

  def __init__(self):
    self._local = threading.local()

  def _storage(self):
    storage = getattr(self._local, 'storage', None)
    if storage is None:
      storage = self._local.storage = {}
    return storage

  def __len__(self):
    return len(self._storage())

  def clear(self):
    self._local.storage = {}
    self._local.latest_output = None

  def lookup_or_compute(self, bijector, direction, x, kwargs, compute):
    """`(value, log_det)` of `direction` at `x`, from a live pass or from `compute()`."""
    storage = self._storage()
    kwargs_key = _kwargs_key(kwargs)
    entry = storage.get((direction, id(x), kwargs_key))
    if entry is not None and self._usable(bijector, entry):
      if entry.direction == direction:
        output = entry.output_ref()
        if output is not None:
          return output, entry.log_det
      else:   # x is the output of a pass the other way: read it backwards
        return entry.input, -entry.log_det
    value, log_det = compute()
    if value is not x:
      self._store(bijector, storage, direction, x, value, log_det, kwargs, kwargs_key)
      self._local.latest_output = value
    return value, log_det

  def _usable(self, bijector, entry):
    if entry.state is None:
      return True
    return (entry.recording == _compat.could_possibly_record()
            and entry.state == state_fingerprint(bijector))

  def _store(self, bijector, storage, direction, x, value, log_det, kwargs, kwargs_key):
    eager = tf.executing_eagerly()
    entry = _Entry(direction, x, None, log_det,
                   state_fingerprint(bijector) if eager else None,
                   _compat.could_possibly_record() if eager else None,
                   tuple(kwargs.values()))
    keys = ((direction, id(x), kwargs_key), (OPPOSITE[direction], id(value), kwargs_key))
    entry.keys = keys
    entry_ref = weakref.ref(entry)

    def forget(_, storage=storage, keys=keys, entry_ref=entry_ref):
      target = entry_ref()
      for key in keys:
        if target is not None and storage.get(key) is target:
          del storage[key]

    try:
      entry.output_ref = weakref.ref(value, forget)
    except TypeError:   # not weak-referenceable: do not cache
      return
    for key in keys:
      storage[key] = entry


def state_fingerprint(bijector):
  """A hash of the values of `bijector`'s variables (eager mode), or None without any."""
  variables = bijector._state_variables()  # pylint: disable=protected-access
  if not variables:
    return None
  digest = hashlib.blake2b(digest_size=16)
  for variable in variables:
    value = np.ascontiguousarray(variable.numpy())
    digest.update(memoryview(value).cast('B'))
  return digest.digest()
