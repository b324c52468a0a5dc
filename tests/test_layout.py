"""The tree keeps its shape: domain packages stay free of the web layer, modules stay small
(DESIGN.md "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"
DOMAINS = (
    "infobip",
    "launch",
    "reports",
    "lookups",
    "accounts",
    "openapi",
    "simulator",
    "callbacks",
    "compliance",
)
# What a domain package never imports: the web framework and the layers above the domains.
FORBIDDEN = ("flask", "werkzeug", "app.web", "app.cli", "app.services")
# werkzeug outside the web layer, where it is not the web framework, each with its reason.
SERVER = "the fake Infobip is an HTTP server of its own"
WERKZEUG_USES: dict[str, tuple[tuple[str, ...], str]] = {
    "accounts/tokens.py": (("werkzeug.security",), "password hashing, no request involved"),
    "simulator/faults.py": (("werkzeug.wrappers",), SERVER),
    "simulator/logs.py": (("werkzeug.wrappers",), SERVER),
    "simulator/pulls.py": (("werkzeug.wrappers",), SERVER),
    "simulator/server.py": (("werkzeug.serving", "werkzeug.wrappers"), SERVER),
}
MAX_LINES = 400
# Modules allowed past MAX_LINES, each with its reason. None at present.
LONG_MODULES: dict[str, str] = {}


def domain_modules() -> list[Path]:
    """Every Python module of the domain packages that exist."""
    return sorted(
        path for name in DOMAINS if (APP / name).is_dir() for path in (APP / name).rglob("*.py")
    )


def imported_names(source: str, package: str) -> list[str]:
    """Every module a source imports, anywhere in it, by its absolute dotted name."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the file's package
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}".rstrip(".")
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names)  # from app import web
    return names


def forbidden_imports(path: Path) -> list[str]:
    """The names a domain module imports that it must not (its stated werkzeug use aside)."""
    name = str(path.relative_to(APP))
    package = ".".join(path.relative_to(APP.parent).parts[:-1])
    allowed = WERKZEUG_USES.get(name, ((), ""))[0]
    found = {n for n in imported_names(path.read_text(), package) if forbidden(n)}
    return sorted(n for n in found if not n.startswith(allowed))


def forbidden(name: str) -> bool:
    """Say whether an imported name is one a domain package must not import."""
    return any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN)


def test_the_domain_packages_are_found() -> None:
    modules = {path.parent.name for path in domain_modules()}
    assert {"infobip", "launch", "reports", "lookups", "simulator"} <= modules


@pytest.mark.parametrize("path", domain_modules(), ids=lambda p: str(p.relative_to(APP)))
def test_domain_modules_import_neither_the_web_layer_nor_the_cli(path: Path) -> None:
    found = forbidden_imports(path)
    assert found == [], f"app/{path.relative_to(APP)} imports {', '.join(found)}"


def test_no_module_passes_400_lines() -> None:
    long = {}
    for path in sorted(APP.rglob("*.py")):
        name = str(path.relative_to(APP.parent))
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES and name not in LONG_MODULES:
            long[name] = lines
    assert long == {}, f"split these modules (or name them in LONG_MODULES with a reason): {long}"
    stale = [name for name in LONG_MODULES if not (APP.parent / name).exists()]
    assert stale == []


def test_the_stated_werkzeug_uses_are_still_there() -> None:
    for name, (prefixes, _) in WERKZEUG_USES.items():
        path = APP / name
        package = ".".join(path.relative_to(APP.parent).parts[:-1])
        names = imported_names(path.read_text(), package)
        for prefix in prefixes:
            assert any(n.startswith(prefix) for n in names), (name, prefix)


def test_the_layout_check_sees_every_way_to_import() -> None:
    source = (
        "import flask\nfrom werkzeug.exceptions import NotFound\nfrom app import web\n"
        "from ..cli import commands\nimport app.services\nfrom . import parse\n"
        "def later():\n    from app.web.errors import ApiError\n"
    )
    found = sorted({name for name in imported_names(source, "app.reports") if forbidden(name)})
    assert found == [
        "app.cli",
        "app.cli.commands",
        "app.services",
        "app.web",
        "app.web.errors",
        "app.web.errors.ApiError",
        "flask",
        "werkzeug.exceptions",
        "werkzeug.exceptions.NotFound",
    ]
    assert "app.reports.parse" in imported_names(source, "app.reports")
