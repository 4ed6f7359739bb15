"""The layers of the code, read from the imports with `ast`: each module imports only from its
own layer or the layers below, no import cycle, and no function-level import of a gateway
module (outside cli/, whose commands load only what they run). README "Layout"."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "workers")

# Lowest first. A module belongs to the layer of the longest prefix naming it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("values", ("gateway", "gateway.settings", "gateway.clock", "gateway.notices", "gateway.addresses",
                "gateway.display", "gateway.dispositions", "gateway.status_links")),
    ("core", ("gateway.mail", "gateway.cases", "gateway.rights", "gateway.authentication", "gateway.config",
              "gateway.dnsrecords")),
    ("data", ("gateway.models", "gateway.db", "gateway.store", "gateway.outage", "gateway.sent_journal",
              "gateway.evidence", "gateway.export", "gateway.migrations")),
    ("outbox", ("gateway.outbox",)),
    ("casework", ("gateway.casework", "gateway.quarantine")),
    ("shell", ("gateway.pipeline", "gateway.sisimai", "gateway.process_memory", "gateway.trace", "gateway.delivery", "gateway.transport", "gateway.ingress",
               "gateway.health", "gateway.metrics", "gateway.importer", "gateway.reports", "gateway.repair",
               "gateway.webhooks", "gateway.http")),
    ("entry", ("gateway.cli", "workers")),
)
RANK = {prefix: rank for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes}
NAMES = [name for name, _ in LAYERS]
# Function-level imports of gateway modules are allowed in cli/ only (a command loads what it
# runs; workers/ binds its actors to the broker once it exists). The two in
# gateway/mail/bounces/ are listed, not hidden: that package is being reworked separately.
LOCAL_IMPORTS_ALLOWED = ("gateway.cli",)
KNOWN_LOCAL_IMPORTS = {("gateway.mail.bounces", "gateway.mail.classify"),
                       ("gateway.mail.bounces.dsn", "gateway.mail.bounces.textual")}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def layer_of(module: str) -> int:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in RANK:
            return RANK[prefix]
    raise KeyError(module)


def _target(name: str) -> str | None:
    """The project module an import names (a name imported from a package may be a module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> tuple[set[str], set[str]]:
    """(module-level imports, function-level imports) of project modules by `module`."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    top, local = set(), set()

    def names(node) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        if node.level:  # relative imports are not used in this project
            raise AssertionError(f"{module}: relative import")
        return [f"{node.module}.{alias.name}" for alias in node.names]

    def visit(node, inside_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for name in names(child):
                    if name.split(".")[0] in PACKAGES and (target := _target(name)) and target != module:
                        (local if inside_function else top).add(target)
            visit(child, inside_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return top, local


GRAPH = {module: imports(module) for module in MODULES}


def test_every_module_has_a_layer():
    assert [m for m in MODULES if not _has_layer(m)] == []


def _has_layer(module: str) -> bool:
    try:
        layer_of(module)
    except KeyError:
        return False
    return True


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    own = layer_of(module)
    top, local = GRAPH[module]
    upward = sorted(f"{target} ({NAMES[layer_of(target)]})" for target in top | local if layer_of(target) > own)
    assert upward == [], f"{module} ({NAMES[own]}) imports from a higher layer"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_function_level_import(module):
    if module.startswith(LOCAL_IMPORTS_ALLOWED):
        return
    _, local = GRAPH[module]
    assert sorted(t for t in local if t.startswith("gateway") and (module, t) not in KNOWN_LOCAL_IMPORTS) == []


def test_no_import_cycle():
    """Depth-first over module-level imports; a back edge is a cycle."""
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def walk(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(GRAPH[module][0]):
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                walk(target)
        stack.pop()
        state[module] = 2

    for module in sorted(MODULES):
        if module not in state:
            walk(module)
    assert cycles == []


def test_the_checks_see_a_cycle_and_an_upward_import():
    """The reader itself: an import named from a package resolves to the module it names."""
    assert _target("gateway.casework.record.move") == "gateway.casework.record"
    assert layer_of("gateway.casework.party_mail") > layer_of("gateway.outbox.mailer") > layer_of("gateway.store")
    assert layer_of("gateway.cases.machine") < layer_of("gateway.store")
