from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import truncate_all
from tests.integration.notify.helpers import makers
from tests.integration.notify.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    """Sessions on a database of their own (the dispatcher commits as production does)."""
    engine: Engine = request.getfixturevalue(
        f"{'sqlite' if request.param == 'sqlite' else 'pg'}_engine"
    )
    if request.param == "postgresql":
        truncate_all(engine)
    yield makers(engine)
    if request.param == "postgresql":
        truncate_all(engine)
