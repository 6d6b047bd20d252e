"""Running out of memory while a portfolio is generated: told as such, with what to do.

`loanwatch generate` holds the whole portfolio in memory (numpy columns, then DuckDB writes
them), so a large --clients, or a small memory limit (a container's, `ulimit -v`), runs out.
That surfaces in several shapes: numpy's or Arrow's MemoryError, DuckDB's out-of-memory error,
a shared library that cannot be mapped while it is imported (ImportError "failed to map
segment"), a thread that cannot get a stack. Each is the machine's limit, not a bug.
"""

from __future__ import annotations

import errno
import re

_TEXT = re.compile(
    r"out of memory|cannot allocate memory|could not allocate|failed to allocate|unable to allocate|"
    r"failed to map segment|std::bad_alloc|malloc of size \d+ failed|can't start new thread|"
    r"memory allocation .*failed",
    re.IGNORECASE,
)


def out_of_memory(exc: BaseException) -> bool:
    """Did this error come from running out of memory (or address space)?"""
    seen = 0
    while exc is not None and seen < 5:  # an ImportError's cause may hold the loader's message
        if isinstance(exc, MemoryError):
            return True
        if isinstance(exc, OSError) and exc.errno == errno.ENOMEM:
            return True
        try:
            import duckdb

            if isinstance(exc, duckdb.OutOfMemoryException):
                return True
        except ImportError:  # pragma: no cover - duckdb is a dependency; it may not map under a limit
            pass
        if _TEXT.search(str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def advice(clients: int, out: object, writing: bool) -> str:
    """The one line for `loanwatch generate` that ran out of memory."""
    line = (f"generate: ran out of memory making a portfolio of {clients:,} clients; generate fewer "
            "(a smaller --clients: memory grows with it) or run it with more memory (a larger "
            "container or ulimit -v)")
    if writing:
        line += f"; the files it was writing in {out} are incomplete: remove them"
    return line
