"""The web dashboard (Streamlit + Plotly): `loanwatch dashboard` runs app.py in a Streamlit server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from loanwatch.config import Settings

APP = Path(__file__).with_name("app.py")


def command(settings: Settings, port: int, address: str = "127.0.0.1") -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(port), "--server.address", address, "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal",
        "--", "--home", str(settings.home),
    ]


def environment() -> dict[str, str]:
    # No telemetry, nothing fetched from outside when the page is viewed.
    return {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", "STREAMLIT_SERVER_HEADLESS": "true"}


def start(settings: Settings, port: int, address: str = "127.0.0.1", **popen) -> subprocess.Popen:
    return subprocess.Popen(command(settings, port, address), env=environment(), **popen)


def wait_until_ready(url: str, timeout: float = 60.0) -> bool:
    """Poll the server's health endpoint until it answers (True) or the timeout passes (False)."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False
