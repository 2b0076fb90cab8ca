"""Pieces shared by the command-line programs: flag types, errors, exit codes, logging.

Exit codes: 0 success; 1 a run that failed on its own terms (diverged, unhealthy, an
export that did not pass its check); 2 a usage error: a bad flag, unreadable data, a run
folder in use or in the way. Expected errors print one line, `<prog>: error: <what>`,
naming the flag or file at fault; `--debug` shows the traceback as well.
"""

import argparse
import logging
import math
import os
import sys
import traceback

__all__ = [
    'EXIT_FAILED', 'EXIT_OK', 'EXIT_USAGE', 'CLIError', 'add_common_flags',
    'add_log_file', 'close_logging', 'count', 'finite_float', 'non_negative_float',
    'positive_float', 'positive_int', 'run_main', 'setup_logging',
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CLIError(Exception):
  """An expected error: a one-line message and an exit code, no traceback."""

  def __init__(self, message, exit_code=EXIT_USAGE):
    super().__init__(message)
    self.exit_code = exit_code


def _number(text, kind):
  try:
    return kind(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f'{text!r} is not a valid {kind.__name__}') from None


def positive_int(text):
  """An int >= 1."""
  value = _number(text, int)
  if value < 1:
    raise argparse.ArgumentTypeError(f'must be a positive integer (>= 1), got {value}')
  return value


def count(text):
  """An int >= 0."""
  value = _number(text, int)
  if value < 0:
    raise argparse.ArgumentTypeError(f'must be >= 0, got {value}')
  return value


def finite_float(text):
  """A finite float."""
  value = _number(text, float)
  if not math.isfinite(value):
    raise argparse.ArgumentTypeError(f'must be a finite number, got {text}')
  return value


def positive_float(text):
  """A finite float > 0."""
  value = finite_float(text)
  if value <= 0:
    raise argparse.ArgumentTypeError(f'must be > 0, got {value:g}')
  return value


def non_negative_float(text):
  """A finite float >= 0."""
  value = finite_float(text)
  if value < 0:
    raise argparse.ArgumentTypeError(f'must be >= 0, got {value:g}')
  return value


def probability(text):
  """A float in [0, 1]."""
  value = finite_float(text)
  if not 0. <= value <= 1.:
    raise argparse.ArgumentTypeError(f'must be a probability in [0, 1], got {value:g}')
  return value


def dropout_rate(text):
  """A float in [0, 1)."""
  value = finite_float(text)
  if not 0. <= value < 1.:
    raise argparse.ArgumentTypeError(f'must be a dropout rate in [0, 1), got {value:g}')
  return value


def add_common_flags(parser, output_dir_default=None, output_dir_help=None):
  """`--output-dir` and `--debug`, spelled the same in every program."""
  parser.add_argument('--output-dir', default=output_dir_default,
                      help=output_dir_help or 'where the outputs go')
  parser.add_argument('--debug', action='store_true',
                      help='show the traceback of an error')


def setup_logging(log_file=None):
  """The `tfp_realnvp` logger on stdout (plain messages) and optionally a file."""
  logger = logging.getLogger('tfp_realnvp')
  logger.setLevel(logging.INFO)
  logger.propagate = False
  for handler in list(logger.handlers):
    logger.removeHandler(handler)
    handler.close()
  stream = logging.StreamHandler(sys.stdout)
  stream.setFormatter(logging.Formatter('%(message)s'))
  logger.addHandler(stream)
  if log_file is not None:
    add_log_file(log_file)
  return logger


def add_log_file(path):
  """Also logs to `path` (with times)."""
  logger = logging.getLogger('tfp_realnvp')
  handler = logging.FileHandler(path)
  handler.setFormatter(logging.Formatter('%(asctime)s %(message)s'))
  logger.addHandler(handler)
  return handler


def close_logging():
  """Closes the `tfp_realnvp` logger's handlers (files written by `setup_logging`)."""
  logger = logging.getLogger('tfp_realnvp')
  for handler in list(logger.handlers):
    logger.removeHandler(handler)
    handler.close()


def run_main(program, parser, body, argv=None, expected=()):
  """Parses `argv` and runs `body(args) -> int`, turning expected errors into exit codes.

  `CLIError` and the exception types in `expected` become one line on stderr
  (`<program>: error: ...`) and their exit code (2 unless the `CLIError` says
  otherwise); with `--debug` the traceback is printed too. Argument errors are
  argparse's (exit code 2).

  Returns:
    The exit code.
  """
  try:
    args = parser.parse_args(argv)
  except SystemExit as exit_:
    return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  try:
    return body(args)
  except CLIError as err:
    return _report(program, err, err.exit_code, args.debug)
  except expected as err:  # pylint: disable=catching-non-exception
    return _report(program, err, EXIT_USAGE, args.debug)
  finally:
    close_logging()


def _report(program, err, code, debug):
  if debug:
    traceback.print_exc()
  message = ' '.join(str(err).split()) or type(err).__name__
  print(f'{program}: error: {message}', file=sys.stderr, flush=True)
  return code
