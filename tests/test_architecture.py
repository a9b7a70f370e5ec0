"""The shape of the code (docs/architecture.md): no import circle, no oversized module, the same rooms."""
from __future__ import annotations

from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("service", "messaging", "notifications", "contactbook", "nutrition", "schedules")
DOMAINS = ("messaging", "notifications", "contactbook", "nutrition", "schedules")
MAX_LINES = 700
ROOMS = ("models", "schemas", "api", "logic", "policy", "jobs", "events")


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(*PACKAGES, include_external_packages=False)


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circle_function_local_imports_included(graph):
    # grimp reads every import statement, those inside functions too
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    class Graph:
        modules = {"a", "b", "c"}
        edges = {"a": {"b"}, "b": {"a"}, "c": {"a"}}

        def find_modules_directly_imported_by(self, m):
            return self.edges[m]

    assert _cycles(Graph()) == [["a", "b"]]


def test_no_package_module_over_700_lines():
    long = {str(p.relative_to(ROOT)): n for package in PACKAGES for p in (ROOT / package).rglob("*.py")
            if "migrations" not in p.parts and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize("package", DOMAINS)
def test_every_domain_package_has_the_rooms(package):
    """models, schemas, api, logic and policy (jobs and events where the package has some), each a module
    or a subpackage, under those names: no ``api_*.py`` / ``schemas_*.py`` beside them."""
    here = ROOT / package
    for room in ("models", "schemas", "api", "logic", "policy"):
        assert (here / f"{room}.py").exists() or (here / room / "__init__.py").exists(), f"{package} has no {room}"
    prefixed = sorted(p.name for p in here.glob("*.py")
                      if p.stem.split("_")[0] in ROOMS and p.stem not in ROOMS)
    assert prefixed == [], f"{package}: put these in their room's subpackage: {prefixed}"
