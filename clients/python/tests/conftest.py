"""Runs the tests against the real `tooken serve`: a fresh SQLite store in
a temporary directory, listening on a port the OS picks.

The binary comes from ``TOOKEN_BIN`` (the Rust test driver sets it), else
the workspace's ``target/debug/tooken``.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def tooken_bin() -> str:
    explicit = os.environ.get("TOOKEN_BIN")
    if explicit:
        return explicit
    for profile in ("debug", "release"):
        candidate = ROOT / "target" / profile / "tooken"
        if candidate.exists():
            return str(candidate)
    pytest.exit("no tooken binary: set TOOKEN_BIN or run `cargo build -p tooken`", returncode=2)


@dataclass
class Server:
    url: str
    api_key: str
    database: str
    process: subprocess.Popen[str]
    logs: list[str] = field(default_factory=list)

    def admin(self, *args: str) -> str:
        """Runs `tooken admin …` on this server's store; its stdout."""
        out = subprocess.run(
            [tooken_bin(), "admin", *args, "--database", self.database],
            check=True,
            capture_output=True,
            text=True,
            env=_env(),
        )
        return out.stdout.strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOKEN_") or k == "TOOKEN_BIN"}
    env["TOOKEN_LOG"] = "warn,tooken::serve=info"
    return env


_LISTENING = re.compile(r"tooken is listening.*address=(\S+)")
_KEY = re.compile(r"\b(tok_live_[0-9A-Za-z]{36})\b")


def start_server(directory: Path, *args: str) -> Server:
    database = f"sqlite://{directory}/tooken.db"
    process = subprocess.Popen(
        [tooken_bin(), "serve", "--listen", "127.0.0.1:0", "--database", database, *args],
        cwd=directory,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    logs: list[str] = []

    def read(stream: object, name: str) -> None:
        for line in stream:  # type: ignore[attr-defined]
            logs.append(line)
            events.put((name, line))
        events.put((name, ""))

    for stream, name in ((process.stdout, "stdout"), (process.stderr, "stderr")):
        threading.Thread(target=read, args=(stream, name), daemon=True).start()
    address = key = None
    closed = 0
    while address is None or key is None:
        try:
            name, line = events.get(timeout=60)
        except queue.Empty:
            break
        if line == "":
            closed += 1
            if closed == 2:
                break
            continue
        if address is None and (m := _LISTENING.search(line)):
            address = m.group(1)
        if key is None and (m := _KEY.search(line)):
            key = m.group(1)
    if address is None or key is None:
        process.kill()
        raise RuntimeError("tooken serve did not start:\n" + "".join(logs))
    return Server(f"http://{address}", key, database, process, logs)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the session, with the brute-force throttle lifted
    (the tests present many bad credentials from one address on purpose)."""
    s = start_server(tmp_path_factory.mktemp("tooken"), "--auth-slow-after", "1000000", "--auth-block-after", "1000000")
    yield s
    s.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Server]:
    """A server of its own, for tests that change workspace-wide state."""
    s = start_server(tmp_path, "--auth-slow-after", "1000000", "--auth-block-after", "1000000")
    yield s
    s.stop()


@pytest.fixture
def client(server: Server) -> Iterator["tooken.Tooken"]:  # noqa: F821
    import tooken

    with tooken.Tooken(server.api_key, base_url=server.url) as c:
        yield c


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
