"""The schedule's settings: --at, --cron and [schedule] cron, checked before anything runs."""

from __future__ import annotations

import pytest

from loanwatch.config import ConfigError, load_settings
from loanwatch.operations.schedule import cron_expression, timezone


def test_at_is_a_daily_cron_and_the_default_comes_from_the_config(tmp_path):
    settings = load_settings(tmp_path, environ={})
    assert cron_expression(settings, at="06:30") == "30 6 * * *"
    assert cron_expression(settings, at="0:05") == "5 0 * * *"
    assert cron_expression(settings) == "0 * * * *"  # hourly by default: contact hours differ by zone
    env = load_settings(tmp_path, environ={"LOANWATCH_SCHEDULE__CRON": "15 2 * * 1-5"})
    assert cron_expression(env) == "15 2 * * 1-5"
    assert cron_expression(env, cron="*/10 * * * *") == "*/10 * * * *"


@pytest.mark.parametrize("at", ["24:00", "6", "06:61", "six thirty", "-1:00"])
def test_a_wrong_time_of_day_names_the_option(tmp_path, at):
    with pytest.raises(ConfigError, match="--at"):
        cron_expression(load_settings(tmp_path, environ={}), at=at)


def test_a_wrong_cron_or_time_zone_names_the_setting(tmp_path):
    with pytest.raises(ConfigError, match=r"\[schedule\] cron"):
        cron_expression(load_settings(tmp_path, environ={"LOANWATCH_SCHEDULE__CRON": "61 * * * *"}))
    with pytest.raises(ConfigError, match="--cron"):
        cron_expression(load_settings(tmp_path, environ={}), cron="every day")
    with pytest.raises(ConfigError, match="timezone"):
        timezone(load_settings(tmp_path, environ={"LOANWATCH_SCHEDULE__TIMEZONE": "Mars/Olympus"}))
    assert str(timezone(load_settings(tmp_path, environ={"LOANWATCH_SCHEDULE__TIMEZONE": "America/Mexico_City"}))) == "America/Mexico_City"
