"""Settings: one resolver with a fixed precedence.

defaults (below) < ``loanwatch.toml`` < environment ``LOANWATCH_<SECTION>__<KEY>``.

The toml file is looked up as ``$LOANWATCH_CONFIG`` if set, else ``./loanwatch.toml``, else
``<home>/loanwatch.toml``. The warehouse folder (home) is ``--home``, else ``$LOANWATCH_HOME``,
else ``./loanwatch_home``. Secrets (SMTP password, webhook URLs) are read only from the
environment: a value for them in a toml file is ignored with a warning, so that committed files
never hold them.
"""

from __future__ import annotations

import copy
import math
import os
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loanwatch.errors import UsageProblem

DEFAULTS: dict[str, dict[str, Any]] = {
    "warehouse": {
        # Where the dbt project builds: duckdb (the local file), postgres ([postgres]) or spark.
        "engine": "duckdb",
        "default_currency": "USD",
        "default_timezone": "UTC",
        # METRICS §2: an instalment counts as paid when the shortfall is at most this.
        "tolerance": 0.0,
        # METRICS §2: within an instalment a payment goes to its open components in this order
        # (Fineract's default strategy); the four components, each once, comma-separated.
        "allocation_order": "penalty, fee, interest, principal",
        # METRICS §3 option: DPD counts the due day itself (Frappe convention).
        "dpd_counts_due_day": False,
        # Seconds a writer waits for another writer's lock before giving up.
        "lock_timeout": 60,
        # DuckDB's memory limit for ingest and build; beyond it, work spills to disk.
        "memory_limit": "3GB",
    },
    # [warehouse] engine = "postgres": the server (the password only from LOANWATCH_POSTGRES__PASSWORD).
    "postgres": {"host": "localhost", "port": 5432, "user": "loanwatch", "dbname": "loanwatch", "password": "",
                 "connect_timeout": 10, "threads": 2},
    # [warehouse] engine = "spark": method "session" runs Spark in-process (pyspark) on `master`
    # (local[2], spark://host:7077, yarn); its tables live under warehouse_dir (empty: <home>/spark).
    # driver_memory: the JVM's heap in this process (with local[N], all of Spark's work).
    # method "thrift": a Spark Thrift server at host:port, which shares warehouse_dir with this machine.
    # threads: dbt's, the statements Spark is given at once (0: 4 in-process, 2 through Thrift).
    "spark": {"method": "session", "master": "local[2]", "warehouse_dir": "", "shuffle_partitions": 4,
              "driver_memory": "4g", "host": "localhost", "port": 10000, "user": "loanwatch", "threads": 0},
    "ingest": {
        # A business date (issue_date, paid_at, called_at, occurred_at, updated_at) more than this
        # many days after the day of ingest is quarantined as a typo (9999-12-31 for 2024-12-31).
        "max_future_days": 1,
        # JSON records that give a field twice are quarantined (ambiguous); checking costs a
        # second parse of every record: false leaves it out for producers that cannot repeat one.
        "check_repeated_keys": True,
        # A record (a line) longer than this many bytes is quarantined alone (64 MB); the rest of
        # its file loads.
        "max_record_bytes": 64 << 20,
        # A gzip file that inflates to more than this many bytes is quarantined unread (20 GB).
        "max_uncompressed_bytes": 20_000_000_000,
    },
    "reports": {
        # An --as-of date after the data date is a projection; at most this many days after it.
        "projection_horizon_days": 366,
        # The currency of money in reports and on the dashboard (empty: the currency holding the most
        # principal outstanding).
        # Loans in other currencies are left out with a warning (--currency picks one), never summed.
        "currency": "",
    },
    "callcentre": {
        # METRICS §7: a call is connected when it talked at least this long; a connected call's
        # first login of the client within this many hours is its login after call.
        "connect_min_talk_seconds": 30,
        "login_window_hours": 48,
        # METRICS §6: a call cures its overdue loan when the loan is current or closed this many
        # days later (fct_calls.is_cured_7d, the hold-out's baseline, the contact plan's odds).
        "cure_window_days": 7,
        # METRICS §6: a promise to pay is kept when paid by the end of the promised day + this many days.
        "promise_grace_days": 3,
    },
    # METRICS §9-§10, read when a provisions or forecast report runs (none is a dbt var: a change
    # needs no rebuild). Stages: 3 when DPD > stage3_dpd, 2 when DPD > stage2_dpd, else 1. The
    # transition matrix pools the latest pd_window_months complete months, weighing each loan by its
    # principal (balance) or as one (count). LGD: from the loans written off at least
    # lgd_window_months before the as-of date and their recoveries within as long after, when there
    # are at least lgd_min_loans of them; else `lgd`. method: ifrs9 (stage 1 takes 12 months of
    # expected loss, stage 2 the lifetime) or cecl (lifetime for all). backtest_months: the months
    # the forecast is checked against.
    "provisions": {
        "stage2_dpd": 30,
        "stage3_dpd": 90,
        "pd_window_months": 12,
        "pd_weight": "balance",
        "lgd": 1.0,
        "lgd_min_loans": 30,
        "lgd_window_months": 12,
        "method": "ifrs9",
        "backtest_months": 6,
    },
    "checks": {
        # A loan's interest_rate above this (a fraction: 5 = 500 % a year) warns that it looks like a
        # percentage (24 for 0.24); warn_interest_rate_looks_like_percent.
        "max_interest_rate": 5.0,
        "freshness_days": 7,
        # Loan amounts beyond this many times the product's median are flagged.
        "amount_outlier_factor": 20.0,
        # A merchant balance below this (in its currency) is flagged; 0: a negative balance.
        "merchant_balance_floor": 0.0,
    },
    "dashboard": {"port": 8501, "url": ""},
    # `loanwatch run`, the day's cycle: the folders whose new files it ingests (through `mapping`,
    # a source mapping file, when set), whether it then sends the day's messages (`notify send`),
    # and the weekday (monday ... sunday; empty: never) it also sends the weekly summary.
    # settle_seconds: a file of the inbox modified less than this long ago may still be being
    # written, and is left for the next run (0: every file; writers should write, then rename).
    "run": {"inbox": [], "mapping": "", "notify": False, "weekly_day": "", "settle_seconds": 0.0},
    # `loanwatch schedule`: when to start `run` (a cron expression, UTC unless timezone is set).
    # Hourly: messages go out only within each client's contact hours (08:00-21:00 in their time
    # zone), which one early run a day would miss for whole continents; a run with nothing new
    # costs seconds and sends what the outbox holds once a window opens, and the retries due.
    "schedule": {"cron": "0 * * * *", "timezone": "UTC"},
    "smtp": {
        "host": "localhost",
        "port": 25,
        "user": "",
        "password": "",
        "sender": "loanwatch@localhost",
        "starttls": False,
        # A CA bundle to verify a private relay's certificate with (default: the system's).
        "tls_ca_file": "",
        "timeout": 30,
    },
    "slack": {"webhook_url": ""},
    # payload: the JSON body sent to the gateway; {id}, {to} and {text} in its strings are filled in.
    "sms": {"url": "", "token": "", "payload": '{"id": "{id}", "to": "{to}", "text": "{text}"}'},
    "notify": {
        "default_language": "en",
        "pre_due_days": 3,
        "overdue_days": [1, 7, 30],
        "escalate_dpd": 15,
        "final_notice_dpd": 85,
        "max_messages_per_week": 3,
        "max_calls_per_loan_week": 7,
        "quiet_start": "08:00",
        "quiet_end": "21:00",
        "holdout_share": 0.05,
        # The hold-out is a hash of the client id with this salt: change it to draw a new group.
        "holdout_salt": "loanwatch",
        "call_capacity": 200,
        # Delivery: attempts per message across sends, the first back-off in seconds (doubling: 5, 10,
        # 20, 40, 80 minutes, so an hourly run retries a server that is down for hours), per-second
        # rates (0: no limit).
        "max_attempts": 6,
        "backoff_seconds": 300.0,
        "email_per_second": 0,
        "sms_per_second": 0,
        # At most this many messages (email and SMS) reach a client per day, however many runs.
        "max_messages_per_day": 1,
        # A message still unsent this many hours after it entered the outbox expires (0: never).
        "expire_hours": 48,
        # A send stops starting deliveries after this many seconds (what is left waits for the next
        # send), and no network wait of a message outlasts it: the outbox lock is never held longer.
        "send_deadline_seconds": 300,
        "payment_reference": "LW-{client_id}",
        # Who gets the weekly management summary (`loanwatch notify weekly`); empty: print only.
        "management_to": "",
    },
}

SECRETS = {("postgres", "password"), ("smtp", "password"), ("slack", "webhook_url"), ("sms", "token")}

# Values a setting may take beyond its type, checked when settings are read (as the types are): a
# word from a list, or a number within bounds (None: unbounded). Bounds that name another setting
# of the section compare with its value.
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("provisions", "pd_weight"): ("balance", "count"),
    ("provisions", "method"): ("ifrs9", "cecl"),
}
BOUNDS: dict[tuple[str, str], tuple[float | str | None, float | str | None]] = {
    ("provisions", "stage2_dpd"): (0, "stage3_dpd"),
    ("provisions", "stage3_dpd"): ("stage2_dpd", 3650),
    ("provisions", "pd_window_months"): (1, 600),
    ("provisions", "lgd"): (0, 1),
    ("provisions", "lgd_min_loans"): (1, 1_000_000_000),
    ("provisions", "lgd_window_months"): (0, 600),
    ("provisions", "backtest_months"): (1, 600),
    ("callcentre", "cure_window_days"): (1, 366),
    ("callcentre", "promise_grace_days"): (0, 366),
}


# METRICS §2: what an instalment owes.
COMPONENTS = ("penalty", "fee", "interest", "principal")


def allocation_order(value: str) -> list[str]:
    """[warehouse] allocation_order as a list of component names."""
    return [word.strip().lower() for word in str(value).split(",") if word.strip()]


@dataclass
class Settings:
    home: Path
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    config_file: Path | None = None

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]

    def section(self, section: str) -> dict[str, Any]:
        return dict(self.values.get(section, {}))

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def published_path(self) -> Path:
        """The build's copy of what readers need (DuckDB): publishing copies this file."""
        return self.home / "published.duckdb"

    @property
    def serving_path(self) -> Path:
        return self.home / "serving.duckdb"


class ConfigError(UsageProblem):
    """A setting that cannot be used: the message names it, where it came from, and what to do."""


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _kind(like: Any) -> str:
    if isinstance(like, bool):
        return "true or false"
    if isinstance(like, int):
        return "a whole number"
    if isinstance(like, float):
        return "a number"
    if isinstance(like, list):
        return "a list" + (" of whole numbers" if like and isinstance(like[0], int) else "")
    return "text"


def _coerce(raw: str, like: Any) -> Any:
    """Turn an environment string into the type of the default it overrides (ValueError if it
    is not one)."""
    if isinstance(like, bool):
        word = raw.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ValueError(raw)
        return word in _TRUE
    if isinstance(like, int):
        return int(raw)
    if isinstance(like, float):
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError(raw)
        return value
    if isinstance(like, list):
        return [type(like[0])(x) if like else x for x in raw.split(",") if x.strip()]
    return raw


def _checked(value: Any, like: Any) -> bool:
    """Is a toml value of the default's type? (a whole number is a number too)"""
    if isinstance(like, bool):
        return isinstance(value, bool)
    if isinstance(like, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(like, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(like, list):
        return isinstance(value, list) and all(_checked(x, like[0]) for x in value) if like else isinstance(value, list)
    if isinstance(like, str):
        return isinstance(value, str)
    return True


def resolve_home(home: str | os.PathLike | None = None) -> Path:
    chosen = home or os.environ.get("LOANWATCH_HOME") or "loanwatch_home"
    return Path(chosen).expanduser().resolve()


def load_settings(home: str | os.PathLike | None = None, environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    home_path = resolve_home(home if home is not None else env.get("LOANWATCH_HOME"))
    values = copy.deepcopy(DEFAULTS)

    origins: dict[tuple[str, str], str] = {}  # where a value that is not the default came from
    config_file: Path | None = None
    named = env.get("LOANWATCH_CONFIG")
    if named and not Path(named).is_file():
        raise ConfigError(f"LOANWATCH_CONFIG={named}: not a file; point it at a loanwatch.toml, or unset it")
    for candidate in (named, "loanwatch.toml", home_path / "loanwatch.toml"):
        if candidate and Path(candidate).is_file():
            config_file = Path(candidate)
            break
    if config_file is not None:
        data = _read_toml(config_file)
        for section, entries in data.items():
            if not isinstance(entries, dict):
                continue
            target = values.setdefault(section, {})
            for key, value in entries.items():
                if (section, key) in SECRETS:
                    warnings.warn(
                        f"{config_file}: [{section}] {key} is a secret and is read only from "
                        f"the environment (LOANWATCH_{section.upper()}__{key.upper()}); ignored here",
                        stacklevel=2,
                    )
                    continue
                like = DEFAULTS.get(section, {}).get(key)
                if like is not None and not _checked(value, like):
                    raise ConfigError(f"{config_file}: [{section}] {key} = {value!r} is not {_kind(like)} "
                                      f"(the default is {like!r}); correct it or remove the line")
                target[key] = value
                origins[(section, key)] = f"{config_file}: [{section}] {key} = {value!r}"

    for name, raw in env.items():
        if not name.startswith("LOANWATCH_") or "__" not in name:
            continue
        section, _, key = name[len("LOANWATCH_"):].partition("__")
        section, key = section.lower(), key.lower()
        like = values.get(section, {}).get(key, "")
        try:
            values.setdefault(section, {})[key] = _coerce(raw, like)
        except ValueError:  # (secrets are text: they never fail here, so their values are never shown)
            raise ConfigError(f"{name}={raw!r} is not {_kind(like)} (the default is {like!r}); "
                              "correct it or unset it") from None
        origins[(section, key)] = f"{name}={raw!r}"

    _check_values(values, origins)
    return Settings(home=home_path, values=values, config_file=config_file)


def _check_values(values: dict[str, dict[str, Any]], origins: dict[tuple[str, str], str]) -> None:
    """CHOICES and BOUNDS: a value outside them is a ConfigError naming the setting, where it came
    from and what it may be (as for a value of the wrong type)."""

    def problem(section: str, key: str, allowed: str) -> ConfigError:
        where = origins.get((section, key), f"[{section}] {key} = {values[section][key]!r} (the default)")
        fix = "correct it or unset it" if where.startswith("LOANWATCH_") else "correct it or remove the line"
        return ConfigError(f"{where} is not {allowed}; {fix}")

    for (section, key), words in CHOICES.items():
        if values[section][key] not in words:
            raise problem(section, key, " or ".join(f'"{w}"' for w in words))
    if sorted(allocation_order(values["warehouse"]["allocation_order"])) != sorted(COMPONENTS):
        raise problem("warehouse", "allocation_order",
                      "the four components " + ", ".join(COMPONENTS) + ", each once, comma-separated")
    for (section, key), (low, high) in BOUNDS.items():
        value = values[section][key]
        low_value = values[section][low] if isinstance(low, str) else low
        high_value = values[section][high] if isinstance(high, str) else high
        below, above = low_value is not None and value < low_value, high_value is not None and value > high_value
        if not (below or above):
            continue
        other = low if below else high
        if isinstance(other, str) and (section, key) not in origins and (section, other) in origins:
            continue  # the other setting of the pair was changed: its own check names it
        shown = [f"[{section}] {b} ({values[section][b]})" if isinstance(b, str) else str(b) for b in (low, high)]
        if high is None:
            allowed = f"at least {shown[0]}"
        elif low is None:
            allowed = f"at most {shown[1]}"
        else:
            allowed = f"from {shown[0]} to {shown[1]}"
        raise problem(section, key, allowed)


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); correct the file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}); check the file") from None
