"""A lab host's processes: started inside its namespace, cgroup and mount namespace.

A host's first process moves itself into the host's cgroup (cgroup v2) before anything else,
so every process the host ever runs (sshd, what SSH sessions start, what those daemonize) is
in it: killing the host is `cgroup.kill`, by membership, never by name, and its CPU is the
cgroup's `usage_usec`. Its mount namespace gives it a private /tmp (Ray's sockets and session
files are per machine) and a /root of its own (what `ray up` writes to a node's home, its
bootstrap key and config, stays that node's and goes away with the lab); the machine's
directories under /root that Python needs (pyenv's interpreters) are bound into it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

from orion.lab.layout import SSH_PORT, Node, Paths

KILL_WAIT_S = 10.0  # the kernel ends a killed cgroup's processes at once; this is a bound
POLL_S = 0.1
TMP_SIZE = "4g"  # each host's private /tmp (tmpfs, memory-backed, used as needed)
SSHD = "/usr/sbin/sshd"
# Directories of the machine's /root a node still needs: the Python interpreter behind the
# virtualenv lives there (pyenv).
ROOT_DIRS_KEPT = (".pyenv",)
REPO = Path(__file__).resolve().parents[2]
# Inside a host, where the machine's own /tmp stays visible when the repository or the lab's
# files are under it (only mounted in the host's private mount namespace; the directory
# itself is created once on the machine and removed by `orion lab down`).
MACHINE_TMP = Path("/run/orion-lab-machine-tmp")


def cgroup_pids(node: Node) -> list[int]:
    try:
        return [int(p) for p in (node.cgroup / "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []


def alive(node: Node) -> bool:
    return bool(cgroup_pids(node))


def launch(
    node: Node, paths: Paths, command: list[str], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `command` inside the host (its namespace, cgroup, private /tmp)."""
    node.cgroup.mkdir(exist_ok=True)
    home = paths.node_dir(node)
    (home / "home").mkdir(parents=True, exist_ok=True)
    # The cgroup is joined before entering the namespace: `ip netns exec` remounts /sys, and
    # the cgroup hierarchy is not visible inside.
    home = paths.node_dir(node) / "home"
    keep = [d for d in ROOT_DIRS_KEPT if (Path("/root") / d).is_dir()]
    under_tmp = _outermost_under_tmp([REPO, paths.root])
    back = [f"mkdir -p {p} && mount --rbind {MACHINE_TMP / p.relative_to('/tmp')} {p}"
            for p in under_tmp]  # fmt: skip
    inner = " && ".join(
        [
            *([f"mkdir -p {MACHINE_TMP}", f"mount --rbind /tmp {MACHINE_TMP}"] if back else []),
            f"mount -t tmpfs -o size={TMP_SIZE},mode=1777 tmpfs /tmp",
            *back,
            *(f"mkdir -p {home / d} && mount --bind /root/{d} {home / d}" for d in keep),
            f"mount --rbind {home} /root",
            "exec " + " ".join(shlex.quote(a) for a in command),
        ]
    )
    enter = ["ip", "netns", "exec", node.namespace,
             "unshare", "--mount", "--propagation", "private", "sh", "-c", inner]  # fmt: skip
    outer = f"echo $$ > {node.cgroup / 'cgroup.procs'} && exec " + shlex.join(enter)
    log = paths.log(node.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    with log.open("ab") as out:
        return subprocess.Popen(
            ["sh", "-c", outer], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=full_env,
        )  # fmt: skip


def _outermost_under_tmp(candidates: list[Path]) -> list[Path]:
    """The paths under /tmp among these, without those inside another one: a checkout under
    /tmp (the repository, the lab's files) that the host's private /tmp would hide, so it is
    bound back from MACHINE_TMP, where the machine's /tmp stays visible."""
    under = [p for p in candidates if p.is_relative_to("/tmp")]
    return [p for p in under if not any(p != q and p.is_relative_to(q) for q in under)]


def sshd_config(node: Node, paths: Paths) -> Path:
    """An sshd for this host only: its address, the lab's host key and authorized key."""
    cfg = paths.node_dir(node) / "sshd_config"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(
        "\n".join(
            [
                f"ListenAddress {node.address}:{SSH_PORT}",
                f"HostKey {paths.host_key}",
                f"PidFile {paths.node_dir(node) / 'sshd.pid'}",
                f"AuthorizedKeysFile {paths.root / 'ssh' / 'authorized_keys'}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "PrintMotd no",
                "MaxStartups 50",
                "MaxSessions 50",
                "",
            ]
        )
    )
    return cfg


def start_sshd(node: Node, paths: Paths) -> None:
    cfg = sshd_config(node, paths)
    launch(node, paths, [SSHD, "-D", "-e", "-f", str(cfg)])


def kill(node: Node) -> None:
    """SIGKILL every process of the host (cgroup.kill), wait until none is left."""
    if not node.cgroup.exists():
        return
    (node.cgroup / "cgroup.kill").write_text("1")
    deadline = time.monotonic() + KILL_WAIT_S
    while cgroup_pids(node) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    if cgroup_pids(node):
        raise RuntimeError(f"lab host {node.name}: processes survived cgroup.kill")


def remove_cgroup(node: Node) -> None:
    """Remove the host's cgroup once its killed processes are gone (exiting processes keep a
    cgroup busy for a moment after they leave cgroup.procs)."""
    deadline = time.monotonic() + KILL_WAIT_S
    while node.cgroup.exists():
        try:
            node.cgroup.rmdir()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(POLL_S)


def cpu_seconds(node: Node) -> float:
    """CPU time used by every process the host ever ran (cgroup v2 cpu.stat)."""
    try:
        for line in (node.cgroup / "cpu.stat").read_text().splitlines():
            key, value = line.split()
            if key == "usage_usec":
                return int(value) / 1e6
    except FileNotFoundError:
        pass
    return 0.0


# Process titles Ray gives the actors (ray::<class>): Orion's own, and Serve's machinery.
ORION_TITLES = ("ray::Shard", "ray::OrchestratorWithRayShards", "ray::ServeReplica:orion")
SERVE_TITLES = ("ray::ServeController", "ray::ProxyActor")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_part(node: Node) -> dict[str, float]:
    """The host's CPU seconds split into Orion's actors, Serve's controller and proxy, and
    the rest: Ray's own processes (GCS, raylet, dashboard, agents, idle workers) and sshd.
    Orion's and Serve's parts count live processes only: a killed one's time stays in the
    host's total, so after a fault it shows as Ray's."""
    parts = {"orion": 0.0, "serve": 0.0}
    for pid in cgroup_pids(node):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue  # gone meanwhile
        used = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
        if title.startswith(ORION_TITLES):
            parts["orion"] += used
        elif title.startswith(SERVE_TITLES):
            parts["serve"] += used
    parts["ray"] = max(0.0, cpu_seconds(node) - parts["orion"] - parts["serve"])
    return {k: round(v, 1) for k, v in parts.items()}
