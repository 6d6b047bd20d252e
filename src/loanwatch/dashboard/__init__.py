"""The web dashboard (Streamlit + Plotly): `loanwatch dashboard` runs app.py in a Streamlit server."""

from __future__ import annotations

import os
import signal
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


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Linux: the server gets SIGTERM when the process that started it dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start(settings: Settings, port: int, address: str = "127.0.0.1", **popen) -> subprocess.Popen:
    if sys.platform.startswith("linux"):
        popen.setdefault("preexec_fn", _die_with_parent)
    return subprocess.Popen(command(settings, port, address), env=environment(), **popen)


class _Stop(Exception):
    pass


def serve(settings: Settings, port: int, address: str = "127.0.0.1") -> int:
    """Run the server until it ends, or until this process gets Ctrl-C, SIGTERM or SIGHUP: then
    the server is stopped too (terminated, killed after 10 s), and 0 is returned."""
    def stop(signum, frame):
        raise _Stop(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    proc = None
    try:
        proc = start(settings, port, address)
        return proc.wait()
    except (KeyboardInterrupt, _Stop):
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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
