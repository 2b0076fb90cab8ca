"""The reference check of the API docs build (`docs/build.py`)."""

import importlib.util
import pathlib

import pytest

_BUILD = pathlib.Path(__file__).resolve().parents[2] / 'docs' / 'build.py'


@pytest.fixture(scope='module')
def build():
  spec = importlib.util.spec_from_file_location('docs_build', _BUILD)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_references_to_existing_objects_resolve(build):
  for name in ('tfp_realnvp', 'tfp_realnvp.data', 'tfp_realnvp.data.ImageData',
               'tfp_realnvp.data.image_folder.read_image_folder', 'tfp_realnvp.viz.class_grid',
               'tfp_realnvp.nets.ResidualBlock.get_config'):
    assert build.resolves(name), name


def test_broken_references_are_found(build):
  texts = [('a', 'Draw with `tfp_realnvp.viz.sample_latnts` or tfp_realnvp.viz.sample_grid.'),
           ('b', '```python\nfrom tfp_realnvp.dat import load_images\n```'),
           ('c', 'The file tfp_realnvp.viz.py and `tfp_realnvp.data.ImageData.image_shape`.')]
  assert build.broken_references(texts) == [('a', 'tfp_realnvp.viz.sample_latnts'),
                                            ('b', 'tfp_realnvp.dat')]


def test_public_modules_skip_private_ones(build):
  names = build.public_modules()
  assert 'tfp_realnvp.data.sources' in names and 'tfp_realnvp.viz.latent' in names
  assert not [name for name in names if '._' in name]
