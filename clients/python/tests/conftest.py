"""Test fixtures: one real `confab serve` per test session (random free ports, a fresh
temporary data directory, stopped at the end even on failure) and, per test, a fresh workspace
with users, tokens and a channel made with `confab admin` against that server. Nothing is
mocked: every test talks to the real server over real sockets."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

CLIENT_ROOT = Path(__file__).resolve().parent.parent
CONFAB_BIN = os.environ.get("CONFAB_BIN", str(Path.home() / ".cache/confab-target/debug/confab"))
#: A resume replays at most this many entries in the test server (the rest are gaps), so a
#: test can produce gaps with a few dozen messages.
RESUME_MAX_ENTRIES = 20


class ConfabServer:
    """One `confab serve` (embedded mode) on 127.0.0.1 ports chosen by the kernel."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="confab-pyclient-"))
        self.data_dir = self.root / "data"
        self.log_path = self.root / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self.admin_url = ""
        self._stdout_lines: list[str] = []
        self._announced = threading.Event()

    def environment(self) -> dict[str, str]:
        # no CONFAB_* from the caller's shell: a CONFAB_KAFKA__BROKERS there would switch the
        # server to distributed mode, a CONFAB_CONFIG would change anything
        env = {key: value for key, value in os.environ.items() if not key.startswith("CONFAB_")}
        env.update(
            {
                "CONFAB_GATEWAY__ADMIN_LISTEN": "127.0.0.1:0",
                "CONFAB_GATEWAY__RESUME_MAX_ENTRIES": str(RESUME_MAX_ENTRIES),
                "CONFAB_NO_DEMO": "1",
                "CONFAB_LOG": os.environ.get("CONFAB_TEST_SERVER_LOG", "warn,confab=info"),
            }
        )
        return env

    def start(self, timeout_seconds: float = 60.0) -> None:
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [self.binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir)],
            cwd=self.root,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        log.close()
        threading.Thread(target=self._read_stdout, name="confab-serve-stdout", daemon=True).start()
        deadline = time.monotonic() + timeout_seconds
        while not self._announced.wait(0.1):
            if self.process.poll() is not None:
                raise RuntimeError(f"confab serve exited with {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"confab serve did not announce its address in {timeout_seconds} s:\n{self.log_tail()}"
                )
        while True:
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"confab serve at {self.base_url} never became healthy:\n{self.log_tail()}")
            time.sleep(0.1)

    def _read_stdout(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw_line in self.process.stdout:
            line = raw_line.decode("utf-8", "replace").strip()
            self._stdout_lines.append(line)
            if line.startswith("{"):
                try:
                    announcement = json.loads(line)
                except ValueError:
                    continue
                if announcement.get("event") == "listening" and "admin_addr" in announcement:
                    self.base_url = f"http://{announcement['addr']}"
                    self.admin_url = f"http://{announcement['admin_addr']}"
                    self._announced.set()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            text = ""
        return "\n".join((self._stdout_lines + text.splitlines())[-lines:])

    def admin(self, *arguments: str) -> dict:
        """`confab admin ARGS` against this server (its key is found in the data directory)."""
        command = [self.binary, "admin", "--url", self.admin_url, "--data-dir", str(self.data_dir), *arguments]
        env = {key: value for key, value in os.environ.items() if not key.startswith("CONFAB_")}
        env["CONFAB_LOG"] = "warn"
        result = subprocess.run(command, env=env, capture_output=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(
                f"confab admin {' '.join(arguments)} failed ({result.returncode}):\n"
                f"{result.stdout.decode()}\n{result.stderr.decode()}"
            )
        return json.loads(result.stdout)

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()

    def cleanup(self, keep: bool) -> None:
        if keep:
            print(f"\nconfab serve's directory kept: {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Person:
    name: str
    user_id: str
    token: str


@dataclass
class Team:
    """A fresh workspace: alice and bob in #general (alice created it)."""

    server: ConfabServer
    workspace_id: str
    alice: Person
    bob: Person
    general_channel_id: str
    extra_people: list[Person] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def add_person(self, name: str) -> Person:
        created = self.server.admin("create-user", "--workspace", self.workspace_id, "--name", name)
        person = Person(name=name, user_id=created["user_id"], token=created["token"])
        self.extra_people.append(person)
        return person

    def add_channel(
        self, name: str, members: list[Person], *, private: bool = False, creator: Person | None = None
    ) -> str:
        arguments = ["create-channel", "--workspace", self.workspace_id, "--name", name]
        for member in members:
            arguments += ["--member", member.user_id]
        if private:
            arguments.append("--private")
        if creator is not None:
            arguments += ["--creator", creator.user_id]
        return self.server.admin(*arguments)["channel_id"]


_session_failed = False


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    global _session_failed
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        _session_failed = True


@pytest.fixture(scope="session")
def confab_server():
    if not os.access(CONFAB_BIN, os.X_OK):
        pytest.fail(
            f"no confab binary at {CONFAB_BIN}: build it (cargo build -p confab) or set CONFAB_BIN", pytrace=False
        )
    server = ConfabServer(CONFAB_BIN)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.cleanup(keep=os.environ.get("CONFAB_TEST_KEEP") == "1" or _session_failed)


@pytest.fixture
def team(confab_server: ConfabServer) -> Team:
    """A workspace of its own per test, so rate limits and channels never leak between tests."""
    suffix = uuid.uuid4().hex[:8]
    workspace_id = confab_server.admin("create-workspace", "--name", f"pyclient-{suffix}")["workspace_id"]
    people = []
    for name in ("alice", "bob"):
        created = confab_server.admin("create-user", "--workspace", workspace_id, "--name", name)
        people.append(Person(name=name, user_id=created["user_id"], token=created["token"]))
    alice, bob = people
    general = confab_server.admin(
        "create-channel",
        "--workspace",
        workspace_id,
        "--name",
        "general",
        "--member",
        alice.user_id,
        "--member",
        bob.user_id,
        "--creator",
        alice.user_id,
    )["channel_id"]
    return Team(server=confab_server, workspace_id=workspace_id, alice=alice, bob=bob, general_channel_id=general)
