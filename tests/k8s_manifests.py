"""The Kubernetes manifests as a cluster would get them: every kustomization rendered by ``kubectl kustomize``.

Shared by the tests/test_k8s*.py modules. Without kubectl the tests that render skip, except in CI
(``CI=true``), where .ci/run installs it and a missing kubectl must fail rather than pass quietly.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "k8s"
OVERLAYS = ("dev", "strimzi")
# Every directory holding a kustomization: the overlays and the layers they are built from.
KUSTOMIZATIONS = ("base", "kafka", "monitoring", *(f"overlays/{name}" for name in OVERLAYS))
# Those that deploy the workers (all but the monitoring layer).
WORKER_KUSTOMIZATIONS = tuple(name for name in KUSTOMIZATIONS if name != "monitoring")


def kubectl() -> str:
    """Path of kubectl, or skip (fail in CI) with the reason."""
    found = shutil.which("kubectl")
    if found is None:
        message = "kubectl is not installed: the manifests are not rendered (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@functools.lru_cache(maxsize=None)
def _rendered(directory: str) -> tuple[dict, ...]:
    result = subprocess.run([kubectl(), "kustomize", str(K8S / directory)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"kubectl kustomize k8s/{directory} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def rendered(directory: str) -> list[dict]:
    """The objects ``kubectl kustomize k8s/<directory>`` prints (fresh copies: tests may change them)."""
    return yaml.safe_load(yaml.safe_dump(list(_rendered(directory))))


def examples() -> list[dict]:
    """The objects in k8s/examples/, applied by hand (k8s/README.md), in no kustomization."""
    return [doc for path in sorted((K8S / "examples").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())
            if doc]


def only(objects: list[dict], kind: str, name: str | None = None) -> dict:
    """The one object of ``kind`` (and ``name``)."""
    (found,) = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    return found


def every(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]
