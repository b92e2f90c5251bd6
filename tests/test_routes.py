"""The route table: every servlet it names exists, and docs/endpoints.md matches it."""

import os

from homeserver.routes import ROUTES, endpoint_table_markdown

DOCS = os.path.join(os.path.dirname(__file__), "..", "docs", "endpoints.md")


def test_every_route_names_a_servlet_with_its_methods() -> None:
    for endpoint in ROUTES:
        servlet = endpoint.servlet_class()
        for method in endpoint.methods:
            assert hasattr(servlet, f"on_{method}"), f"{endpoint.name}: {servlet.__name__} lacks on_{method}"


def test_route_names_are_unique() -> None:
    names = [e.name for e in ROUTES]
    assert len(names) == len(set(names))


def test_endpoint_docs_are_current() -> None:
    with open(DOCS) as f:
        assert f.read() == endpoint_table_markdown(), "run: python -m homeserver.routes > docs/endpoints.md"
