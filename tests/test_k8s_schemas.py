"""Every object of every kustomization validates against its schema, offline.

Core kinds against the Kubernetes OpenAPI schemas that kubernetes-validate bundles (strict: unknown fields
are errors, as with ``kubectl apply --validate=strict``), at the oldest and newest Kubernetes versions
checked; Strimzi, KEDA and Prometheus Operator objects against their CRDs' schemas vendored in
k8s/schemas/ (source, tag and commit in each file), made strict the same way.
"""
from __future__ import annotations

import copy
import functools
import json

import jsonschema
import kubernetes_validate
import pytest

from k8s_manifests import K8S, KUSTOMIZATIONS, examples, only, rendered

KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
SCHEMAS = K8S / "schemas"


def _strict(schema: dict) -> dict:
    """Reject fields the schema does not name, where the API server would: objects with ``properties`` and
    neither ``additionalProperties`` nor ``x-kubernetes-preserve-unknown-fields``."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(item) for item in schema]
    return schema


@functools.lru_cache(maxsize=None)
def _crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    validators = {}
    for path in SCHEMAS.glob("*.json"):
        vendored = json.loads(path.read_text())
        assert {"repository", "tag", "commit", "path", "licence"} <= vendored["source"].keys(), path.name
        schema = _strict(vendored["openAPIV3Schema"])
        validators[(vendored["apiVersion"], vendored["kind"])] = jsonschema.Draft7Validator(schema)
    return validators


def schema_errors(obj: dict) -> list[str]:
    """What is wrong with ``obj`` against its schema; empty when it validates."""
    name = f"{obj['kind']}/{obj['metadata']['name']}"
    crd = _crd_validators().get((obj["apiVersion"], obj["kind"]))
    if crd is not None:
        return [f"{name}: {'.'.join(map(str, e.absolute_path))}: {e.message}" for e in crd.iter_errors(obj)]
    errors = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{name} (Kubernetes {version}): {'.'.join(map(str, error.path))}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{name}: {error.message} and no CRD schema in k8s/schemas/")
    return errors


@pytest.mark.parametrize("directory", KUSTOMIZATIONS)
def test_every_rendered_object_validates_against_its_schema(directory: str) -> None:
    objects = rendered(directory)
    assert objects
    assert [error for obj in objects for error in schema_errors(obj)] == []


def test_the_examples_validate_against_their_schemas() -> None:
    assert [error for obj in examples() for error in schema_errors(obj)] == []


def test_the_strimzi_overlay_uses_every_vendored_schema() -> None:
    kinds = {(o["apiVersion"], o["kind"]) for o in rendered("overlays/strimzi")}
    assert set(_crd_validators()) <= kinds


def test_validation_rejects_a_misspelt_field_and_a_wrong_type() -> None:
    objects = rendered("overlays/strimzi")
    deployment = copy.deepcopy(only(objects, "Deployment"))
    deployment["spec"]["replica"] = 2
    topic = copy.deepcopy(only(objects, "KafkaTopic", "mentions.raw"))
    topic["spec"]["partitions"] = "12"
    user = copy.deepcopy(only(objects, "KafkaUser", "ascolta-worker"))
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Reed"]
    scaled = copy.deepcopy(only(objects, "ScaledObject"))
    scaled["spec"]["minReplicas"] = 1
    for broken in (deployment, topic, user, scaled):
        assert schema_errors(broken), broken["kind"]
