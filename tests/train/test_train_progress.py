"""Progress output: Keras's bar on a terminal, plain lines anywhere else."""

import io
import re

import pytest

from tfp_realnvp.train import progress


class _Terminal(io.StringIO):

  def isatty(self):
    return True


def _run(printer, steps=10):
  printer.start_epoch(epoch=1, epochs=2, steps_done=0, steps_per_epoch=steps)
  for step in range(1, steps + 1):
    printer.update(step, {'bits/dim': 5. - step / 10, 'images/s': 800.})
  printer.end_epoch({'train_bits_per_dim': 4.25, 'validation_bits_per_dim': 4.5,
                     'images_per_second': 812.5, 'seconds': 12.})


def test_lines_when_not_on_a_terminal():
  stream = io.StringIO()
  printer = progress.make_progress('auto', every_n_steps=4, stream=stream)
  assert isinstance(printer, progress.ProgressLines)
  _run(printer)
  text = stream.getvalue()
  assert not re.search(r'[\x1b\r\b]', text)          # no escapes, no redraws
  lines = text.splitlines()
  assert lines == [
      'epoch 1/2, step 4/10: bits/dim 4.6, images/s 800',
      'epoch 1/2, step 8/10: bits/dim 4.2, images/s 800',
      'epoch 1/2 done: train 4.25 bits/dim, validation 4.5 bits/dim, 812.5 images/s, '
      '12 s']


def test_keras_progress_bar_on_a_terminal(monkeypatch):
  terminal = _Terminal()
  monkeypatch.setattr('sys.stdout', terminal)
  printer = progress.make_progress('auto', every_n_steps=4)
  assert isinstance(printer, progress.ProgressBar)
  _run(printer)
  text = terminal.getvalue()
  assert text.startswith('Epoch 1/2\n')
  assert '\r' in text or '\b' in text                  # Keras redraws in place
  assert '10/10' in text and 'bits/dim: 4.0000' in text
  assert text.rstrip().endswith('812.5 images/s, 12 s')


def test_silent_and_bad_modes():
  stream = io.StringIO()
  _run(progress.make_progress('none', stream=stream))
  assert stream.getvalue() == ''
  with pytest.raises(ValueError, match='progress mode'):
    progress.make_progress('fancy')
  with pytest.raises(ValueError, match='every_n_steps'):
    progress.make_progress('lines', every_n_steps=0)
