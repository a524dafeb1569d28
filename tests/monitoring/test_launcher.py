"""The one launch-and-wait-for-ready helper (loadtest.server.launched) that the load test, the
benchmarks, the monitoring proof and the tests start their processes with."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from loadtest.server import free_port, launched

# Serves 200 on every GET; with "ignore" it also shrugs off SIGTERM (so stop must SIGKILL it).
SERVER = """
import http.server, signal, sys
if sys.argv[2] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()
"""


def _server(port: int, mode: str) -> list[str]:
    return [sys.executable, "-c", SERVER, str(port), mode]


def test_ready_process_is_yielded_then_stopped_by_sigterm(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/ready"
    with launched(_server(port, "plain"), url, "the toy", tmp_path / "toy.log") as process:
        assert process.poll() is None
        assert httpx.get(url, timeout=5).text == "ok"
    assert process.returncode == -signal.SIGTERM


def test_a_process_ignoring_sigterm_is_killed_after_the_stop_timeout(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with launched(_server(port, "ignore"), url, "the toy", stop_timeout=1) as process:
        pass
    assert process.returncode == -signal.SIGKILL


def test_an_exit_during_start_up_names_the_process_and_its_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "dies.log"
    command = [sys.executable, "-c", "print('bad config'); raise SystemExit(3)"]
    expected = r"the toy exited during start-up \(status 3\); see .*dies.log"
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(SystemExit, match=expected), launched(command, url, "the toy", log):
        pass
    assert "bad config" in log.read_text()


def test_no_readiness_in_time_stops_the_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid()))"
    script += "; time.sleep(60)"
    url = f"http://127.0.0.1:{free_port()}/"
    with (
        pytest.raises(SystemExit, match="the toy was not ready within 3 s"),
        launched([sys.executable, "-c", script], url, "the toy", ready_timeout=3),
    ):
        pass
    with pytest.raises(ProcessLookupError):  # stopped and reaped, not left behind
        os.kill(int(pid_file.read_text()), 0)
