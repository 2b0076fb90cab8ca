"""One process per run folder: a lock file holding the owner's PID and host.

`RunLock(run_dir)` takes `RUN/run.lock` with an exclusive `fcntl.flock`, which the
operating system releases when the process ends, however it ends; the file also records
who holds it (PID, host, start time, command line). A second process gets
`RunLockedError` naming the owner. A lock file left behind by a process that died
(SIGKILL, power loss) is not held by anyone: it is detected, reported in `stale_owner`
and taken over. Under `MultiWorkerMirroredStrategy` only the chief takes the lock (the
other workers write in folders of their own).

```python
with RunLock('runs/fm') as lock:
  if lock.stale_owner:
    print('a previous run ended without releasing the folder:', lock.stale_owner)
  ...   # train
```
"""

import datetime
import errno
import fcntl
import json
import os
import socket
import sys

__all__ = ['LOCK_NAME', 'RunLock', 'RunLockedError']

LOCK_NAME = 'run.lock'


class RunLockedError(RuntimeError):
  """The run folder is in use by another process."""


def _describe(owner):
  if not owner:
    return 'an unknown process'
  return (f'process {owner.get("pid", "?")} on {owner.get("host", "?")} (started '
          f'{owner.get("started", "?")})')


def _read(fd):
  os.lseek(fd, 0, os.SEEK_SET)
  raw = b''
  while True:
    chunk = os.read(fd, 65536)
    if not chunk:
      break
    raw += chunk
  if not raw.strip():
    return None
  try:
    owner = json.loads(raw.decode('utf-8', 'replace'))
  except ValueError:
    return {'unreadable': raw[:200].decode('utf-8', 'replace')}
  return owner if isinstance(owner, dict) else {'unreadable': str(owner)[:200]}


class RunLock:
  """An exclusive lock on a run folder (see the module docstring).

  Args:
    run_dir: the run folder (created if missing).

  Attributes:
    path: the lock file, `run_dir/run.lock`.
    stale_owner: after `acquire`, the record of a dead owner whose lock was taken over,
      or None.
  """

  def __init__(self, run_dir):
    self.run_dir = os.fspath(run_dir)
    self.path = os.path.join(self.run_dir, LOCK_NAME)
    self.stale_owner = None
    self._fd = None

  def acquire(self):
    """Takes the lock; raises `RunLockedError` when another process holds it."""
    if self._fd is not None:
      return self
    os.makedirs(self.run_dir, exist_ok=True)
    while True:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except OSError as err:
        if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
          os.close(fd)
          raise
        owner = _read(fd)
        os.close(fd)
        raise RunLockedError(
            f'{self.run_dir} is in use by {_describe(owner)}: wait for it to end or '
            f'choose another --output-dir (lock file {self.path}).') from None
      # The holder we waited for may have deleted the file and a third process made a
      # new one: the lock counts only on the file that is at the path now.
      try:
        same = os.path.samestat(os.fstat(fd), os.stat(self.path))
      except FileNotFoundError:
        same = False
      if same:
        break
      os.close(fd)
    self.stale_owner = _read(fd)
    record = dict(pid=os.getpid(), host=socket.gethostname(),
                  started=datetime.datetime.now().isoformat(timespec='seconds'),
                  command=' '.join(sys.argv)[:500])
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(record) + '\n').encode())
    os.fsync(fd)
    self._fd = fd
    return self

  def describe_stale_owner(self):
    """A sentence about the stale lock taken over, or None."""
    if self.stale_owner is None:
      return None
    return (f'{self.path} was left by {_describe(self.stale_owner)}, which is no longer '
            f'running: a stale lock, taken over.')

  def release(self):
    """Deletes the lock file and releases the lock (idempotent)."""
    if self._fd is None:
      return
    try:
      os.unlink(self.path)
    except FileNotFoundError:
      pass
    fcntl.flock(self._fd, fcntl.LOCK_UN)
    os.close(self._fd)
    self._fd = None

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc_info):
    self.release()
