"""Usage errors are usage errors: exit 2 and click's own message, for every kind, whatever
Typer the lock installs (Typer >= 0.20 raises its own exception classes, not click's)."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.unit

# (arguments, what the message must say): one of each kind click knows
KINDS = [
    (["report", "overdue"], "No such command 'overdue'. Did you mean 'overdue-monthly'?"),
    (["notify", "pln"], "No such command 'pln'. Did you mean 'plan'?"),
    (["reprot"], "No such command 'reprot'"),
    (["report", "summary", "--as-off", "2024-01-01"], "No such option: --as-off"),
    (["report", "summary", "--format", "xml"], "Invalid value for '--format'"),
    (["report", "summary", "--as-of", "yesterday"], "Invalid value for '--as-of'"),
    (["generate", "--clients", "many", "--out", "x"], "Invalid value for '--clients'"),
    (["split"], "Missing argument"),
    (["report", "summary", "--as-of"], "Option '--as-of' requires an argument"),
    (["report", "provisions", "--by", "region"], "Invalid value for '--by'"),  # a report's own options (registry.Param)
    (["report", "forecast", "--months", "0"], "Invalid value for '--months'"),
]


@pytest.mark.parametrize("args, says", KINDS, ids=[" ".join(a) for a, _ in KINDS])
def test_a_mistyped_command_is_a_usage_error(args, says, tmp_path):
    proc = run_cli("--home", tmp_path / "home", *args)  # the traceback and internal-error guard applies
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr
    assert "Error: " in proc.stderr
    if "Usage:" in proc.stderr:  # click prints the usage line where it knows the command
        assert "Usage: loanwatch" in proc.stderr and "--help" in proc.stderr
    assert "bug in loanwatch" not in proc.stderr and proc.stdout == ""


def test_an_unforeseen_error_is_still_an_internal_error(monkeypatch, tmp_path):
    """The guard lets usage errors through and nothing else: an exception nobody foresaw is one
    line that asks for a bug report, exit 1, not a traceback."""
    from typer.testing import CliRunner

    import loanwatch.cli as cli_module

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(cli_module, "load_settings", broken)
    result = CliRunner().invoke(cli_module.app, ["--home", str(tmp_path), "init"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "internal error: ZeroDivisionError: boom" in result.stderr and "Traceback" not in result.stderr


def test_help_texts_cite_only_files_in_the_repository():
    """`report --help` once cited METRICS.md, which a clone does not have: every file a help text
    names is in the repository."""
    import re
    from pathlib import Path

    import typer

    from loanwatch.cli import app

    root = Path(__file__).resolve().parents[2]
    seen, stack = [], [typer.main.get_command(app)]
    while stack:
        command = stack.pop()
        seen.append(command.help or "")
        seen.extend(getattr(p, "help", None) or "" for p in command.params)
        stack.extend(getattr(command, "commands", {}).values())
    cited = {m for text in seen for m in re.findall(r"[\w./-]+\.md\b", text)}
    assert cited, "no help text names a document"
    assert sorted(c for c in cited if not (root / c).is_file()) == []
