"""Start, find and stop the server processes Orion owns, by pid file only.

Guarantees: a process is considered Orion's only if its pid is in a pid file under the state
directory AND its kernel start time still equals the one recorded when we started it, so a
recycled pid is never signalled. Nothing here searches the process table by name.

Every process is started as the leader of a session of its own, and everything it spawns
stays in that session (Ray's GCS, raylet, dashboard and workers; PostgreSQL's backends). A
stop that had to SIGKILL a leader would orphan them, so `stop` then ends every process still
in that session that started after the leader did: by session id and start time, never by
name, never anything Orion did not start.

A service started with `yields_on_wakeup` runs, with every thread and process it makes, under
Linux's SCHED_BATCH policy (orion/priority.py says why): its CPU share is unchanged, but when
it wakes it does not preempt the task running on that core.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.2  # readiness/stop polling: fast enough to feel instant, cheap on 2 cores
KILL_GRACE_S = 5.0  # after the stop timeout, how long SIGKILL may take before we give up


class ServiceError(Exception):
    """A service failed to start or stop; the message names it and its log file."""


@dataclass(frozen=True)
class Managed:
    """One long-running process: where its pid file and log are, and how to recognise it."""

    name: str
    pid_file: Path
    log_file: Path
    stop_signal: signal.Signals = signal.SIGTERM

    def pid(self) -> int | None:
        """The live pid from the pid file, or None (stale files are removed)."""
        try:
            pid_text, started_text = self.pid_file.read_text().split()[:2]
            pid, started = int(pid_text), int(started_text)
        except (FileNotFoundError, ValueError):
            return None
        if _start_time(pid) != started:
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def start(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        yields_on_wakeup: bool = False,
    ) -> int:
        """Launch detached (own session), output appended to the log; returns the pid."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log, _batch_policy(yields_on_wakeup, self.name):
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=user,
                env=env,
                cwd=cwd,
            )
        self.pid_file.write_text(f"{proc.pid} {_start_time(proc.pid)}\n")
        return proc.pid

    def stop(self, timeout_s: float) -> bool:
        """Signal our pid and wait for it to exit; True if something was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        started = _start_time(pid) or 0
        _signal(pid, self.stop_signal)
        if not _wait(lambda: _start_time(pid) is None, timeout_s):
            _signal(pid, signal.SIGKILL)
            if not _wait(lambda: _start_time(pid) is None, KILL_GRACE_S):
                raise ServiceError(f"{self.name}: pid {pid} did not exit; see {self.log_file}")
        _end_session(pid, started)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


@contextlib.contextmanager
def _batch_policy(wanted: bool, name: str) -> Iterator[None]:
    """While inside, the calling thread runs under SCHED_BATCH, so a child it forks starts
    under it (Linux keeps the policy per thread and a fork inherits the forking thread's);
    the thread gets its own policy back after. Unprivileged: a process may always move
    between SCHED_OTHER and SCHED_BATCH. Where the platform refuses, the service starts
    under the usual policy and says so (it costs throughput, never correctness)."""
    if not wanted:
        yield
        return
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError as err:
        log.warning("%s: starting without SCHED_BATCH (%s)", name, err)
        yield
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, policy, param)


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    if fields[0] == "Z":  # exited; reap it if it is our own child
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return None
    return int(fields[19])  # field 22 of stat, counted after the "(comm)" field


def _session_members(session: int, not_before: int) -> list[int]:
    """Live processes of `session` that started at or after `not_before` (clock ticks)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[3]) == session and int(fields[19]) >= not_before:
            members.append(int(entry.name))
    return members


def _end_session(session: int, not_before: int) -> None:
    """SIGTERM what is left of a stopped leader's session, then SIGKILL what stays."""
    left = _session_members(session, not_before)
    for pid in left:
        _signal(pid, signal.SIGTERM)
    if left and not _wait(lambda: not _session_members(session, not_before), KILL_GRACE_S):
        for pid in _session_members(session, not_before):
            _signal(pid, signal.SIGKILL)
        _wait(lambda: not _session_members(session, not_before), KILL_GRACE_S)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(POLL_INTERVAL_S)
    return predicate()


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    """Poll `predicate` until true or the bounded timeout passes (exceptions count as false)."""

    def safe() -> bool:
        try:
            return predicate()
        except Exception:  # noqa: BLE001 - readiness probes fail in many ways until ready
            return False

    return _wait(safe, timeout_s)


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (VmRSS), 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def run_once(cmd: Sequence[str], timeout_s: float, user: str | None = None) -> str:
    """Run a one-shot tool (initdb, mvn, StorageTool); its output, or ServiceError with a tail."""
    done = subprocess.run(
        list(cmd), check=False, capture_output=True, text=True, timeout=timeout_s, user=user
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise ServiceError(f"{Path(cmd[0]).name} failed: " + " | ".join(tail))
    return done.stdout
