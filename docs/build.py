"""Builds the API reference of tfp_realnvp from its docstrings with pdoc, and checks it.

    pip install -e ".[docs]" && python docs/build.py          # writes build/docs/index.html

Every public module of the package gets a page (Google-style `Args:`/`Returns:`/`Raises:`
sections are rendered as such). The build fails, exit status 1, when

- a module cannot be imported or pdoc warns while rendering it;
- a docstring, or the README, names an object of the package,
  `tfp_realnvp.<module>[.<name>...]` (in text or in a code example), that does not exist.

The pages are static HTML with no external resources, so they work offline.
"""

import argparse
import importlib
import os
import pathlib
import pkgutil
import re
import sys
import warnings

PACKAGE = 'tfp_realnvp'
_REFERENCE = re.compile(r'\b' + PACKAGE + r'(?:\.[A-Za-z_]\w*)+')


def public_modules(package_name=PACKAGE):
  """The names of the package and of all its modules whose names do not start with `_`."""
  package = importlib.import_module(package_name)
  names = [package_name]
  for info in pkgutil.walk_packages(package.__path__, prefix=package_name + '.'):
    if not any(part.startswith('_') for part in info.name.split('.')):
      names.append(info.name)
  return sorted(names)


def resolves(reference):
  """Whether a dotted name `tfp_realnvp.a.b.c` is an importable module or an attribute."""
  parts = reference.split('.')
  for split in range(len(parts), 0, -1):
    try:
      target = importlib.import_module('.'.join(parts[:split]))
    except ImportError:
      continue
    for attribute in parts[split:]:
      if not hasattr(target, attribute):
        return False
      target = getattr(target, attribute)
    return True
  return False


def docstrings(doc):
  """`(qualified name, docstring)` of a pdoc object and of every member below it."""
  yield doc.fullname, doc.docstring or ''
  for member in getattr(doc, 'own_members', ()):
    yield from docstrings(member)


def broken_references(texts):
  """`(where, reference)` for each `tfp_realnvp.<...>` name in the texts that does not exist.

  Args:
    texts: iterable of `(where, text)` pairs, e.g. from `docstrings`.
  """
  broken = []
  for where, text in texts:
    for reference in sorted(set(_REFERENCE.findall(text))):
      reference = reference.removesuffix('.py')   # a file name, `tfp_realnvp.viz.py`
      if not resolves(reference):
        broken.append((where, reference))
  return broken


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--output-dir', default='build/docs',
                      help='where the HTML pages go (default: build/docs)')
  args = parser.parse_args(argv)
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
  # pdoc blocks subprocesses while it imports modules; TensorFlow's platform checks run some.
  os.environ.setdefault('PDOC_ALLOW_EXEC', '1')
  import pdoc  # pylint: disable=g-import-not-at-top
  import pdoc.doc  # pylint: disable=g-import-not-at-top
  import pdoc.extract  # pylint: disable=g-import-not-at-top
  import pdoc.render  # pylint: disable=g-import-not-at-top

  names = public_modules()
  problems = []
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    # pdoc walks the submodules a package exports in `__all__`; name the others too.
    specs, covered = [], set()
    for name in names:
      if name not in covered:
        specs.append(name)
        covered.update(pdoc.extract.walk_specs([name]))
    pdoc.render.configure(docformat='google', show_source=True)
    pdoc.pdoc(*specs, output_directory=pathlib.Path(args.output_dir))
    texts = [pair for name in names
             for pair in docstrings(pdoc.doc.Module(importlib.import_module(name)))]
  readme = pathlib.Path(__file__).resolve().parents[1] / 'README.md'
  if readme.is_file():
    texts.append(('README.md', readme.read_text()))
  for warning in caught:
    # Deprecations come from the dependencies (TFP imports distutils); pdoc's own
    # complaints (a module that fails to import, a name in __all__ that does not exist) are
    # UserWarnings and RuntimeWarnings.
    if not issubclass(warning.category, (DeprecationWarning, PendingDeprecationWarning,
                                         FutureWarning)):
      problems.append(f'{warning.category.__name__}: {warning.message}')
  problems += [f'{where}: the docstring names {reference}, which does not exist'
               for where, reference in broken_references(texts)]
  for problem in problems:
    print(f'docs: {problem}', file=sys.stderr)
  index = pathlib.Path(args.output_dir) / 'index.html'
  print(f'API reference of {len(names)} modules: {index}'
        + (f'; {len(problems)} problem(s)' if problems else ''))
  return 1 if problems else 0


if __name__ == '__main__':
  sys.exit(main())
