"""What the command-line tools share: one-line errors and their options."""
import argparse
import contextlib
import os.path as osp
import sys
from typing import Iterator, Sequence, Tuple, Type

# What a bad config, command-line option or input file raises while a tool
# sets up (MMEngine's registry raises KeyError for an unknown type).
USAGE_ERRORS: Tuple[Type[BaseException], ...] = (
    ValueError, TypeError, KeyError, OSError, SyntaxError)


def add_error_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--allow-nonfinite`` and ``--debug``."""
    parser.add_argument(
        '--allow-nonfinite',
        action='store_true',
        help='use a checkpoint whose weights hold NaN or inf (with a '
        'warning) instead of refusing it')
    parser.add_argument(
        '--debug',
        action='store_true',
        help='show the traceback of an error instead of one error: line')


@contextlib.contextmanager
def one_line_errors(debug: bool,
                    errors: Tuple[Type[BaseException], ...] = USAGE_ERRORS
                    ) -> Iterator[None]:
    """Turn ``errors`` raised in the block into one ``error:`` line on
    stderr and exit status 1; other exceptions keep their traceback.

    Args:
        debug (bool): Re-raise instead, with the traceback (``--debug``).
        errors (tuple): The exception classes whose message is all a user
            needs. Defaults to :data:`USAGE_ERRORS`.
    """
    try:
        yield
    except errors as e:
        if debug:
            raise
        # str(KeyError) is the repr of its message.
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print('error: ' + ' '.join(str(message).split()), file=sys.stderr)
        raise SystemExit(1) from None


def refuse_existing(parser: argparse.ArgumentParser, paths: Sequence[str],
                    force: bool, instead: str, what: str = 'it') -> None:
    """Stop with a usage error if one of a tool's outputs exists and
    ``--force`` is not given; called before the tool's work, not after.

    Args:
        parser (ArgumentParser): The tool's parser (exit status 2).
        paths (Sequence[str]): The outputs the tool would write.
        force (bool): ``--force`` was given.
        instead (str): The other way out, e.g. ``'another --out'``.
        what (str): What ``--force`` replaces. Defaults to ``'it'``.
    """
    existing = [p for p in paths if osp.exists(p)]
    if existing and not force:
        parser.error(f'{", ".join(existing)} exists: pass --force to '
                     f'replace {what}, or {instead}')
