"""Who hears about what: the people behind each audience, and where escalations go.

Safeguarding goes to the school's DSL and deputy DSLs only, first ping and re-pings alike,
never to SLT. Abuse goes to SLT; media enquiries to the headteacher (SLT when no head is
named); an unacknowledged SLT or head escalation widens to every SLT member and the head.
"""

from __future__ import annotations

from core.config import Config, Role, StaffConfig
from core.domain import Audience, Category, Escalate

AUDIENCE_ROLES: dict[str, tuple[Role, ...]] = {
    Audience.SLT: (Role.SLT,),
    Audience.DSL: (Role.DSL, Role.DEPUTY_DSL),
    Audience.HEAD: (Role.HEAD,),
    Audience.LEADERS: (Role.SLT, Role.HEAD),
}
# Which roles may acknowledge an escalation to each target.
ACK_ROLES: dict[str, frozenset[Role]] = {
    Escalate.SLT: frozenset({Role.SLT, Role.HEAD}),
    Escalate.DSL: frozenset({Role.DSL, Role.DEPUTY_DSL}),
    Escalate.HEAD: frozenset({Role.HEAD, Role.SLT}),
}


def escalation_target(category: str | None, escalate: str) -> str:
    """Where triage's escalation goes: a media enquiry to the head, everything else as triaged."""
    if escalate == Escalate.SLT and category == Category.MEDIA:
        return Escalate.HEAD
    return escalate


def reping_audience(target: str) -> str:
    """Who an unacknowledged escalation is re-sent to: safeguarding stays with the DSLs."""
    return Audience.DSL if target == Escalate.DSL else Audience.LEADERS


def _unique(people: list[StaffConfig]) -> list[StaffConfig]:
    return list({p.id: p for p in people}.values())


def moderators_of(config: Config, *, school_id: str, account_id: str | None) -> list[StaffConfig]:
    """The account's designated moderators (every account's, for a school-wide note)."""
    if account_id:
        ids = config.account(account_id).moderators
    else:
        ids = [m for a in config.accounts if config.school_of(a).id == school_id for m in a.moderators]
    return _unique([s for s in (config.staff_by_id(i) for i in ids) if s is not None])


def people_for(config: Config, *, school_id: str, audience: str, account_id: str | None) -> list[StaffConfig]:
    """The people of one school behind an audience."""
    if audience == Audience.MODERATORS:
        return moderators_of(config, school_id=school_id, account_id=account_id)
    people = [p for role in AUDIENCE_ROLES[audience] for p in config.staff_with_role(school_id, role)]
    if audience == Audience.HEAD and not people:
        people = config.staff_with_role(school_id, Role.SLT)
    return _unique(people)


def may_acknowledge(staff: StaffConfig, target: str) -> bool:
    return bool(ACK_ROLES.get(target, frozenset()) & set(staff.roles))
