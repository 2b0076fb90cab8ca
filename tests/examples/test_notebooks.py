"""The example notebooks: stored without outputs, in sync with their generator, and they run.

Each notebook is executed by a fresh Jupyter kernel started from this very
interpreter (a kernel spec written to a temporary folder, so nothing installed
by hand is needed) at small settings (`TFP_REALNVP_NOTEBOOK_QUICK=1`), with its
figures saved to a temporary folder (`TFP_REALNVP_NOTEBOOK_OUT`).
"""

import importlib.util
import os
import pathlib
import sys

import pytest

nbformat = pytest.importorskip('nbformat')
nbclient = pytest.importorskip('nbclient')
jupyter_client = pytest.importorskip('jupyter_client')
ipykernel_kernelspec = pytest.importorskip('ipykernel.kernelspec')

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / 'examples' / 'notebooks'
KERNEL_NAME = 'tfp-realnvp-tests'
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
CELL_TIMEOUT = 300

# The figures each notebook must produce (saved by its `show` helper).
EXPECTED_FIGURES = {
    '01_quickstart_2d.ipynb': ['loss.png', 'toy_figure.png', 'latent.png',
                               'piecewise_linear.png'],
    '02_coupling_layer.ipynb': ['vector_jacobian.png', 'image_masks.png'],
    '03_image_flow.ipynb': ['data.png', 'samples.png', 'temperatures.png',
                            'interpolation.png', 'manifold.png'],
    '04_flow_prior.ipynb': ['latent_priors.png', 'samples_gaussian_prior.png',
                            'samples_flow_prior.png'],
    '05_class_conditional.ipynb': ['class_samples.png', 'confusion.png', 'ood_histograms.png',
                                   'ood_roc.png'],
}


def load_generator():
  spec = importlib.util.spec_from_file_location('make_notebooks',
                                                NOTEBOOK_DIR / 'make_notebooks.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_every_notebook_is_listed():
  on_disk = sorted(p.name for p in NOTEBOOK_DIR.glob('*.ipynb'))
  assert on_disk == sorted(EXPECTED_FIGURES)
  assert sorted(load_generator().NOTEBOOKS) == sorted(EXPECTED_FIGURES)


@pytest.mark.parametrize('name', sorted(EXPECTED_FIGURES))
def test_notebook_is_stripped_and_matches_generator(name):
  nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
  nbformat.validate(nb)
  for cell in nb.cells:
    if cell.cell_type == 'code':
      assert cell.outputs == [], f'{name}: outputs must be stripped'
      assert cell.execution_count is None, f'{name}: execution counts must be stripped'
  expected = load_generator().build(load_generator().NOTEBOOKS[name])
  assert [(c.cell_type, c.source) for c in nb.cells] == [
      (c.cell_type, c.source) for c in expected.cells], (
          f'{name} is out of date: run python examples/notebooks/make_notebooks.py')


@pytest.fixture(scope='module')
def kernel_spec_manager(tmp_path_factory):
  """A kernel spec for this interpreter, in a temporary folder."""
  kernels = tmp_path_factory.mktemp('kernels')
  ipykernel_kernelspec.write_kernel_spec(
      path=kernels / KERNEL_NAME,
      overrides={'argv': [sys.executable, '-m', 'ipykernel_launcher', '-f',
                          '{connection_file}'],
                 'display_name': 'tfp_realnvp tests'})
  manager = jupyter_client.kernelspec.KernelSpecManager(kernel_dirs=[str(kernels)])
  assert manager.get_kernel_spec(KERNEL_NAME).argv[0] == sys.executable
  return manager


@pytest.mark.parametrize('name', sorted(EXPECTED_FIGURES))
def test_notebook_runs_and_draws(name, kernel_spec_manager, tmp_path, monkeypatch):
  out = tmp_path / 'figures'
  monkeypatch.setenv('TFP_REALNVP_NOTEBOOK_QUICK', '1')
  monkeypatch.setenv('TFP_REALNVP_NOTEBOOK_OUT', str(out))
  monkeypatch.setenv('TF_CPP_MIN_LOG_LEVEL', '2')
  monkeypatch.setenv('KERAS_BACKEND', 'tensorflow')
  monkeypatch.setenv('PYTHONPATH', os.pathsep.join(
      [str(ROOT)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
  nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
  manager = jupyter_client.KernelManager(kernel_name=KERNEL_NAME,
                                         kernel_spec_manager=kernel_spec_manager)
  client = nbclient.NotebookClient(nb, km=manager, timeout=CELL_TIMEOUT,
                                   resources={'metadata': {'path': str(tmp_path)}})
  client.execute()  # raises CellExecutionError, with the traceback, if a cell fails

  errors = [o for c in nb.cells if c.cell_type == 'code' for o in c.outputs
            if o.output_type == 'error']
  assert not errors
  inline_pngs = [o for c in nb.cells if c.cell_type == 'code' for o in c.outputs
                 if 'image/png' in o.get('data', {})]
  assert len(inline_pngs) >= len(EXPECTED_FIGURES[name])
  for figure in EXPECTED_FIGURES[name]:
    assert (out / figure).read_bytes()[:8] == PNG_MAGIC, f'{name}: {figure}'
