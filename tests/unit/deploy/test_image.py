"""The Dockerfile and .dockerignore: the base, a non-root user, `pip install .`."""

from __future__ import annotations

import re

from tests.unit.deploy.helpers import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    found = []
    for raw in joined.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_both_stages_are_python_311_slim() -> None:
    bases = [rest.split()[0] for keyword, rest in instructions() if keyword == "FROM"]
    assert bases
    assert all(base == "python:3.11-slim" for base in bases)


def test_runs_as_a_non_root_user() -> None:
    users = [rest for keyword, rest in instructions() if keyword == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    assert instructions()[-1][0] in ("CMD", "ENTRYPOINT")
    # USER comes after the last RUN that needs root.
    last_user = max(i for i, (k, _) in enumerate(instructions()) if k == "USER")
    assert not [k for k, _ in instructions()[last_user:] if k == "RUN"]


def test_installs_the_project_with_pip() -> None:
    runs = " ".join(rest for keyword, rest in instructions() if keyword == "RUN")
    assert re.search(r"pip install (--no-deps )?\.(\s|$)", runs)
    assert ("ENTRYPOINT", '["harvester"]') in instructions()


def test_dockerignore_keeps_the_context_to_what_pip_needs() -> None:
    lines = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "**"
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert included == {"pyproject.toml", "README.md", "harvester", "workers", "schedules"}
    copied = {
        rest.split()[0]
        for keyword, rest in instructions()
        if keyword == "COPY" and "--from" not in rest
    }
    assert copied <= included
