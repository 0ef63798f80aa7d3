"""`streamlit run ui/serve.py` (what `unitcat ui` runs) and `streamlit run ui/app.py`, which
the app's docstring offers, are as safe as `unitcat ui`: they listen on this machine only and
send no usage statistics (ui/.streamlit/config.toml, which Streamlit reads next to the script
it runs, whatever the current folder)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.test_browser import _free_port, _stop, _wait_healthy

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "ui" / "app.py"
SERVER = REPO / "ui" / "serve.py"
CONFIG = REPO / "ui" / ".streamlit" / "config.toml"


def _outside_address() -> str | None:
    """An address of this machine that is not loopback (None: it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1; UDP connect sends nothing
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_the_app_config_keeps_usage_statistics_off_listens_locally_and_skips_the_gc() -> None:
    config = tomllib.loads(CONFIG.read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["address"] == "127.0.0.1"
    # no full garbage collection after every run of a page (~160 ms with torch loaded); the
    # server reads this file as it reads the address (test_streamlit_run_listens_on_loopback_only)
    assert config["runner"]["postScriptGC"] is False


@pytest.mark.parametrize("script", [SERVER, APP], ids=["serve.py", "app.py"])
def test_streamlit_run_listens_on_loopback_only(
    database_url: str, tmp_path: Path, script: Path
) -> None:
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no address besides loopback")
    port = _free_port()
    log = tmp_path / "streamlit.log"
    env = {**os.environ, "DATABASE_URL": database_url}
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port)]
    with open(log, "wb") as out:  # from another folder: the config is found next to the app
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   cwd=tmp_path)  # fmt: skip
    try:
        _wait_healthy(port, process, log)  # answers on 127.0.0.1 …
        with socket.socket() as sock:  # … and nowhere else
            assert sock.connect_ex((outside, port)) != 0, f"listening on {outside}:{port}"
    finally:
        _stop(process)
    assert "Network URL" not in log.read_text()
