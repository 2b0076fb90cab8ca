"""JSON results in `benchmarks/results/`."""

import json
import os

from benchkit.environment import BENCH_DIR

RESULTS_DIR = os.path.join(BENCH_DIR, 'results')


def write_json(name, payload):
  """Writes `payload` to `results/<name>`; returns the path."""
  os.makedirs(RESULTS_DIR, exist_ok=True)
  path = os.path.join(RESULTS_DIR, name)
  with open(path, 'w') as f:
    json.dump(payload, f, indent=1, sort_keys=False)
  return path


def read_json(name):
  """The payload of `results/<name>`, or None when there is no such file."""
  path = os.path.join(RESULTS_DIR, name)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def write_text(name, text):
  """Writes `text` to `results/<name>`; returns the path."""
  os.makedirs(RESULTS_DIR, exist_ok=True)
  path = os.path.join(RESULTS_DIR, name)
  with open(path, 'w') as f:
    f.write(text)
  return path
