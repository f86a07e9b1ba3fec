"""One typed config model, validated at start-up.

The file describes one or more schools (a trust runs many), their staff with
roles and chat ids, and the accounts to watch. Secrets never live here:
credentials are named by environment variable only.
"""

from __future__ import annotations

import re
import tomllib
from datetime import time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core.errors import ConfigError
from core.messages import plain

_ID = re.compile(r"[^\W_][\w-]{0,62}")  # letters of any language (siân, zoë), digits, "-" and "_"
_DURATION = re.compile(r"^\s*(-?\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_SHORT = {"seconds": "s", "minutes": "m", "hours": "h", "days": "d"}


def _parse_duration(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError('must be a duration with a unit, like "30s", "5m", "2h" or "1d"')
    if isinstance(value, int | float):
        raise ValueError(
            f'{value} has no unit; write "{value}s" for seconds, "{value}m" for minutes or "{value}h" for hours'
        )
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f'{value!r} is not a duration; write it like "30s", "5m", "2h" or "1d"')
        if int(match.group(1)) <= 0:
            raise ValueError(f"{value!r} must be longer than zero")
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    return value


def _show(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f'"{seconds // size}{unit}"'
    return f'"{seconds}s"'


def _within(low: timedelta, high: timedelta) -> AfterValidator:
    def check(value: timedelta) -> timedelta:
        if not low <= value <= high:
            raise ValueError(f"{_show(value)} is out of range; use between {_show(low)} and {_show(high)}")
        return value

    return AfterValidator(check)


def _env_name(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(r"[A-Z_][A-Z0-9_]*", value):
        raise ValueError(
            f"{value!r} is not an environment variable's name: use capitals, digits and '_', "
            'like "NORTHGATE_FB_TOKEN"; the secret itself goes in the environment, never in this file'
        )
    return value


def _ident(value: Any) -> Any:
    if isinstance(value, str) and not _ID.fullmatch(value):
        hint = value.strip().lower().replace(" ", "-")
        fix = f'; for example "{hint}"' if _ID.fullmatch(hint) else ""
        raise ValueError(
            f"{value!r} is not an id: use lower-case letters, digits, '-' or '_', starting with a letter or digit, "
            f"at most 63 characters{fix}"
        )
    if isinstance(value, str) and value != value.lower():
        raise ValueError(f"{value!r} is not an id: use lower case, like {value.lower()!r}")
    return value


def _parse_clock(value: Any) -> Any:
    if isinstance(value, str):
        match = re.match(r"^(\d{1,2}):(\d{2})$", value.strip())
        if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
            raise ValueError(f'{value!r} is not a time of day; write it like "17:00"')
        return time(int(match.group(1)), int(match.group(2)))
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]
ClockTime = Annotated[time, BeforeValidator(_parse_clock)]
Ident = Annotated[str, BeforeValidator(_ident)]
_S, _M, _H, _D = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
Tick = Annotated[Duration, _within(_S, 10 * _M)]
Timeout = Annotated[Duration, _within(_S, 5 * _M)]
Lease = Annotated[Duration, _within(_S, _H)]
PollEvery = Annotated[Duration, _within(30 * _S, 7 * _D)]
Silence = Annotated[Duration, _within(_H, 365 * _D)]
Nudge = Annotated[Duration, _within(_M, 7 * _D)]
Keep = Annotated[Duration, _within(_D, 36500 * _D)]
Backfill = Annotated[Duration, _within(_H, 3650 * _D)]
EnvName = Annotated[str, BeforeValidator(_env_name)]


class Nation(StrEnum):
    """UK nations; each has its own bank holidays."""

    ENGLAND = "england"
    WALES = "wales"
    SCOTLAND = "scotland"
    NORTHERN_IRELAND = "northern-ireland"


class Role(StrEnum):
    MODERATOR = "moderator"
    SLT = "slt"
    DSL = "dsl"
    DEPUTY_DSL = "deputy_dsl"
    HEAD = "head"  # the headteacher: media enquiries go here first (SLT when no head is named)
    STAFF = "staff"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SurfaceName = Literal["console", "slack", "teams"]


def _surface_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


SurfaceList = Annotated[list[SurfaceName], BeforeValidator(_surface_list)]


class ChatConfig(_Strict):
    """Which chat surface delivers cards by default; a school may name its own (`schools[].surface`)."""

    surface: SurfaceName = "console"
    read_commands: bool = Field(True, description="console: read commands from standard input")


class ServiceConfig(_Strict):
    database_url: str = Field("sqlite:///hallmonitor.db", description="overridden by $DATABASE_URL")
    tick: Tick = Field(
        timedelta(seconds=15), description="how often the clocks run and an idle poll worker looks for due sources"
    )
    max_concurrent_polls: int = Field(
        32, ge=1, le=512, description="fetches in flight at once; polling mostly waits on the network"
    )
    http_timeout: Timeout = timedelta(seconds=20)
    lease: Lease = Field(
        timedelta(minutes=2),
        description="how long a claimed delivery, webhook event or source stays claimed if its worker dies",
    )
    max_request_bytes: int = Field(
        1_000_000, ge=1024, le=100_000_000, description="larger request bodies are refused (413) unread"
    )
    request_read_timeout: Timeout = Field(
        timedelta(seconds=10), description="a client that stalls this long mid-body is answered 408"
    )
    public_url: str | None = Field(
        None, description="where staff reach this service, for web-view links (e.g. https://hm.example.sch.uk)"
    )


class TriageConfig(_Strict):
    """How cautious triage is for one school. Lower thresholds escalate more.

    The defaults favour catching every disclosure over quiet channels: a DSL
    would rather dismiss a false alarm than miss a child.
    """

    dsl_threshold: float = Field(0.30, ge=0.01, le=0.99, description="model probability that escalates to the DSL")
    slt_threshold: float = Field(0.45, ge=0.01, le=0.99, description="model probability that escalates abuse to SLT")
    media_threshold: float = Field(0.50, ge=0.01, le=0.99)
    label_similarity: float = Field(
        0.90,
        ge=0.5,
        le=1.0,
        description="how close a new item must be to one your moderators labelled to reuse the label",
    )


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class DigestConfig(_Strict):
    """When the weekly SLT digest is posted, in the school's own time zone."""

    enabled: bool = True
    day: Weekday = "monday"
    at: ClockTime = time(8, 0)


class RetentionConfig(_Strict):
    """How long each kind of record is kept before the nightly purge (UK GDPR storage limitation).

    Defaults are stated in the README; items under legal hold are never touched.
    """

    items: Keep = Field(timedelta(days=365), description="routine items (never escalated): then anonymised")
    evidence: Keep = Field(
        timedelta(days=2190), description="escalated items and evidence snapshots: then anonymised / deleted"
    )
    audit: Keep = Field(timedelta(days=2190), description="audit rows: then deleted")
    webhooks: Keep = Field(timedelta(days=30), description="raw webhook deliveries: then deleted")
    purge_at: ClockTime = Field(time(2, 30), description="school time of the nightly purge")


class SchoolConfig(_Strict):
    id: Ident
    name: str = Field(min_length=1)
    nation: Nation = Nation.ENGLAND
    timezone: str = "Europe/London"
    working_day_end: ClockTime = time(17, 0)
    reminder_before: Nudge = Field(timedelta(hours=2), description="remind moderators this long before reply-by")
    escalation_reping: Nudge = Field(
        timedelta(minutes=30), description="re-ping, widened to all SLT and the DSL, if an escalation is unacknowledged"
    )
    policy: str | None = Field(None, description="path to the school's social media policy")
    surface: SurfaceList | None = Field(
        None, description='this school\'s chat surface(s), e.g. "teams" or ["slack", "teams"]; default chat.surface'
    )
    triage: TriageConfig = TriageConfig()
    digest: DigestConfig = DigestConfig()
    retention: RetentionConfig = RetentionConfig()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f'unknown time zone {value!r}; use an IANA name such as "Europe/London"') from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class StaffConfig(_Strict):
    id: Ident
    name: str = Field(min_length=1)
    school: str | None = Field(None, description="school id; may be left out when the file has one school")
    roles: list[Role] = Field(min_length=1)
    email: str | None = None
    slack_user: str | None = None
    teams_user: str | None = Field(None, description="Entra (AAD) object id")


WatchKind = Literal["comment", "mention", "post", "message"]


class Watch(_Strict):
    """One thing an account watches: a feed URL or local path, or a platform target."""

    url: str = Field(min_length=1)
    kind: WatchKind = "comment"
    label: str | None = None


class AccountConfig(_Strict):
    id: Ident
    school: str | None = None
    platform: str
    name: str | None = None
    watch: list[Watch] = Field(default_factory=list)
    moderators: list[str] = Field(default_factory=list)
    poll_every: PollEvery = timedelta(minutes=5)
    backfill: Backfill | None = Field(
        None,
        description="first poll only: items older than this are stored and triaged but not carded and get no "
        "reply clock (safeguarding still reaches the DSL); unset: every item is carded",
    )
    silent_after: Silence | None = Field(
        None, description="alert if nothing new arrives for this long (default: 3x the source's usual gap, min 2 days)"
    )
    credentials: dict[str, str] = Field(
        default_factory=dict, description="name -> ENVIRONMENT VARIABLE holding the secret"
    )
    channel: dict[str, str] = Field(default_factory=dict, description="surface -> channel id for cards")

    @field_validator("watch", mode="before")
    @classmethod
    def _watch_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"url": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("credentials")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key, env in value.items():
            if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", env):
                raise ValueError(
                    f'credentials.{key} must name an environment variable (like "FACEBOOK_TOKEN"), '
                    "never hold the secret itself"
                )
        return value


class Config(_Strict):
    service: ServiceConfig = ServiceConfig()
    chat: ChatConfig = ChatConfig()
    schools: list[SchoolConfig] = Field(min_length=1)
    staff: list[StaffConfig] = Field(default_factory=list)
    accounts: list[AccountConfig] = Field(default_factory=list)
    path: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _cross_check(self) -> Config:
        problems = _cross_problems(self)
        if problems:
            raise ConfigError(problems)
        return self

    def school(self, school_id: str) -> SchoolConfig:
        for school in self.schools:
            if school.id == school_id:
                return school
        raise KeyError(school_id)

    def school_of(self, entry: StaffConfig | AccountConfig) -> SchoolConfig:
        return self.school(entry.school) if entry.school else self.schools[0]

    def staff_by_id(self, staff_id: str) -> StaffConfig | None:
        return next((s for s in self.staff if s.id == staff_id), None)

    def account(self, account_id: str) -> AccountConfig:
        for account in self.accounts:
            if account.id == account_id:
                return account
        raise KeyError(account_id)

    def surfaces_of(self, school_id: str) -> tuple[str, ...]:
        """The chat surfaces a school's cards go to: its own `surface`, else `chat.surface`."""
        own = self.school(school_id).surface
        return tuple(dict.fromkeys(own)) if own else (self.chat.surface,)

    def surfaces_in_use(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for school in self.schools for name in self.surfaces_of(school.id)))

    def staff_with_role(self, school_id: str, role: Role) -> list[StaffConfig]:
        return [s for s in self.staff if role in s.roles and self.school_of(s).id == school_id]

    def database(self) -> str:
        """`service.database_url`, with a relative SQLite file resolved against the config file's folder
        (so a job started from another directory finds the same database)."""
        url = self.service.database_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and url != prefix + ":memory:":
            return prefix + str(self.resolve_path(url.removeprefix(prefix)))
        return url

    def resolve_path(self, value: str) -> Path:
        """Paths in the file are relative to the file, not to the working directory."""
        path = Path(value).expanduser()
        if not path.is_absolute() and self.path is not None:
            path = self.path.parent / path
        return path


Indexed = list[tuple[int, Any]]


def _cross_problems(cfg: Config) -> list[str]:
    """Checks that span sections, on a whole validated config."""
    return cross_problems(list(enumerate(cfg.schools)), list(enumerate(cfg.staff)), list(enumerate(cfg.accounts)))


def cross_problems(schools: Indexed, staff: Indexed, accounts: Indexed) -> list[str]:
    """Checks that span sections; each line is `path: what is wrong; the fix`. Entries are
    (index in the file, entry) so a file with other mistakes still gets every cross check."""
    problems: list[str] = []
    school_ids = [s.id for _, s in schools]
    _duplicates(problems, "schools", schools)
    _duplicates(problems, "staff", staff)
    _duplicates(problems, "accounts", accounts)
    multi = len(school_ids) > 1
    for section, entries in (("staff", staff), ("accounts", accounts)):
        for i, entry in entries:
            if entry.school is None and multi:
                problems.append(
                    f"{section}[{i}].school: required when the file lists several schools; "
                    f"set it to one of {', '.join(school_ids)}"
                )
            elif entry.school is not None and entry.school not in school_ids:
                problems.append(
                    f"{section}[{i}].school: no school has id {entry.school!r}; use one of {', '.join(school_ids)}"
                )
    first = school_ids[0] if school_ids else None
    for i, school in schools:
        dsls = [p for _, p in staff if Role.DSL in p.roles and (p.school or first) == school.id]
        if not dsls:
            problems.append(
                f"schools[{i}]: school {school.id!r} has no designated safeguarding lead, so safeguarding "
                'escalations would reach nobody; add a [[staff]] entry with roles = ["dsl"]'
                + (f' and school = "{school.id}"' if multi else "")
            )
    by_id = {p.id: p for _, p in staff}
    for i, account in accounts:
        problems += _moderator_problems(f"accounts[{i}]", account, by_id)
    return problems


def _moderator_problems(where: str, account: AccountConfig, staff: dict[str, StaffConfig]) -> list[str]:
    problems: list[str] = []
    unknown = [m for m in account.moderators if m not in staff]
    not_mods = [m for m in account.moderators if m in staff and Role.MODERATOR not in staff[m].roles]
    if unknown:
        problems.append(f"{where}.moderators: {', '.join(unknown)} not listed under [[staff]]; add them or fix the id")
    if not_mods:
        problems.append(f'{where}.moderators: {", ".join(not_mods)} lack the "moderator" role; add it to their roles')
    named = sorted(set(account.moderators))
    if len(named) < 2:
        problems.append(
            f"{where}.moderators: account {account.id!r} names {len(named)} moderator(s); the policy needs at "
            'least two trained staff per account: add another staff id with the "moderator" role'
        )
    return problems


def _duplicates(problems: list[str], section: str, entries: Indexed) -> None:
    seen: set[str] = set()
    for i, entry in entries:
        if entry.id in seen:
            problems.append(f"{section}[{i}].id: {entry.id!r} is used twice; ids must be unique")
        seen.add(entry.id)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


_SECTIONS: dict[str, type[_Strict]] = {"schools": SchoolConfig, "staff": StaffConfig, "accounts": AccountConfig}
_TABLES: dict[str, type[_Strict]] = {"service": ServiceConfig, "chat": ChatConfig}


def _validate(model: type[_Strict], raw: Any, where: tuple[int | str, ...], problems: list[str]) -> Any:
    """One entry validated on its own, its problems appended as plain sentences. An entry with
    mistakes comes back as far as it can be read (its bad keys left out) so the cross checks
    neither lose it nor report it twice; None if not even its id can be read."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
    for err in errors:
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        problems.append(f"{_loc(where + loc)}: {plain(dict(err))}")
    if not isinstance(raw, dict) or where[0] not in _SECTIONS:
        return None
    bad = {err["loc"][0] for err in errors if err["loc"]}
    clean = {k: v for k, v in raw.items() if k not in bad and k in model.model_fields}
    if isinstance(raw.get("roles"), list):  # keep the roles that are right: a DSL with a typo elsewhere is a DSL
        clean["roles"] = [Role(r) for r in raw["roles"] if r in Role._value2member_map_]
    if not isinstance(clean.get("id"), str):
        return None
    for listed in ("roles", "moderators"):
        if listed in model.model_fields:
            clean.setdefault(listed, [])
    try:
        return model.model_validate(clean)
    except ValidationError:
        return model.model_construct(**clean)


def parse_config(data: dict[str, Any], *, path: Path | None = None) -> Config:
    """Validate already-parsed TOML; raise ConfigError with one line per problem, every problem
    in the file at once (each entry is checked on its own, then the cross checks run on what
    could be read).

    What each platform accepts (its name, watch targets and credentials) is checked by
    `monitors.registry`."""
    name = path.name if path else "config"
    problems: list[str] = []
    for key in data:
        if key not in _SECTIONS and key not in _TABLES:
            problems.append(f"{key}: unknown section; check its spelling against config.example.toml")
    for key, model in _TABLES.items():
        if key in data:
            _validate(model, data[key], (key,), problems)
    read: dict[str, Indexed] = {}
    for key, model in _SECTIONS.items():
        rows = data.get(key, [])
        if not isinstance(rows, list):
            problems.append(f"{key}: must be a list of [[{key}]] blocks")
            rows = []
        read[key] = []
        for i, row in enumerate(rows):
            entry = _validate(model, row, (key, i), problems)
            if entry is not None:
                read[key].append((i, entry))
    if not data.get("schools"):
        problems.append("schools: required; add a [[schools]] block with an id and a name")
    problems += cross_problems(read["schools"], read["staff"], read["accounts"])
    if problems:
        raise ConfigError([f"{name}: {p}" for p in problems])
    return Config.model_validate({**data, "path": path})


def read_toml(path: Path) -> dict[str, Any]:
    """A config file's TOML, or ConfigError with a sentence saying what is wrong with the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file; copy config.example.toml and edit it"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read ({exc.strerror})"]) from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([f"{path.name}: not UTF-8 text; save it as UTF-8"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path.name}: not valid TOML: {exc}"]) from None
