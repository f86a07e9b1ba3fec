"""Tables. Timestamps are timezone-aware UTC; the school's zone is for display
and deadlines only. Unique constraints do the deduplication."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import JSONType, SafeString, SafeText, UTCDateTime, utcnow


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class School(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    name: str
    nation: str
    timezone: str


class Account(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    school_id: str = Field(foreign_key="school.id", index=True)
    platform: str = Field(max_length=32)
    name: str | None = None


class Source(SQLModel, table=True):
    """Polling state for one account's one watch target; the scheduler picks due rows."""

    __table_args__ = (UniqueConstraint("account_id", "location"),)
    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="account.id", index=True)
    location: str = Field(max_length=2048)
    kind: str = Field(default="comment", max_length=16)
    label: str | None = None
    enabled: bool = True
    etag: str | None = Field(default=None, max_length=1024)
    last_modified: str | None = Field(default=None, max_length=128)
    cursor: str | None = Field(default=None, sa_type=SafeString(2048))
    next_check_at: datetime | None = _ts(index=True)
    consecutive_errors: int = 0
    last_error: str | None = Field(default=None, sa_type=SafeText)
    last_error_kind: str | None = Field(default=None, max_length=32)
    first_polled_at: datetime | None = _ts()
    last_polled_at: datetime | None = _ts()
    last_success_at: datetime | None = _ts()
    last_new_item_at: datetime | None = _ts()
    health_alerted: bool = False
    lease_owner: str | None = Field(default=None, max_length=64)  # the worker polling it now (storage.leases)
    lease_until: datetime | None = _ts()


class ItemBase(SQLModel):
    platform: str = Field(max_length=32)
    kind: str = Field(max_length=16)
    author: str | None = Field(default=None, sa_type=SafeString(512))
    title: str | None = Field(default=None, sa_type=SafeText)
    text: str = Field(sa_type=SafeText)
    url: str | None = Field(default=None, sa_type=SafeString(2048))
    created_at: datetime | None = _ts()
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    status: str = Field(default="open", max_length=16, index=True)
    category: str | None = Field(default=None, max_length=16)
    needs_reply: bool = False
    escalate: str = Field(default="none", max_length=8)
    reply_by: datetime | None = _ts(index=True)


class Item(ItemBase, table=True):
    __table_args__ = (UniqueConstraint("account_id", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    school_id: str = Field(foreign_key="school.id", index=True)
    account_id: str = Field(foreign_key="account.id", index=True)
    source_id: int | None = Field(default=None, foreign_key="source.id")
    external_id: str = Field(sa_type=SafeString(512))
    media_urls: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    raw: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    acknowledged_at: datetime | None = _ts()
    acknowledged_by: str | None = None
    replied_at: datetime | None = _ts()
    legal_hold: bool = False  # the retention purge and erasure never touch a held item
    legal_hold_by: str | None = Field(default=None, max_length=64)
    legal_hold_at: datetime | None = _ts()
    legal_hold_reason: str | None = Field(default=None, sa_type=SafeText)
    anonymised_at: datetime | None = _ts()  # content removed by the purge or an erasure; counts stay
    protection_lifted_by: str | None = Field(default=None, max_length=64)  # a DSL lifted safeguarding protection
    protection_lifted_at: datetime | None = _ts()


class Triage(SQLModel, table=True):
    """Every decision about an item, machine or moderator; the newest is current."""

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    category: str = Field(max_length=16)
    needs_reply: bool
    escalate: str = Field(max_length=8)
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    decided_by: str = Field(max_length=64)  # "auto:<classifier>" for machines, else the staff id of a moderator
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Audit(SQLModel, table=True):
    """Append-only: triggers refuse UPDATE and DELETE (see the migration)."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)
    school_id: str | None = Field(default=None, max_length=64)
    actor: str = Field(max_length=128)
    surface: str = Field(default="system", max_length=16)
    action: str = Field(max_length=32)
    item_id: int | None = Field(default=None, index=True)
    outcome: str = Field(max_length=16)  # ok / refused / failed
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))


class Evidence(SQLModel, table=True):
    """A snapshot of an item taken before any hide/delete/block."""

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    taken_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    reason: str = Field(max_length=32)
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))


class PurgePermit(SQLModel, table=True):
    """Lets the retention purge delete from an append-only table inside its own transaction only
    (the permit is written and removed in that transaction; see migration 0004)."""

    tbl: str = Field(primary_key=True, max_length=32)
    granted_to: str = Field(max_length=64)


class Escalation(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("item_id", "target"),)
    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    target: str = Field(max_length=8)  # slt / dsl / head
    reason: str = Field(sa_type=SafeText)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    acknowledged_at: datetime | None = _ts()
    acknowledged_by: str | None = None


class Outbox(SQLModel, table=True):
    """What happened that people must hear about (one row per event, deduplicated by key).

    It is fanned out into one `Delivery` per recipient and surface; `status` is `pending`
    until that fan-out is written, then `fanned`. Each delivery is sent, retried and
    dead-lettered on its own."""

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=256, unique=True)
    school_id: str = Field(max_length=64, index=True)
    item_id: int | None = Field(default=None, index=True)
    kind: str = Field(max_length=16)  # card / escalation / reminder / late / health
    audience: str = Field(max_length=16)  # moderators / slt / dsl / head / leaders / copies
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    status: str = Field(default="pending", max_length=8, index=True)  # pending / fanned
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    sent_at: datetime | None = _ts()
    last_error: str | None = Field(default=None, sa_type=SafeText)


class Delivery(SQLModel, table=True):
    """One recipient's copy of one outbox row on one surface: a person's direct message, a
    channel post, or an update to a card already posted (`target` = person:<staff id>,
    channel:<channel id> or copy:<CardCopy id>). A recipient who fails retries alone; after
    `MAX_ATTEMPTS` it is `dead` and moderators get one health alert naming the person.

    A worker claims it (`status` sending, `lease_owner`/`lease_until`), sends with no transaction
    open and commits it `sent` with the chat's message `reference`. A claim of a delivery left in
    `sending` (its worker died) sets `maybe_sent`: the surface looks for the message before sending
    again. `priority` (set at fan-out, lower first): DSL and SLT escalations, cards, reminders, health."""

    __table_args__ = (
        UniqueConstraint("outbox_id", "surface", "target"),
        Index("ix_delivery_claim", "status", "priority", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(foreign_key="outbox.id", index=True)
    school_id: str = Field(max_length=64, index=True)
    item_id: int | None = Field(default=None, index=True)
    surface: str = Field(max_length=16)  # console / slack / teams
    target: str = Field(max_length=300)
    status: str = Field(default="pending", max_length=8, index=True)  # pending / sending / sent / dead
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    sent_at: datetime | None = _ts()
    last_error: str | None = Field(default=None, sa_type=SafeText)
    priority: int = 2
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = _ts()
    maybe_sent: bool = False  # an earlier send may have reached the recipient: look before sending again
    reference: str | None = Field(default=None, sa_type=SafeText)  # where the chat put it (conversation/message id)


class CardCopy(SQLModel, table=True):
    """A posted copy of an item's card (Slack channel + ts, Teams conversation + activity id),
    with whose view it shows, so a change from any surface updates every copy with its own
    viewer's view. `viewer` is the staff id of a direct message, None for a channel post."""

    __table_args__ = (UniqueConstraint("surface", "conversation", "message_id"),)
    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    surface: str = Field(max_length=16)
    place: str = Field(max_length=16)  # channel / direct
    viewer: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=16)  # card / escalation / reminder / late
    audience: str = Field(max_length=16)
    conversation: str = Field(max_length=300)
    message_id: str = Field(max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime | None = _ts()


class SeenInteraction(SQLModel, table=True):
    """A chat interaction already handled (Slack action_ts / trigger_id / view id, Teams
    activity id): a replayed signed request finds its key here and does nothing."""

    key: str = Field(primary_key=True, max_length=300)
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)


class WebhookEvent(SQLModel, table=True):
    """A platform webhook delivery, stored raw before it is processed: a crash
    mid-processing loses nothing, and a repeated delivery is stored once."""

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    account_id: str | None = Field(default=None, max_length=64)
    digest: str = Field(max_length=64, unique=True)  # sha256 of the raw body
    body: bytes = Field(sa_type=LargeBinary)  # as it arrived (the digest is of these bytes)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    status: str = Field(default="pending", max_length=16, index=True)  # pending / processed / ignored / failed
    attempts: int = 0
    error: str | None = Field(default=None, sa_type=SafeText)
    processed_at: datetime | None = _ts()
    lease_owner: str | None = Field(default=None, max_length=64)  # the worker processing it (storage.leases)
    lease_until: datetime | None = _ts()  # also: not before this time (a failed delivery's backoff)


class TeamsConversation(SQLModel, table=True):
    """Where the Teams bot may speak proactively: a channel (by its conversation id) or a
    person's chat (by Entra object id), kept from install and message events."""

    __table_args__ = (UniqueConstraint("kind", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # channel / personal
    key: str = Field(max_length=256)
    reference: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class JobLease(SQLModel, table=True):
    """One row per singleton job (the clocks: reminders, digests, purges): the process holding
    it runs the job until `until`, so two processes on one database never run it at once."""

    name: str = Field(primary_key=True, max_length=64)
    owner: str | None = Field(default=None, max_length=64)
    until: datetime | None = _ts()
