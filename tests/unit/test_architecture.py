"""The import rules of DESIGN.md: harvester imports nothing of ours outside itself, and so on."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ALLOWED = {
    "harvester": {"harvester"},
    "workers": {"harvester", "workers"},
    "schedules": {"harvester", "workers", "schedules"},
}
OURS = {"harvester", "workers", "schedules", "tests", "benchmarks"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    offenders = {}
    for path in sorted((REPO / package).rglob("*.py")):
        bad = imported_packages(path) - ALLOWED[package]
        if bad:
            offenders[str(path.relative_to(REPO))] = sorted(bad)
    assert offenders == {}


def test_celery_tasks_are_thin() -> None:
    """A task body is a few lines: no boto3 or SQLAlchemy in workers/tasks.py."""
    tasks = REPO / "workers" / "tasks.py"
    imports = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(tasks.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert not imports & {"boto3", "botocore", "sqlalchemy"}
