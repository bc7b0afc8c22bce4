"""What every command line of the package does with an error: one line, the traceback on request.

A student who mistypes a path or hands over a damaged file gets ``error: <what is wrong and
what to do>`` on stderr and an exit status, never a page of traceback; ``--debug`` shows the
traceback. Used by ``python -m phys555_cl.train`` and ``python -m phys555_cl.study``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["run_command"]


def run_command(
    work: Callable[[], int],
    *,
    debug: bool,
    expected: tuple[type[Exception], ...],
    expected_status: int,
    interrupted: str | None = None,
) -> int:
    """``work()``'s exit status; an error is reported in one line and turned into a status.

    Args:
        work: the command's body; returns its exit status (0: success).
        debug: re-raise every error instead (the ``--debug`` option): full traceback.
        expected: errors whose message already says what is wrong and what to do (a missing
            file, a bad value); printed as ``error: <message>``, status ``expected_status``.
        expected_status: the exit status of an ``expected`` error.
        interrupted: printed on Ctrl-C, status 130; ``None`` lets Ctrl-C through.

    Any other error is printed as ``error: <type>: <first line>`` with a pointer to
    ``--debug``, status 1.
    """
    try:
        return work()
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        print(interrupted, file=sys.stderr)
        return 130
    except expected as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return expected_status
    except Exception as err:  # anything else: one line, the traceback only on request
        if debug:
            raise
        first = (str(err).strip().splitlines() or [""])[0][:300]
        print(f"error: {type(err).__name__}: {first} (run the same command with --debug for "
              f"the full traceback)", file=sys.stderr)
        return 1
