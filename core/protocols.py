"""Small interfaces for the collaborators layers hand each other, so no signature says `Any`."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Engine

from core.config import Config


class Runtime(Protocol):
    """What surfaces and handlers need from the running service (hallmonitor.service.Service)."""

    config: Config
    engine: Engine

    def health(self) -> dict[str, Any]:
        """Per-source health and the outbox backlog, as /healthz shows it."""
        ...

    async def deliver_updates(self, item_id: int | None) -> None:
        """Update every posted copy of an item's card now (after an action), instead of at the next tick."""
        ...
