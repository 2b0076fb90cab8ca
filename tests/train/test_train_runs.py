"""Run folders: strict JSON, the validation split, the data fallback, moving a run
aside, the lock file; and a package without import cycles."""

import ast
import gzip
import json
import multiprocessing
import os
import pathlib
import socket

import numpy as np
import pytest

import tfp_realnvp
from tfp_realnvp.train import runs
from tfp_realnvp.train.run_lock import RunLock
from tfp_realnvp.train.run_lock import RunLockedError


def _strict_json(path):
  def refuse(name):
    raise ValueError(f'not JSON: {name}')
  return json.loads(pathlib.Path(path).read_text(), parse_constant=refuse)


def test_metrics_json_holds_null_not_nan(tmp_path):
  path = tmp_path / 'metrics.json'
  runs.write_json(path, dict(test_bits_per_dim=[3.5, float('nan'), np.float32('inf')],
                             final=np.float64('nan'), step=np.int64(7), ok=np.bool_(True)))
  value = _strict_json(path)
  assert value == dict(test_bits_per_dim=[3.5, None, None], final=None, step=7, ok=True)
  (tmp_path / 'broken.json').write_text('{"a": NaN')
  with pytest.raises(ValueError, match='broken.json is not valid JSON'):
    runs.read_json(tmp_path / 'broken.json')


def test_validation_split_is_fixed_and_disjoint():
  images = np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1)
  train, validation = runs.split_validation(images, 10)
  again = runs.split_validation(images, 10)
  np.testing.assert_array_equal(validation, again[1])
  assert len(train) == 90 and len(validation) == 10
  assert not set(train.ravel()) & set(validation.ravel())
  assert set(train.ravel()) | set(validation.ravel()) == set(range(100))
  assert list(validation.ravel()) != list(range(10))       # a permutation, not a prefix
  assert not np.array_equal(runs.split_validation(images, 10, seed=1)[1], validation)
  assert runs.default_num_validation(1500) == 150
  assert runs.default_num_validation(60000) == 2000
  with pytest.raises(ValueError, match='num_validation'):
    runs.split_validation(images, 100)


def test_fallback_to_digits_only_when_nothing_was_asked_for(tmp_path, monkeypatch):
  real_load_images = runs.load_images

  def no_fashion_mnist(name, data_dir=None, **kwargs):
    if name == 'fashion_mnist' and data_dir is None:
      raise RuntimeError('tensorflow_datasets could not load fashion_mnist')
    return real_load_images(name, data_dir=data_dir, **kwargs)
  monkeypatch.setattr(runs, 'load_images', no_fashion_mnist)
  messages = []
  images = runs.load_dataset('fashion_mnist', log=messages.append)
  assert images.name == 'digits' and images.num_levels == 17
  assert messages and 'falling back' in messages[0]
  with pytest.raises(RuntimeError):
    runs.load_dataset('fashion_mnist', fallback=False)
  # An explicit folder that cannot be read is an error, never a fallback.
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises((FileNotFoundError, ValueError), match=f'{empty} holds no'):
    runs.load_dataset('fashion_mnist', data_dir=str(empty), log=messages.append)
  assert len(messages) == 1


def test_a_corrupt_gzip_file_is_named(tmp_path):
  header = bytes([0, 0, 8, 3]) + np.array([50, 8, 8], '>u4').tobytes()
  pixels = np.random.default_rng(0).integers(0, 256, 50 * 64, dtype=np.uint8).tobytes()
  raw = bytearray(gzip.compress(header + pixels))
  for i in range(30, len(raw) - 10, 11):
    raw[i] ^= 0x5A
  for name in ('train-images-idx3-ubyte.gz', 't10k-images-idx3-ubyte.gz'):
    (tmp_path / name).write_bytes(bytes(raw))
  with pytest.raises(ValueError, match=str(tmp_path)):
    runs.load_dataset('mnist', data_dir=str(tmp_path))


def test_move_run_aside_keeps_everything_but_the_lock(tmp_path):
  run = tmp_path / 'run'
  (run / 'checkpoints').mkdir(parents=True)
  (run / 'checkpoints' / 'ckpt-0.index').write_text('x')
  (run / 'config.json').write_text('{}')
  (run / 'run.lock').write_text('{}')
  moved = pathlib.Path(runs.move_run_aside(str(run)))
  assert moved.parent == tmp_path and moved.name.startswith('run.replaced-')
  assert (moved / 'checkpoints' / 'ckpt-0.index').read_text() == 'x'
  assert (moved / 'config.json').exists() and not (moved / 'run.lock').exists()
  assert os.listdir(run) == ['run.lock']
  assert runs.move_run_aside(str(run)) is None


def _hold_lock(run_dir, ready, release):
  with RunLock(run_dir):
    ready.set()
    release.wait(60)


def test_one_process_per_run_folder(tmp_path):
  run_dir = str(tmp_path / 'run')
  context = multiprocessing.get_context('fork')
  ready, release = context.Event(), context.Event()
  holder = context.Process(target=_hold_lock, args=(run_dir, ready, release))
  holder.start()
  try:
    assert ready.wait(60)
    with pytest.raises(RunLockedError) as error:
      RunLock(run_dir).acquire()
    assert f'process {holder.pid} on {socket.gethostname()}' in str(error.value)
    assert 'run.lock' in str(error.value)
  finally:
    release.set()
    holder.join(60)
  assert not os.path.exists(os.path.join(run_dir, 'run.lock'))   # released at exit
  with RunLock(run_dir) as lock:
    assert lock.stale_owner is None
    record = json.loads(pathlib.Path(lock.path).read_text())
    assert record['pid'] == os.getpid() and record['host'] == socket.gethostname()


def test_a_stale_lock_is_detected_and_taken_over(tmp_path):
  run_dir = tmp_path / 'run'
  run_dir.mkdir()
  # What a process killed with SIGKILL leaves: the file, but no lock held on it.
  (run_dir / 'run.lock').write_text(json.dumps(dict(pid=999999, host='gone-host',
                                                    started='2026-01-01T00:00:00')))
  with RunLock(str(run_dir)) as lock:
    assert lock.stale_owner['pid'] == 999999
    assert 'process 999999 on gone-host' in lock.describe_stale_owner()
    assert 'stale lock' in lock.describe_stale_owner()
    assert json.loads((run_dir / 'run.lock').read_text())['pid'] == os.getpid()
  assert not (run_dir / 'run.lock').exists()


def _package_imports():
  """{module: set of tfp_realnvp modules it imports (anywhere, functions included)}."""
  root = pathlib.Path(tfp_realnvp.__file__).parent
  graph = {}
  for path in root.rglob('*.py'):
    module = '.'.join(('tfp_realnvp',) + path.relative_to(root).with_suffix('').parts)
    module = module.removesuffix('.__init__')
    imports = set()
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
          'tfp_realnvp'):
        imports.add(node.module)
        imports.update(f'{node.module}.{a.name}' for a in node.names)
      elif isinstance(node, ast.Import):
        imports.update(a.name for a in node.names if a.name.startswith('tfp_realnvp'))
    graph[module] = imports
  return {m: {i for i in deps if i in graph and i != m} for m, deps in graph.items()}


def test_no_import_cycle_in_the_package():
  graph = _package_imports()
  assert 'tfp_realnvp.train.trainer' in graph
  assert 'tfp_realnvp.train.export' in graph['tfp_realnvp.train.trainer']
  # A package's __init__ importing its submodules is not a cycle of modules.
  edges = {m: {d for d in deps if not m.startswith(d + '.')} for m, deps in graph.items()}
  state = {}

  def visit(module, stack):
    state[module] = 'open'
    for dep in edges[module]:
      if state.get(dep) == 'open':
        cycle = stack[stack.index(dep):] + [dep]
        raise AssertionError('import cycle: ' + ' -> '.join(cycle))
      if dep not in state:
        visit(dep, stack + [dep])
    state[module] = 'done'

  for module in sorted(edges):
    if module not in state:
      visit(module, [module])
