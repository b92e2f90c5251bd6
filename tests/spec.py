"""Validate response bodies against the Matrix spec's OpenAPI files (tests/matrix-spec/data)."""

import functools
import os
from typing import Any

import jsonschema
import yaml

SPEC_DIR = os.path.join(os.path.dirname(__file__), "matrix-spec", "data", "api", "client-server")


@functools.cache
def _load(path: str) -> Any:
    with open(path) as f:
        return yaml.safe_load(f)


def _resolve(node: Any, base_file: str, document: Any) -> Any:
    """Inline every $ref (relative files and `#/...` pointers) so jsonschema sees one schema."""
    if isinstance(node, list):
        return [_resolve(item, base_file, document) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        file_part, _, pointer = ref.partition("#")
        target_file = os.path.normpath(os.path.join(os.path.dirname(base_file), file_part)) if file_part else base_file
        target_doc = _load(target_file)
        target = target_doc
        for part in [p for p in pointer.split("/") if p]:
            target = target[part]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        resolved = _resolve(target, target_file, target_doc)
        if siblings and isinstance(resolved, dict):
            resolved = {**resolved, **_resolve(siblings, base_file, document)}
        return resolved
    return {k: _resolve(v, base_file, document) for k, v in node.items() if k not in ("example", "examples")}


def response_schema(api_file: str, path: str, method: str, status: int) -> dict[str, Any]:
    """The JSON schema of the response `status` of `method path` in `api_file` (e.g. login.yaml)."""
    file_path = os.path.join(SPEC_DIR, api_file)
    document = _load(file_path)
    operation = document["paths"][path][method.lower()]
    response = operation["responses"][str(status)]
    response = _resolve(response, file_path, document)
    return response["content"]["application/json"]["schema"]  # type: ignore[no-any-return]


def assert_matches_spec(body: Any, api_file: str, path: str, method: str, status: int) -> None:
    schema = response_schema(api_file, path, method, status)
    jsonschema.Draft202012Validator(schema).validate(body)
