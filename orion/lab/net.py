"""The lab's network: a bridge in the root namespace, one namespace per host, a veth link each.

Guarantees: only names the lab owns are created or removed (the `orionlab0` bridge, the
`orion-lab-*` namespaces, their `olab-*` links); every step is idempotent, so `up` after a
half-failed `up`, and `down` after anything, converge. Forwarding is not touched: the hosts
reach each other and the root namespace over the bridge, and nothing else.
"""

from __future__ import annotations

import subprocess

from orion.lab.layout import BRIDGE, PREFIX_LEN, ROOT_ADDRESS, Node

IP_TIMEOUT_S = 10.0  # `ip` acts at once; a hang means something is badly wrong


class NetError(RuntimeError):
    """An `ip` command failed; the message carries its stderr."""


def ip(*args: str, namespace: str | None = None, check: bool = True) -> str:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    argv = [*prefix, "ip", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=False)
    if check and done.returncode != 0:
        raise NetError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def namespaces() -> set[str]:
    return {line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()}


def links() -> set[str]:
    return {line.split(":")[1].strip().split("@")[0] for line in ip("-o", "link").splitlines()}


def ensure_bridge() -> None:
    if BRIDGE not in links():
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{ROOT_ADDRESS}/{PREFIX_LEN}", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")


def ensure_host(node: Node) -> None:
    """The node's namespace, linked to the bridge, with its address; loopback up."""
    if node.namespace not in namespaces():
        ip("netns", "add", node.namespace)
    if node.host_link not in links():
        inner = f"{node.host_link}-i"
        ip("link", "add", node.host_link, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", node.namespace)
        ip("link", "set", inner, "name", "eth0", namespace=node.namespace)
        ip("addr", "add", f"{node.address}/{PREFIX_LEN}", "dev", "eth0", namespace=node.namespace)
        ip("link", "set", node.host_link, "master", BRIDGE)
    ip("link", "set", "lo", "up", namespace=node.namespace)
    ip("link", "set", "eth0", "up", namespace=node.namespace)
    ip("link", "set", node.host_link, "up")


def cut(node: Node) -> None:
    """Partition: the node's link to the bridge goes down (its processes live on)."""
    if node.host_link in links():
        ip("link", "set", node.host_link, "down")


def heal(node: Node) -> None:
    if node.host_link in links():
        ip("link", "set", node.host_link, "up")


def remove_host(node: Node) -> None:
    if node.host_link in links():
        ip("link", "del", node.host_link)  # removes its peer inside the namespace too
    if node.namespace in namespaces():
        ip("netns", "del", node.namespace)


def remove_bridge() -> None:
    if BRIDGE in links():
        ip("link", "del", BRIDGE)


def linked(node: Node) -> bool:
    """True when the node's link to the bridge is up."""
    if node.host_link not in links():
        return False
    return "state UP" in ip("link", "show", node.host_link) or ",UP" in ip(
        "link", "show", node.host_link
    )
