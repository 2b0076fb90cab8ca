"""Imports a script of `examples/` as a module, for the example tests."""

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def load_example(name):
  """The module of `examples/<name>.py` (its `main` is not run)."""
  spec = importlib.util.spec_from_file_location(f'example_{name}',
                                                ROOT / 'examples' / f'{name}.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
