"""cluster/: Ray's own validator accepts every `ray up` file, Serve's schema the Serve config,
and the Serve config is what `serve build` writes for the code as it is now.

Ray and Serve are imported in subprocesses: importing Ray into the test process hangs later
Ray drivers (see tests/unit/test_collection.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
RAY_UP_FILES = ["orion.yaml", "orion-aws.yaml"]
TIMEOUT_S = 120

VALIDATE = """
import copy, sys, yaml
from ray.autoscaler._private.commands import prepare_config
from ray.autoscaler._private.util import validate_config
validate_config(prepare_config(copy.deepcopy(yaml.safe_load(sys.stdin))))
"""


def _python(code: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("name", RAY_UP_FILES)
def test_ray_accepts_each_cluster_file(name: str) -> None:
    """`ray up`'s own preparation and schema validation pass on the file as shipped."""
    done = _python(VALIDATE, (CLUSTER / name).read_text())
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_validator_refuses_a_broken_file() -> None:
    """Positive control: an unknown top-level key makes Ray's validator fail."""
    broken = yaml.safe_load((CLUSTER / "orion.yaml").read_text()) | {"not_a_ray_key": 1}
    assert _python(VALIDATE, yaml.safe_dump(broken)).returncode != 0


def test_cluster_files_never_run_ray_stop_and_use_orion_node_start() -> None:
    """`ray stop` matches Ray processes by name on the whole machine; nodes start Ray only
    through `orion node start` (Orion's Serve settings, the node's own address)."""
    for name in RAY_UP_FILES:
        config = yaml.safe_load((CLUSTER / name).read_text())
        commands = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
        assert not any("ray stop" in c for c in commands), name
        assert all("orion node start" in c for c in commands), name


def test_serve_config_passes_serves_schema() -> None:
    """cluster/serve.yaml is a valid ServeDeploySchema."""
    code = (
        "import sys, yaml\nfrom ray.serve.schema import ServeDeploySchema\n"
        "ServeDeploySchema.model_validate(yaml.safe_load(sys.stdin))"
    )
    done = _python(code, (CLUSTER / "serve.yaml").read_text())
    assert done.returncode == 0, done.stderr[-2000:]


def test_serve_config_is_what_serve_build_writes_now(tmp_path: Path) -> None:
    """Rebuilt from the code with `serve build` (the app named "orion"), it equals the file:
    a deployment option changed in the code without the file fails here."""
    out = tmp_path / "serve.yaml"
    serve = Path(sys.executable).parent / "serve"
    done = subprocess.run(
        [str(serve), "build", "orion.serve.deployment:app", "-o", str(out)],
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    built = yaml.safe_load(out.read_text())
    for app in built["applications"]:
        app["name"] = "orion"
    assert yaml.safe_load((CLUSTER / "serve.yaml").read_text()) == built
