"""The call centre (METRICS §7) by hand: connected calls, logins after calls, `report calls` by
period and campaign, agent, login channel or all.

Calls (UTC; connected from 30 s of talk, login window 48 h):
  K1 C1 2024-05-31 23:50 collect  agent a1  talk 45  -> connected; C1's logins: G1 06-01 08:00 app (first after)
  K2 C1 2024-06-01 09:00 collect  agent a1  talk 10  -> not connected (a login after it does not count)
  K3 C2 2024-06-01 10:00 collect  agent a2  talk  0  -> not connected
  K4 C2 2024-06-03 10:00 welcome  agent a2  no talk time, outcome promise_to_pay -> connected (right-party);
                                  C2's login G2 06-05 10:00 is exactly 48 h later: outside the window
  K5 C3 2024-06-03 11:00 (no campaign) a1 talk 300 -> connected; G3 06-03 12:00 whatsapp
  K6 C3 2024-06-03 18:00+05:00 = 13:00 UTC, collect, no agent, talk 30 -> connected (30 is enough); first login
                                  after 13:00 UTC: G4 06-04 09:00 web (G3 was before it)
By month and campaign:
  2024-05 collect:  1 call, 1 client, 1 connected, rate 1, avg talk 45.00, 1 login, rate 1
  2024-06 (none):   K5: 1, 1, 1, 1.000000, 300.00, 1, 1.000000
  2024-06 collect:  K2, K3, K6: 3 calls, 3 clients (C1, C2, C3), 1 connected (K6), 0.333333, 30.00, 1 login, 1.000000
  2024-06 welcome:  K4: 1, 1, 1, 1.000000, avg null (no talk time), 0 logins, 0.000000
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from loanwatch.reports.calls import CallFilter, calls_report
from loanwatch.serve import open_snapshot
from tests.conftest import build_home, cli

D = Decimal
CALLS = [
    {"call_id": "K1", "client_id": "C1", "campaign": "collect", "agent_id": "a1", "called_at": "2024-05-31T23:50:00Z", "talk_seconds": 45},
    {"call_id": "K2", "client_id": "C1", "campaign": "collect", "agent_id": "a1", "called_at": "2024-06-01T09:00:00Z", "talk_seconds": 10},
    {"call_id": "K3", "client_id": "C2", "campaign": "collect", "agent_id": "a2", "called_at": "2024-06-01T10:00:00Z", "talk_seconds": 0},
    {"call_id": "K4", "client_id": "C2", "campaign": "welcome", "agent_id": "a2", "called_at": "2024-06-03T10:00:00Z",
     "outcome": "promise_to_pay"},
    {"call_id": "K5", "client_id": "C3", "agent_id": "a1", "called_at": "2024-06-03T11:00:00Z", "talk_seconds": 300},
    {"call_id": "K6", "client_id": "C3", "campaign": "collect", "called_at": "2024-06-03T18:00:00+05:00", "talk_seconds": 30},
]
LOGINS = [
    {"login_id": "G1", "client_id": "C1", "logged_in_at": "2024-06-01T08:00:00Z", "channel": "app"},
    {"login_id": "G2", "client_id": "C2", "logged_in_at": "2024-06-05T10:00:00Z", "channel": "app"},
    {"login_id": "G3", "client_id": "C3", "logged_in_at": "2024-06-03T12:00:00Z", "channel": "whatsapp"},
    {"login_id": "G4", "client_id": "C3", "logged_in_at": "2024-06-04T09:00:00Z", "channel": "web"},
]


@pytest.fixture(scope="module")
def centre(tmp_path_factory):
    root = tmp_path_factory.mktemp("centre")
    raw = root / "raw"
    raw.mkdir()
    (raw / "calls.jsonl").write_text("".join(json.dumps(c) + "\n" for c in CALLS))
    (raw / "logins.jsonl").write_text("".join(json.dumps(g) + "\n" for g in LOGINS))
    settings = build_home(root / "home", raw)
    con = open_snapshot(settings)
    yield settings, con
    con.close()


def _report(con, **kw):
    return [tuple(r) for r in calls_report(con, CallFilter(**kw)).rows]


@pytest.mark.integration
def test_calls_by_month_and_campaign_by_hand(centre):
    _, con = centre
    assert _report(con) == [
        ("2024-05", "collect", 1, 1, 1, D("1.000000"), D("45.00"), 1, D("1.000000")),
        ("2024-06", "(none)", 1, 1, 1, D("1.000000"), D("300.00"), 1, D("1.000000")),
        ("2024-06", "collect", 3, 3, 1, D("0.333333"), D("30.00"), 1, D("1.000000")),
        ("2024-06", "welcome", 1, 1, 1, D("1.000000"), None, 0, D("0.000000")),
    ]


@pytest.mark.integration
def test_calls_by_agent_channel_all_and_by_day_and_week(centre):
    _, con = centre
    # agents: a1 K1 K2 K5 (connected K1 K5: talk (45 + 300) / 2 = 172.50, both with a login);
    # a2 K3 K4 (K4 connected, no talk time, no login); (none) K6
    assert _report(con, period="month", by="agent")[1:] == [
        ("2024-06", "(none)", 1, 1, 1, D("1.000000"), D("30.00"), 1, D("1.000000")),
        ("2024-06", "a1", 2, 2, 1, D("0.500000"), D("300.00"), 1, D("1.000000")),
        ("2024-06", "a2", 2, 1, 1, D("0.500000"), None, 0, D("0.000000")),
    ]
    # login channel: K1 app, K5 whatsapp, K6 web; the rest (none)
    assert _report(con, by="channel", period="week") == [
        ("2024-W22", "(none)", 2, 2, 0, D("0.000000"), None, 0, None),  # K2, K3 (ISO week 22: 05-27 to 06-02)
        ("2024-W22", "app", 1, 1, 1, D("1.000000"), D("45.00"), 1, D("1.000000")),
        ("2024-W23", "(none)", 1, 1, 1, D("1.000000"), None, 0, D("0.000000")),
        ("2024-W23", "web", 1, 1, 1, D("1.000000"), D("30.00"), 1, D("1.000000")),
        ("2024-W23", "whatsapp", 1, 1, 1, D("1.000000"), D("300.00"), 1, D("1.000000")),
    ]
    import datetime as dt

    assert _report(con, by="all", period="day", date_from=dt.date(2024, 6, 3)) == [
        ("2024-06-03", "all", 3, 2, 3, D("1.000000"), D("165.00"), 2, D("0.666667")),
    ]


@pytest.mark.integration
def test_report_calls_cli_columns_and_usage_errors(centre):
    settings, _ = centre
    result = cli("report", "calls", "--by", "all", "--from", "2024-06-01", "--to", "2024-06-01", "--format", "csv",
                 home=settings.home)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "period,group,calls,clients,connected,connect_rate,avg_talk_seconds,logins_48h,login_rate_48h",
        "2024-06,all,2,2,0,0.000000,,0,"]
    bad = cli("report", "calls", "--by", "team", home=settings.home)
    assert bad.exit_code == 2 and "--by 'team': use one of campaign, agent, channel, all" in bad.stderr


@pytest.mark.integration
def test_report_call_outcomes_by_hand(centre):
    """Only K4 has an outcome (promise_to_pay); the others none. By month, all calls: May K1 alone;
    June K2..K6, one of five a promise."""
    settings, _ = centre
    result = cli("report", "call-outcomes", "--by", "all", "--format", "csv", home=settings.home)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["period,group,outcome,calls,share", "2024-05,all,(none),1,1.000000",
                                          "2024-06,all,(none),4,0.800000", "2024-06,all,promise_to_pay,1,0.200000"]
    by_campaign = cli("report", "call-outcomes", "--from", "2024-06-03", "-f", "csv", home=settings.home)
    assert by_campaign.stdout.splitlines()[1:] == ["2024-06,(none),(none),1,1.000000", "2024-06,collect,(none),1,1.000000",
                                                   "2024-06,welcome,promise_to_pay,1,1.000000"]
