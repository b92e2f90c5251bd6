"""The Client-Server operations of the Matrix spec's OpenAPI files, with their `$ref`s inlined,
and which of them the server implements (matched against `homeserver.routes.ROUTES`).

The OpenAPI files (tests/matrix-spec/data/api/client-server/*.yaml) point at schemas in other
files with relative `$ref`s; `inline_refs` replaces each by its target so that one operation's
parameters, request body and responses are plain JSON Schemas that jsonschema and
hypothesis-jsonschema understand."""

import functools
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from homeserver.routes import ROUTES, Endpoint

SPEC_DIR = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "matrix-spec", "data", "api", "client-server"
)
METHODS = ("get", "put", "post", "delete")
# Path parameters that the server only routes for some values: one such value, to find the route.
ROUTE_PROBES = {"keyName": "displayname"}
# Keys that only document a schema; dropped so generators and validators never see them.
DOC_KEYS = {"example", "examples", "description", "title", "x-addedInMatrixVersion",
            "x-changedInMatrixVersion"}


@functools.cache
def load_yaml(path: str) -> Any:
    with open(path) as f:
        return yaml.safe_load(f)


def inline_refs(node: Any, base_file: str, stack: tuple[str, ...] = ()) -> Any:
    """`node` with every `$ref` (to another file, or a `#/...` pointer) replaced by its target.
    A reference back into one that is being inlined (a recursive schema) becomes `{}`."""
    if isinstance(node, list):
        return [inline_refs(item, base_file, stack) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        file_part, _, pointer = str(node["$ref"]).partition("#")
        target_file = (
            os.path.normpath(os.path.join(os.path.dirname(base_file), file_part)) if file_part else base_file
        )
        key = f"{target_file}#{pointer}"
        if key in stack:
            return {}
        target = load_yaml(target_file)
        for part in (p for p in pointer.split("/") if p):
            target = target[part]
        resolved = inline_refs(target, target_file, (*stack, key))
        siblings = {k: v for k, v in node.items() if k != "$ref" and k not in DOC_KEYS}
        if siblings and isinstance(resolved, dict):
            resolved = {**resolved, **inline_refs(siblings, base_file, stack)}
        return resolved
    return {k: inline_refs(v, base_file, stack) for k, v in node.items() if k not in DOC_KEYS}


@dataclass
class Parameter:
    name: str
    location: str  # "path", "query" or "header"
    required: bool
    schema: dict[str, Any]


@dataclass
class Operation:
    """One method on one path of the spec."""

    api_file: str
    method: str  # upper case
    path: str  # the full path template, e.g. /_matrix/client/v3/rooms/{roomId}/state
    operation_id: str
    parameters: list[Parameter]
    body_schema: dict[str, Any] | None
    body_required: bool
    requires_auth: bool
    # Status code -> the JSON Schema of its application/json body (None: the spec gives none).
    responses: dict[int, dict[str, Any] | None] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.method} {self.path} ({self.api_file})"

    def path_parameters(self) -> list[Parameter]:
        return [p for p in self.parameters if p.location == "path"]

    def query_parameters(self) -> list[Parameter]:
        return [p for p in self.parameters if p.location == "query"]


def _base_path(document: dict[str, Any]) -> str:
    server = (document.get("servers") or [{}])[0]
    return str(server.get("variables", {}).get("basePath", {}).get("default", ""))


def _json_schema(content: dict[str, Any] | None) -> dict[str, Any] | None:
    if not content or "application/json" not in content:
        return None
    schema = content["application/json"].get("schema")
    return schema if isinstance(schema, dict) else None


def _requires_auth(operation: dict[str, Any], document: dict[str, Any]) -> bool:
    """Whether every security alternative needs a token (`{}` in the list means optional)."""
    security = operation.get("security", document.get("security"))
    if not security:
        return False
    return all(bool(alternative) for alternative in security)


@functools.cache
def load_operations() -> tuple[Operation, ...]:
    """Every Client-Server operation of the spec, sorted by path and method."""
    operations: list[Operation] = []
    for filename in sorted(os.listdir(SPEC_DIR)):
        if not filename.endswith(".yaml"):
            continue
        file_path = os.path.join(SPEC_DIR, filename)
        document = load_yaml(file_path)
        if not isinstance(document, dict) or "paths" not in document:
            continue
        base = _base_path(document)
        for raw_path, item in document["paths"].items():
            # The spec tells apart two operations on one path with a trailing space.
            path = raw_path.strip()
            shared_params = item.get("parameters", [])
            for method in METHODS:
                if method not in item:
                    continue
                raw = inline_refs(item[method], file_path)
                params = [
                    Parameter(p["name"], p["in"], bool(p.get("required")), p.get("schema") or {})
                    for p in [*inline_refs(shared_params, file_path), *raw.get("parameters", [])]
                ]
                body = raw.get("requestBody") or {}
                responses: dict[int, dict[str, Any] | None] = {}
                for status, response in (raw.get("responses") or {}).items():
                    if str(status).isdigit():
                        responses[int(status)] = _json_schema(response.get("content"))
                operations.append(Operation(
                    api_file=filename,
                    method=method.upper(),
                    path=base + path,
                    operation_id=str(raw.get("operationId", "")),
                    parameters=params,
                    body_schema=_json_schema(body.get("content")),
                    body_required=bool(body.get("required")),
                    requires_auth=_requires_auth(item[method], document),
                    responses=responses,
                ))
    return tuple(sorted(operations, key=lambda op: (op.path, op.method)))


def route_for(operation: Operation) -> Endpoint | None:
    """The server's endpoint for `operation`, or None when the server does not implement it.
    Each path parameter is filled with a plain word, which every `[^/]+` group accepts; a
    parameter that the server restricts to a set of words (e.g. the membership action or the
    profile field) is spelled out in the spec's path already."""
    concrete = re.sub(r"\{([^}]+)\}", lambda m: ROUTE_PROBES.get(m.group(1), "fuzz"), operation.path)
    for endpoint in ROUTES:
        if endpoint.resource == "client" and operation.method in endpoint.methods and re.match(
            endpoint.pattern, concrete
        ):
            return endpoint
    return None


if __name__ == "__main__":
    for op in load_operations():
        route = route_for(op)
        print(f"{'FUZZ' if route else 'skip'} {op.id:90} {op.api_file} {route.name if route else ''}")
