"""A real ``redis-server`` for the tests, on loopback only.

Use the session fixture in a test module with ``from redis_server import redis_url  # noqa: F401``.
The server keeps nothing on disk (``--save "" --appendonly no``), listens on 127.0.0.1 on a
free port and is terminated when the session ends.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
"""Seconds to wait for the server to answer PING."""
STOP_TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)


def start_redis(
    executable: str, workdir: Path, attempts: int = 3
) -> tuple[subprocess.Popen[bytes], int]:
    """Starts ``redis-server`` on a free loopback port and waits until it answers PING.

    A server that exits at once (the port was taken in between) is retried on another port;
    one that does not answer within ``START_TIMEOUT`` seconds fails the session with its log.
    """
    log = workdir / "redis.log"
    problem = ""
    for _ in range(attempts):
        port = _free_port()
        args = [
            executable,
            "--port", str(port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
            "--logfile", str(log),
            "--daemonize", "no",
            "--protected-mode", "yes",
        ]  # fmt: skip
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if _answers_ping(port):
                return proc, port
            time.sleep(0.05)
        exited = proc.poll() is not None
        _stop(proc)
        assert proc.stderr is not None
        stderr = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        problem = (
            f"exit code {proc.returncode}\nstderr: {stderr[-2000:]}\nlog: {tail}"
            if exited
            else f"no answer to PING within {START_TIMEOUT:g} s\nlog: {tail}"
        )
        if not exited:
            break
    pytest.fail(f"redis-server did not start on {HOST}: {problem}", pytrace=False)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://127.0.0.1:<port>/0`` of a redis-server started for this test session."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail(
            "redis-server is not installed (not found on PATH); the Redis tests start a real "
            "server: install the Debian package 'redis-server' (apt-get install redis-server)",
            pytrace=False,
        )
    proc, port = start_redis(executable, tmp_path_factory.mktemp("redis"))
    try:
        yield f"redis://{HOST}:{port}/0"
    finally:
        _stop(proc)
        if proc.stderr:
            proc.stderr.close()
