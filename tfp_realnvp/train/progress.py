"""Progress output of a training loop that suits where it goes.

On a terminal, Keras's progress bar (`keras.utils.Progbar`, redrawn in place). Anywhere
else (a log file, `nohup`, CI), where a redrawn bar becomes one endless line of escape
sequences: one plain line every `every_n_steps` steps and one per epoch's end, without
ANSI escapes or carriage returns.

```python
progress = make_progress('auto', every_n_steps=50)
progress.start_epoch(epoch=1, epochs=3, steps_done=0, steps_per_epoch=100)
progress.update(step_in_epoch=1, values={'bits/dim': 5.1, 'images/s': 800.})
progress.end_epoch({'train_bits_per_dim': 4.9})
```
"""

import sys

import keras

__all__ = ['MODES', 'ProgressBar', 'ProgressLines', 'Silent', 'make_progress']

MODES = ('auto', 'bar', 'lines', 'none')


def _format(values):
  return ', '.join(f'{name} {value:.4g}' if isinstance(value, float) else f'{name} {value}'
                   for name, value in values.items())


def _epoch_summary(logs):
  parts = []
  for key, unit in (('train_bits_per_dim', 'train {:.4g} bits/dim'),
                    ('validation_bits_per_dim', 'validation {:.4g} bits/dim'),
                    ('images_per_second', '{:.1f} images/s'), ('seconds', '{:.0f} s')):
    if logs.get(key) is not None:
      parts.append(unit.format(logs[key]))
  return ', '.join(parts)


class Silent:
  """No output."""

  def start_epoch(self, epoch, epochs, steps_done, steps_per_epoch):
    pass

  def update(self, step_in_epoch, values):
    pass

  def end_epoch(self, logs):
    pass


class ProgressBar(Silent):
  """Keras's progress bar, one per epoch (for terminals)."""

  def __init__(self, stream=None):
    self.stream = stream
    self._bar = None
    self._steps_per_epoch = None

  def _write(self, text):
    stream = self.stream or sys.stdout
    stream.write(text + '\n')
    stream.flush()

  def start_epoch(self, epoch, epochs, steps_done, steps_per_epoch):
    self._write(f'Epoch {epoch}/{epochs}')
    self._steps_per_epoch = steps_per_epoch
    self._bar = keras.utils.Progbar(steps_per_epoch,
                                    stateful_metrics=['bits/dim', 'images/s'])
    if steps_done:
      self._bar.update(steps_done)

  def update(self, step_in_epoch, values):
    self._bar.update(step_in_epoch, values=list(values.items()))

  def end_epoch(self, logs):
    self._write(_epoch_summary(logs))


class ProgressLines(Silent):
  """One plain line every `every_n_steps` steps and one per epoch (for log files)."""

  def __init__(self, every_n_steps=50, stream=None):
    if every_n_steps < 1:
      raise ValueError(f'every_n_steps must be >= 1, got {every_n_steps}.')
    self.every_n_steps = int(every_n_steps)
    self.stream = stream
    self._epoch = self._epochs = self._steps_per_epoch = None

  def _write(self, text):
    stream = self.stream or sys.stdout
    stream.write(text + '\n')
    stream.flush()

  def start_epoch(self, epoch, epochs, steps_done, steps_per_epoch):
    self._epoch, self._epochs, self._steps_per_epoch = epoch, epochs, steps_per_epoch

  def update(self, step_in_epoch, values):
    if step_in_epoch % self.every_n_steps == 0 and step_in_epoch < self._steps_per_epoch:
      self._write(f'epoch {self._epoch}/{self._epochs}, step {step_in_epoch}/'
                  f'{self._steps_per_epoch}: {_format(values)}')

  def end_epoch(self, logs):
    self._write(f'epoch {self._epoch}/{self._epochs} done: {_epoch_summary(logs)}')


def make_progress(mode='auto', every_n_steps=50, stream=None):
  """The progress output for `mode`.

  Args:
    mode: 'bar' (Keras's progress bar), 'lines' (plain lines), 'none', or 'auto': the bar
      when `stream` (default `sys.stdout`) is a terminal, lines otherwise.
    every_n_steps: the interval of the plain lines.
    stream: where to write (default: `sys.stdout` at each write). Keras's bar always
      writes to `sys.stdout`.
  """
  if mode not in MODES:
    raise ValueError(f'progress mode must be one of {MODES}, got {mode!r}.')
  if mode == 'auto':
    target = stream or sys.stdout
    mode = 'bar' if getattr(target, 'isatty', lambda: False)() else 'lines'
  if mode == 'bar':
    return ProgressBar(stream)
  if mode == 'lines':
    return ProgressLines(every_n_steps, stream)
  return Silent()
