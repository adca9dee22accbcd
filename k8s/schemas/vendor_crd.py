"""Vendor the served version's openAPIV3Schema of a CustomResourceDefinition, with where it came from.

The manifests are validated offline against these files (tests/test_k8s_schemas.py), so each one names its
repository, path, tag and commit: refreshing a schema is re-running this on the newer CRD file.

    git --git-dir=MIRROR show TAG:PATH | python k8s/schemas/vendor_crd.py --repository OWNER/NAME \
        --tag TAG --commit SHA --path PATH --licence Apache-2.0
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

SCHEMAS = Path(__file__).resolve().parent


def vendored(crd: dict, source: dict[str, str]) -> tuple[str, dict]:
    """File name and content for the one served version of ``crd``."""
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    (version,) = [v for v in crd["spec"]["versions"] if v.get("served")]
    content = {
        "source": source,
        "apiVersion": f"{group}/{version['name']}",
        "kind": kind,
        "openAPIV3Schema": version["schema"]["openAPIV3Schema"],
    }
    return f"{group}_{version['name']}_{kind}.json", content


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", required=True, help="owner/name on GitHub")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--commit", required=True, help="the tag's commit")
    parser.add_argument("--path", required=True, help="the CRD file's path in the repository")
    parser.add_argument("--licence", required=True, help="the repository's licence (SPDX)")
    args = parser.parse_args(argv)
    source = {"repository": args.repository, "tag": args.tag, "commit": args.commit, "path": args.path,
              "licence": args.licence}
    crds = [d for d in yaml.safe_load_all(sys.stdin) if d and d.get("kind") == "CustomResourceDefinition"]
    if not crds:
        print("no CustomResourceDefinition on stdin", file=sys.stderr)
        return 2
    for crd in crds:
        name, content = vendored(crd, source)
        (SCHEMAS / name).write_text(json.dumps(content, indent=1, sort_keys=True) + "\n")
        print(f"wrote k8s/schemas/{name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
