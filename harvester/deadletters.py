"""Dead letters: messages we stopped retrying, recorded for an operator to look at."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from harvester.db.models import DeadLetter
from harvester.runtime import Runtime

_MAX_ARGS_CHARS = 4000


def _summarize(args: list[Any]) -> str:
    # Score batches are bytes of events: keep their size, not their content.
    safe = [f"<{len(a)} bytes>" if isinstance(a, bytes | bytearray) else a for a in args]
    return orjson.dumps(safe, default=str).decode()[:_MAX_ARGS_CHARS]


def record_dead_letter(
    rt: Runtime, *, task: str, task_id: str, args: list[Any], reason: str
) -> None:
    with rt.sessions.begin() as session:
        session.add(
            DeadLetter(
                task=task,
                task_id=task_id,
                args=_summarize(args),
                reason=reason,
                created_at=rt.clock(),
            )
        )


def list_dead_letters(session: Session, *, limit: int = 100) -> list[DeadLetter]:
    query = select(DeadLetter).order_by(DeadLetter.created_at.desc()).limit(limit)
    return list(session.scalars(query))
