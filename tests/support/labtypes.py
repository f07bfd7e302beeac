"""The JupyterLab extension's message types (``labextension/src/types.ts``) as a JSON Schema,
generated from the TypeScript by ``ts-json-schema-generator`` (the labextension's dev dependency),
and a checker that validates a server's answers against it and records which declared fields it
saw. ``tests/e2e/test_lab_types.py`` and the kernel tests use it."""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import jsonschema

from tests.support.harness import ROOT

LAB = ROOT / "labextension"
GENERATOR = LAB / "node_modules" / ".bin" / "ts-json-schema-generator"


@functools.cache
def lab_schema() -> dict[str, Any]:
    """The schema of types.ts, generated once per test process."""
    assert GENERATOR.exists(), (
        f"{GENERATOR} is missing: scripts/setup installs the labextension's npm packages"
    )
    out = Path(tempfile.mkdtemp(prefix="coflux-lab-types-")) / "types.schema.json"
    subprocess.run(
        [
            str(GENERATOR),
            "--path",
            "src/types.ts",
            "--tsconfig",
            "tsconfig.json",
            "--type",
            "*",
            "--no-type-check",
            "--out",
            str(out),
        ],
        cwd=LAB,
        check=True,
        capture_output=True,
        timeout=120,
    )
    data: dict[str, Any] = json.loads(out.read_text())
    return data


class Checker:
    """Validates instances against a definition and records, for every definition met on the way
    (nested ones included), which of its declared properties the server sent."""

    def __init__(self, schema: dict[str, Any] | None = None) -> None:
        self.definitions: dict[str, Any] = (schema or lab_schema())["definitions"]
        self.seen: dict[str, set[str]] = defaultdict(set)

    def _validator(self, node: dict[str, Any]) -> jsonschema.Draft7Validator:
        return jsonschema.Draft7Validator({**node, "definitions": self.definitions})

    def check(self, definition: str, instance: Any) -> None:
        assert definition in self.definitions, f"types.ts declares no {definition}"
        node = {"$ref": f"#/definitions/{definition}"}
        errors = [_deepest(e) for e in self._validator(node).iter_errors(instance)]
        assert not errors, f"{definition} disagrees with the server: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message[:300]}" for e in errors[:5]
        )
        self._walk(node, instance, None)

    def _walk(self, node: dict[str, Any], instance: Any, name: str | None) -> None:
        if "$ref" in node:
            ref = node["$ref"].rsplit("/", 1)[-1]
            self._walk(self.definitions[ref], instance, ref)
            return
        for branch in node.get("anyOf", []):
            if self._validator(branch).is_valid(instance):
                self._walk(branch, instance, name)
                return
        if isinstance(instance, dict) and "properties" in node:
            if name is not None:
                self.seen[name].update(k for k in instance if k in node["properties"])
            for key, value in instance.items():
                if key in node["properties"]:
                    self._walk(node["properties"][key], value, None)
        if isinstance(instance, list) and isinstance(node.get("items"), dict):
            for item in instance:
                self._walk(node["items"], item, None)

    def unseen(
        self, names: set[str] | None = None, leave_out: frozenset[str] = frozenset()
    ) -> dict[str, set[str]]:
        """Declared properties the server never sent, of the object definitions ``names`` (default:
        all but ``leave_out``)."""
        missing = {}
        for name, node in self.definitions.items():
            declared = set(node.get("properties", {}))
            if declared and (name in names if names is not None else name not in leave_out):
                left = declared - self.seen.get(name, set())
                if left:
                    missing[name] = left
        return missing


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """The most specific cause of an ``anyOf`` failure (``Step[] | null`` fails as a whole)."""
    while error.context:
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return error
