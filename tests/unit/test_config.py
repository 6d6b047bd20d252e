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


def test_provisions_settings_outside_their_values_are_one_line_naming_them(tmp_path, monkeypatch):
    """[provisions] (METRICS §9-§10): a word from its list, a number within its bounds; stage2_dpd at
    most stage3_dpd (equal is allowed: no stage 2). The line names the setting and where it came
    from, as for a value of the wrong type (exit 2: a ConfigError is a usage problem)."""
    from loanwatch.config import ConfigError

    monkeypatch.chdir(tmp_path)
    defaults = load_settings(tmp_path, environ={}).section("provisions")
    assert defaults == {"stage2_dpd": 30, "stage3_dpd": 90, "pd_window_months": 12, "pd_weight": "balance", "lgd": 1.0,
                        "lgd_min_loans": 30, "lgd_window_months": 12, "method": "ifrs9", "backtest_months": 6}
    wrong = {
        "METHOD": ("ifrs", 'is not "ifrs9" or "cecl"'),
        "PD_WEIGHT": ("amount", 'is not "balance" or "count"'),
        "STAGE2_DPD": ("91", "is not from 0 to [provisions] stage3_dpd (90)"),
        "STAGE3_DPD": ("29", "is not from [provisions] stage2_dpd (30) to 3650"),
        "PD_WINDOW_MONTHS": ("0", "is not from 1 to 600"),
        "BACKTEST_MONTHS": ("601", "is not from 1 to 600"),
        "LGD": ("1.01", "is not from 0 to 1"),
        "LGD_MIN_LOANS": ("0", "is not from 1 to 1000000000"),
        "LGD_WINDOW_MONTHS": ("100000", "is not from 0 to 600"),
    }
    for key, (raw, what) in wrong.items():
        with pytest.raises(ConfigError) as caught:
            load_settings(tmp_path, environ={f"LOANWATCH_PROVISIONS__{key}": raw})
        assert str(caught.value) == f"LOANWATCH_PROVISIONS__{key}={raw!r} {what}; correct it or unset it"
    assert load_settings(tmp_path, environ={"LOANWATCH_PROVISIONS__STAGE2_DPD": "90", "LOANWATCH_PROVISIONS__LGD": "0",
                                            "LOANWATCH_PROVISIONS__METHOD": "cecl"}).get("provisions", "stage2_dpd") == 90
    (tmp_path / "loanwatch.toml").write_text("[provisions]\nstage3_dpd = 20\nlgd = 0.45\n")
    with pytest.raises(ConfigError, match=r"^loanwatch.toml: \[provisions\] stage3_dpd = 20 is not from \[provisions\] "
                                          r"stage2_dpd \(30\) to 3650; correct it or remove the line$"):
        load_settings(tmp_path, environ={})
    assert load_settings(tmp_path, environ={"LOANWATCH_PROVISIONS__STAGE2_DPD": "10"}).get("provisions", "lgd") == 0.45
    with pytest.raises(ConfigError, match="^loanwatch.toml: \\[provisions\\] lgd = 'high' is not a number"):
        (tmp_path / "loanwatch.toml").write_text("[provisions]\nlgd = 'high'\n")
        load_settings(tmp_path, environ={})
