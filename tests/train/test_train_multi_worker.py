"""MultiWorkerMirroredStrategy: two local worker processes agree with one device."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 600  # seconds, for both workers together


def _free_ports(count):
  sockets = []
  try:
    for _ in range(count):
      s = socket.socket()
      s.bind(('127.0.0.1', 0))
      sockets.append(s)
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def _run_two_workers(tmp_path, *flags):
  """Runs `mwms_worker.py` as two workers on 127.0.0.1; returns their logs."""
  ports = _free_ports(2)
  cluster = {'worker': [f'127.0.0.1:{p}' for p in ports]}
  root = os.path.dirname(os.path.dirname(HERE))
  procs = []
  for index in range(2):
    # gRPC honours http(s)_proxy; the workers talk on the loopback only.
    env = dict(os.environ, no_proxy='127.0.0.1,localhost',
               NO_PROXY='127.0.0.1,localhost',
               TF_CONFIG=json.dumps({'cluster': cluster,
                                     'task': {'type': 'worker',
                                              'index': index}}),
               PYTHONPATH=os.pathsep.join(
                   [root] + [p for p in os.environ.get('PYTHONPATH', '')
                             .split(os.pathsep) if p]))
    log = open(tmp_path / f'worker{index}.log', 'w')
    procs.append((subprocess.Popen(
        [sys.executable, os.path.join(HERE, 'mwms_worker.py'),
         '--out', str(tmp_path / f'worker{index}.npz'),
         '--checkpoint-dir', str(tmp_path / 'checkpoints'), *flags],
        env=env, stdout=log, stderr=subprocess.STDOUT), log))
  try:
    for proc, _ in procs:
      proc.wait(timeout=TIMEOUT)
  finally:
    for proc, log in procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
      log.close()
  logs = [(tmp_path / f'worker{i}.log').read_text() for i in range(2)]
  for proc_log, (proc, _) in zip(logs, procs):
    assert proc.returncode == 0, proc_log[-3000:]
  return logs


@pytest.mark.slow
def test_two_worker_processes_agree_with_one_device(reference_run, tmp_path):
  _, ref_results, _, ref_vars = reference_run
  logs = _run_two_workers(tmp_path)
  assert 'MultiWorkerMirroredStrategy' in logs[0] or (
      'CollectiveAllReduceStrategy' in logs[0]), logs[0][-2000:]

  expected_bpd = float(np.mean([r.bits_per_dim for r in ref_results]))
  for index in range(2):
    out = np.load(tmp_path / f'worker{index}.npz')
    assert int(out['replicas']) == 2
    assert bool(out['chief']) == (index == 0)
    np.testing.assert_allclose(out['train_bpd'], [expected_bpd], rtol=1e-5)
    for key, want in ref_vars.items():
      np.testing.assert_allclose(out[key], want, rtol=1e-4, atol=2e-5,
                                 err_msg=f'worker {index}: {key}')
  # The chief wrote the checkpoints; the other worker wrote its own copy.
  chief_dir = tmp_path / 'checkpoints'
  assert (chief_dir / 'checkpoint').exists()
  assert (chief_dir / '.workers' / 'worker_1' / 'checkpoint').exists()


@pytest.mark.slow
def test_workers_whose_clocks_differ_end_after_the_same_step(tmp_path):
  """Worker 0's steps take 10 s of its clock, worker 1's 12 s, against a budget of 35 s:
  alone they would stop after 4 and 3 steps, and the one left stepping would wait for
  the other forever. Acting on the mean of their clocks, both stop after 3 steps, with
  the decay at the same point and the same weights."""
  _run_two_workers(tmp_path, '--time-budget', '35')
  outs = [np.load(tmp_path / f'worker{index}.npz') for index in range(2)]
  for out in outs:
    assert int(out['step']) == 3 and bool(out['stopped_early'])
  # The progress after each step is the mean of the two clocks: 11/35, 22/35, 33/35.
  np.testing.assert_allclose([float(o['decay_progress']) for o in outs], [33 / 35] * 2,
                             rtol=1e-6)
  assert float(outs[0]['learning_rate']) == float(outs[1]['learning_rate'])
  for key in outs[0].files:
    if key.startswith('v'):
      np.testing.assert_array_equal(outs[0][key], outs[1][key], err_msg=key)
