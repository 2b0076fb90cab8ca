"""Paths, TensorFlow's import-time environment and facts about the machine.

Import this module before TensorFlow: `setup_environment` sets the variables
TensorFlow reads at import time (oneDNN, log level). Importing it puts the
package under test first on `sys.path`: this checkout's `tfp_realnvp`, or the
checkout named by `BENCH_PACKAGE_DIR` (A/B comparisons).
"""

import datetime
import os
import platform
import resource
import subprocess
import sys

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(BENCH_DIR)
# Run from a fresh clone without PYTHONPATH. BENCH_PACKAGE_DIR points the
# scripts at another checkout's tfp_realnvp instead (A/B comparisons).
PACKAGE_DIR = os.environ.get('BENCH_PACKAGE_DIR', REPO_DIR)
if PACKAGE_DIR not in sys.path:
  sys.path.insert(0, PACKAGE_DIR)


def setup_environment(onednn='default', threads=0):
  """Sets TensorFlow's import-time environment; call before importing TF.

  Args:
    onednn: 'on' or 'off' sets TF_ENABLE_ONEDNN_OPTS; 'default' leaves it as
      it is (TensorFlow turns oneDNN on by default only on recent Intel CPUs).
    threads: intra-op threads (0: TensorFlow's default, one per core).
  """
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
  if onednn in ('on', 'off'):
    os.environ['TF_ENABLE_ONEDNN_OPTS'] = '1' if onednn == 'on' else '0'
  if threads:
    os.environ['TF_NUM_INTRAOP_THREADS'] = str(threads)


def tf_modules():
  """`(tensorflow, tensorflow_probability)`, imported on first use."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_probability as tfp  # pylint: disable=g-import-not-at-top
  return tf, tfp


def onednn_enabled():
  try:
    from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
    return bool(_pywrap_util_port.IsMklEnabled())
  except Exception:  # pylint: disable=broad-except
    return None


def cpu_name():
  name = platform.processor() or ''
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return name


def load_average():
  try:
    return os.getloadavg()[0]
  except OSError:
    return None


def machine_info():
  """CPU, load, library versions, oneDNN, threads, commit and date."""
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_probability as tfp  # pylint: disable=g-import-not-at-top
  return dict(
      cpu=cpu_name(), cores=os.cpu_count(), load_average_1min=load_average(),
      python=platform.python_version(), tensorflow=tf.__version__,
      tensorflow_probability=tfp.__version__, keras=keras.__version__,
      onednn=onednn_enabled(),
      intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
      commit=git_commit(), package_dir=PACKAGE_DIR,
      date=datetime.datetime.now().isoformat(timespec='seconds'))


def git_commit(folder=REPO_DIR):
  """Short commit of `folder`'s checkout, `+dirty` if tracked files changed."""
  try:
    out = subprocess.run(['git', '-C', folder, 'rev-parse', '--short', 'HEAD'],
                         capture_output=True, text=True, timeout=10)
    dirty = subprocess.run(['git', '-C', folder, 'status', '--porcelain',
                            '--untracked-files=no'],
                           capture_output=True, text=True, timeout=10)
    return out.stdout.strip() + ('+dirty' if dirty.stdout.strip() else '')
  except Exception:  # pylint: disable=broad-except
    return None


def peak_rss_mb():
  """Peak resident memory of this process, in MiB.

  `VmHWM` from /proc/self/status: unlike `getrusage(RUSAGE_SELF).ru_maxrss`,
  which Linux carries over from the parent across fork and exec (a child of a
  big benchmark process would report the parent's peak), it is the peak of
  this process's own memory since it started.
  """
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith('VmHWM:'):
          return int(line.split()[1]) / 1024.
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.
