"""`orion node start` (a cluster node's Ray, with Orion's settings) and `orion lab ...` (a
multi-node cluster on this machine, in network namespaces). Added by `register`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from orion import node as node_module
from orion.config import ConfigError, Settings, get_settings
from orion.lab import commands as lab
from orion.lab import net

T = TypeVar("T")
EXIT_FAILED = 1


def register(app: typer.Typer) -> None:
    node_app = typer.Typer(no_args_is_help=True, help="One machine of a Ray cluster.")
    node_app.command("start", context_settings={"allow_extra_args": True})(node_start)
    app.add_typer(node_app, name="node")
    lab_app = typer.Typer(no_args_is_help=True, help="A multi-node cluster on this machine.")
    for name, command in (
        ("up", lab_up), ("status", lab_status), ("kill-node", lab_kill_node),
        ("partition", lab_partition), ("heal", lab_heal), ("down", lab_down), ("env", lab_env),
    ):  # fmt: skip
        lab_app.command(name)(command)
    app.add_typer(lab_app, name="lab")


def node_start(
    ctx: typer.Context,
    head: Annotated[bool, typer.Option("--head", help="Start the cluster's head.")] = False,
    address: Annotated[
        str | None, typer.Option(help="The head's HOST:PORT, for a worker node.")
    ] = None,
    node_ip: Annotated[str | None, typer.Option(help="This node's address.")] = None,
) -> None:
    """Start Ray on this node with Orion's settings; arguments after `--` go to `ray start`."""
    if head == (address is not None):
        typer.echo("orion: give exactly one of --head or --address", err=True)
        raise typer.Exit(EXIT_FAILED)
    _run(lambda s: node_module.start(s, node_ip or node_module.node_address(), address, ctx.args))


def lab_up(
    nodes: Annotated[int, typer.Option(help="Nodes in the cluster (the first is the head).")] = 3,
    orchestrators: Annotated[int, typer.Option(help="Orchestrators in the group.")] = 1,
    api_replicas: Annotated[int, typer.Option(help="API replicas (one per node).")] = 1,
) -> None:
    """Build the lab and deploy Orion on it with `ray up` and `ray exec`."""
    shape = lab.LabShape(nodes, orchestrators, api_replicas)
    took = _run(lambda s: lab.up(s, shape, typer.echo))
    typer.echo(f"lab up in {took:.0f} s; API: {lab.api_url()}")
    typer.echo('point orion at it: eval "$(orion lab env)"')


def lab_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The lab's API address and, per node, whether it is alive and what runs there."""
    report = _run(lab.status)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(f"api: {report['api']}")
    for n in report["nodes"]:
        kinds = ", ".join(sorted(a["kind"] for a in n["actors"])) or "-"
        state = ("alive" if n["alive"] else "dead") + ("" if n["linked"] else ", cut off")
        head = " (head)" if n["head"] else ""
        typer.echo(f"{n['name']}{head} {n['address']}: {state}; {kinds}")


def lab_kill_node(name: Annotated[str, typer.Argument(help="n1, n2, ...")]) -> None:
    """kill -9 every process of the node and cut its link."""
    _run(lambda s: lab.kill_node(s, name))


def lab_partition(name: Annotated[str, typer.Argument(help="n1, n2, ...")]) -> None:
    """Cut the node's link to the others (its processes live on)."""
    _run(lambda s: lab.partition(s, name))


def lab_heal(name: Annotated[str, typer.Argument(help="n1, n2, ...")]) -> None:
    """Restore the node's link."""
    _run(lambda s: lab.heal(s, name))


def lab_down() -> None:
    """Remove every namespace, bridge, process and file the lab made."""
    _run(lambda s: lab.down(s, typer.echo))


def lab_env() -> None:
    """Shell exports that point `orion accounts seed` and `orion audit` at the lab."""
    for line in lab.env_lines():
        typer.echo(line)


def _run(action: Callable[[Settings], T]) -> T:
    try:
        return action(get_settings())
    except (ConfigError, RuntimeError, ValueError, net.NetError, node_module.NodeError) as err:
        typer.echo(f"orion: {err}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
