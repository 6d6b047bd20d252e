"""Config precedence: defaults < loanwatch.toml < environment; secrets only from the environment."""

from __future__ import annotations

import pytest

from loanwatch.config import load_settings


def test_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    assert load_settings(home, environ={}).get("smtp", "port") == 25
    (tmp_path / "loanwatch.toml").write_text("[smtp]\nport = 587\nhost = 'mail.example.com'\n[warehouse]\ntolerance = 0.5\n")
    s = load_settings(home, environ={})
    assert (s.get("smtp", "port"), s.get("smtp", "host"), s.get("warehouse", "tolerance")) == (587, "mail.example.com", 0.5)
    s = load_settings(home, environ={"LOANWATCH_SMTP__PORT": "2525", "LOANWATCH_SMTP__STARTTLS": "yes",
                                     "LOANWATCH_NOTIFY__OVERDUE_DAYS": "1,3"})
    assert s.get("smtp", "port") == 2525 and s.get("smtp", "starttls") is True
    assert s.get("smtp", "host") == "mail.example.com"
    assert s.get("notify", "overdue_days") == [1, 3]


def test_secrets_are_never_read_from_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loanwatch.toml").write_text("[smtp]\npassword = 'hunter2'\n")
    with pytest.warns(UserWarning, match="secret"):
        s = load_settings(tmp_path, environ={})
    assert s.get("smtp", "password") == ""
    with pytest.warns(UserWarning, match="secret"):
        s = load_settings(tmp_path, environ={"LOANWATCH_SMTP__PASSWORD": "from-env"})
    assert s.get("smtp", "password") == "from-env"


def test_home_resolution(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings(None, environ={}).home == tmp_path / "loanwatch_home"
    assert load_settings(None, environ={"LOANWATCH_HOME": str(tmp_path / "x")}).home == tmp_path / "x"
    assert load_settings(tmp_path / "y", environ={"LOANWATCH_HOME": str(tmp_path / "x")}).home == tmp_path / "y"


def test_help_texts_keep_words_in_brackets():
    """Help is plain text: a setting's name such as [notify] call_capacity is not read as markup
    and dropped (it printed "(default  call_capacity)")."""
    from tests.conftest import cli

    assert "(default [dashboard] port, 8501)" in " ".join(cli("dashboard", "--help").stdout.split())
    assert "(default [notify] call_capacity)" in " ".join(cli("notify", "plan", "--help").stdout.split())
