"""What a person sees when something goes wrong: one line naming the thing, the cause and what to
do, with the documented exit code (1 error, 2 usage). Never a Python traceback.

Code that knows what went wrong raises ``Problem`` (or ``UsageProblem``) with that line. Errors
from the world around loanwatch (a full disk, a read-only folder, a damaged database file) are
told by ``explain`` wherever they surface, so that no command has to guess them on its own.
``LOANWATCH_DEBUG=1`` adds the traceback, for a bug report.
"""

from __future__ import annotations

import ast
import errno
import re

EXIT_ERROR, EXIT_USAGE, EXIT_NO_DATA = 1, 2, 6


class Problem(Exception):
    """An error with a message for a person; exit code 1."""

    code = EXIT_ERROR


class UsageProblem(Problem):
    """A wrong option, argument or setting; exit code 2."""

    code = EXIT_USAGE


class NoData(Problem):
    """Nothing to report yet: nothing published, or no data of the kind a figure needs (no loans,
    no calls, no ledger); exit code 6, with what to load."""

    code = EXIT_NO_DATA


_ERRNO_ADVICE = {
    errno.ENOSPC: ("no space left on the device", "free some space, then run the same command again: "
                   "what was being written is rolled back"),
    errno.EDQUOT: ("the disk quota is used up", "free some space or raise the quota, then run the command again"),
    errno.EROFS: ("the file system is read-only", "choose a writable folder with --home (or LOANWATCH_HOME)"),
    errno.EACCES: ("permission denied", "make it writable for this user, or choose another folder with --home"),
    errno.EPERM: ("operation not permitted", "make it writable for this user, or choose another folder with --home"),
    errno.EIO: ("an input/output error from the device", "check the disk, then run the command again"),
    errno.ENOTDIR: ("a part of the path is not a folder", "check the path"),
    errno.EISDIR: ("it is a folder", "give a file"),
    errno.ENAMETOOLONG: ("the name is too long for the file system", "use a shorter name"),
    errno.ENOMEM: ("the machine ran out of memory", "free memory, or give loanwatch more ([warehouse] "
                   "memory_limit), then run the same command again: what was being written is rolled back"),
}

# Engine messages about the world, by their text (DuckDB reports OS errors inside its own).
_TEXT_ADVICE = [
    (r"no space left on device", errno.ENOSPC),
    (r"disk quota exceeded", errno.EDQUOT),
    (r"read-only file system", errno.EROFS),
    (r"permission denied", errno.EACCES),
    (r"out of memory|cannot allocate memory|could not allocate|failed to allocate", errno.ENOMEM),
]

_DAMAGED = re.compile(
    r"not a valid duckdb database file|is not a duckdb database|database file .* is corrupt|"
    r"could not read enough bytes|corrupt|checksum|invalid magic|file is too small|"
    r"cannot open file .* (wal|database)|failed to read database header|truncated",
    re.IGNORECASE,
)


class MachineFault(Problem):
    """A file could not be loaded for a fault of the machine, not of its content (memory, disk,
    temp space, an interrupted read): nothing of it was recorded, so the next run loads it.
    ``memory``: the machine ran out of memory on this file; the other files may still load."""

    def __init__(self, message: str, memory: bool = False):
        super().__init__(message)
        self.memory = memory


def first_line(exc: BaseException, width: int | None = None) -> str:
    """The first line of an error's text (a JVM's or a driver's message runs on into its stack),
    or the error's type where it has no text; at most ``width`` characters."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()
    return text[:width] if width else text


def engine_line(text: str) -> str:
    """The line of dbt's report of a failed node that says what went wrong. dbt's report is a
    header (``Database Error in model x (path)``), the engine's message, then its own trailer
    (``compiled code at target/run/...``, ``> in macro ...``); the engine's message starts with
    what went wrong (PostgreSQL and DuckDB go on with ``LINE 3: ...`` and a caret), except
    Spark's through Py4J (``An error occurred while calling o47.sql.``, then ``: java.lang.
    RuntimeException: Max iterations ...`` and the JVM's stack): there it is the exception's own
    message, or for a class that could not load, the error's name and the class. Never a stack
    frame, dbt's trailer or a blank line; '' when nothing is left. A Thrift server's reply that
    dbt passes on as it is (``TCloseSessionResp(status=TStatus(..., infoMessages=[<the JVM's
    stack>], ..., errorMessage='...'))``) is told by its errorMessage."""
    text = _thrift_error_message(text) or text
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not re.match(r"\w+ Error in \w+ |compiled code at |> |at |\.\.\. ", line)]
    for line in lines:
        if match := re.match(r":?\s*(?:[A-Za-z_$][\w$]*\.)+([\w$]*(?:Exception|Error)): (.+)", line):
            error, message = match.groups()
            return f"{error}: {message}" if re.fullmatch(r"[\w$/.]+", message) and "/" in message else message
    return lines[0] if lines else ""


# a Thrift reply's repr: ``TExecuteStatementResp(status=TStatus(statusCode=3, ..., errorMessage='...'))``
_THRIFT_REPLY = re.compile(r"T\w+Resp\(status=TStatus\(")
_THRIFT_ERROR = re.compile(r"""errorMessage=((['"])(?:\\.|(?!\2).)*\2)\)""", re.DOTALL)


def _thrift_error_message(text: str) -> str | None:
    """The errorMessage of a Thrift reply's repr in ``text`` (Python's quoting undone: its line
    breaks are lines again); None when there is none."""
    reply = _THRIFT_REPLY.search(text)
    error = _THRIFT_ERROR.search(text, reply.end()) if reply else None
    if not error:
        return None
    try:
        return str(ast.literal_eval(error.group(1))) or None
    except (ValueError, SyntaxError):
        return None


def environmental(exc: BaseException) -> bool:
    """Is this the machine's fault (a full disk or temp folder, memory, a read-only or unwritable
    folder, a device error, an interrupted read), not the input's? Such an error is never blamed
    on a file being read: the file is not quarantined, nor recorded as seen."""
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO,
                                                  errno.ENOMEM, errno.EINTR):
        return True
    lower = str(exc).lower()
    return any(re.search(pattern, lower) for pattern, _ in _TEXT_ADVICE) or "input/output error" in lower


def _file_of(text: str) -> str | None:
    match = re.search(r'"([^"]+)"', text)
    return match.group(1) if match else None


def explain(exc: BaseException) -> tuple[str, int] | None:
    """The line and exit code for an error from the world around loanwatch, or None when the
    error is not one of those (a bug)."""
    if isinstance(exc, Problem):
        return str(exc), exc.code
    if isinstance(exc, MemoryError):
        cause, advice = _ERRNO_ADVICE[errno.ENOMEM]
        return f"loanwatch: {cause}; {advice}", EXIT_ERROR
    if isinstance(exc, OSError) and exc.errno in _ERRNO_ADVICE:
        cause, advice = _ERRNO_ADVICE[exc.errno]
        where = exc.filename or "the warehouse folder"
        return f"{where}: {cause}; {advice}", EXIT_ERROR
    text = str(exc)
    lower = text.lower()
    for pattern, number in _TEXT_ADVICE:
        if re.search(pattern, lower):
            cause, advice = _ERRNO_ADVICE[number]
            where = "loanwatch" if number == errno.ENOMEM else _file_of(text) or "the warehouse folder"
            return f"{where}: {cause}; {advice}", EXIT_ERROR
    if _is_engine_error(exc) and _DAMAGED.search(text):
        return damaged(_file_of(text) or "a database file", text), EXIT_ERROR
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename or 'a file'}: {exc.strerror.lower()}", EXIT_ERROR
    return None


def is_damage(text: str) -> bool:
    """Does an engine's message say a database file is damaged or cut short?"""
    return bool(_DAMAGED.search(text or ""))


def damaged(path, detail: str) -> str:
    """The line for a database file that cannot be read: what to do depends on which it is."""
    head = f"{path} is damaged or cut short ({detail.splitlines()[0][:160]}): "
    if str(path).endswith(("serving.duckdb", "published.duckdb")):
        return head + "run `loanwatch build` to publish it again from the warehouse"
    return head + ("restore warehouse.duckdb from a copy, or ingest the raw files again into a new "
                   "home (--home); the serving snapshot still answers reports")


def _is_engine_error(exc: BaseException) -> bool:
    try:
        import duckdb
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, duckdb.Error)
