"""One typed config model, validated at start-up.

The file describes one or more schools (a trust runs many), their staff with
roles and chat ids, and the accounts to watch. Secrets never live here:
credentials are named by environment variable only.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from datetime import time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core.errors import ConfigError

_ID = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _parse_duration(value: Any) -> Any:
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f'{value!r} is not a duration; write it like "30s", "5m", "2h" or "1d"')
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if isinstance(value, int | float):
        return timedelta(seconds=value)
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
Ident = Annotated[str, Field(pattern=_ID)]
EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$", description="an environment variable's name")]


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
    STAFF = "staff"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChatConfig(_Strict):
    """Which chat surface delivers cards: the console, Slack or Teams."""

    surface: Literal["console", "slack", "teams"] = "console"
    read_commands: bool = Field(True, description="console: read commands from standard input")


class ServiceConfig(_Strict):
    database_url: str = Field("sqlite:///hallmonitor.db", description="overridden by $DATABASE_URL")
    tick: Duration = Field(timedelta(seconds=15), description="how often the scheduler looks for due work")
    max_concurrent_polls: int = Field(32, ge=1, le=512, description="fetches in flight at once")
    http_timeout: Duration = Field(timedelta(seconds=20), description="the whole of one fetch, every byte included")
    lease: Duration = Field(
        timedelta(minutes=2),
        description="how long a claimed poll, delivery or notification stays claimed if its worker dies",
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

    items: Duration = Field(timedelta(days=365), description="routine items (never escalated): then anonymised")
    evidence: Duration = Field(
        timedelta(days=2190), description="escalated items and evidence snapshots: then anonymised / deleted"
    )
    audit: Duration = Field(timedelta(days=2190), description="audit rows: then deleted")
    webhooks: Duration = Field(timedelta(days=30), description="raw webhook deliveries: then deleted")
    purge_at: ClockTime = Field(time(2, 30), description="school time of the nightly purge")


class SchoolConfig(_Strict):
    id: Ident
    name: str = Field(min_length=1)
    nation: Nation = Nation.ENGLAND
    timezone: str = "Europe/London"
    working_day_end: ClockTime = time(17, 0)
    reminder_before: Duration = Field(timedelta(hours=2), description="remind moderators this long before reply-by")
    escalation_reping: Duration = Field(
        timedelta(minutes=30), description="re-ping, widened to all SLT and the DSL, if an escalation is unacknowledged"
    )
    policy: str | None = Field(None, description="path to the school's social media policy")
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
    poll_every: Duration = timedelta(minutes=5)
    silent_after: Duration | None = Field(
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

    def staff_with_role(self, school_id: str, role: Role) -> list[StaffConfig]:
        return [s for s in self.staff if role in s.roles and self.school_of(s).id == school_id]

    def resolve_path(self, value: str) -> Path:
        """Paths in the file are relative to the file, not to the working directory."""
        path = Path(value).expanduser()
        if not path.is_absolute() and self.path is not None:
            path = self.path.parent / path
        return path


def _cross_problems(cfg: Config) -> list[str]:
    """Checks that span sections; each line is `path: what is wrong; the fix`."""
    problems: list[str] = []
    school_ids = [s.id for s in cfg.schools]
    _duplicates(problems, "schools", school_ids)
    _duplicates(problems, "staff", [s.id for s in cfg.staff])
    _duplicates(problems, "accounts", [a.id for a in cfg.accounts])
    multi = len(school_ids) > 1
    sections: list[tuple[str, Sequence[StaffConfig | AccountConfig]]] = [
        ("staff", cfg.staff),
        ("accounts", cfg.accounts),
    ]
    for section, entries in sections:
        for i, entry in enumerate(entries):
            if entry.school is None and multi:
                problems.append(
                    f"{section}[{i}].school: required when the file lists several schools; "
                    f"set it to one of {', '.join(school_ids)}"
                )
            elif entry.school is not None and entry.school not in school_ids:
                problems.append(
                    f"{section}[{i}].school: no school has id {entry.school!r}; use one of {', '.join(school_ids)}"
                )
    staff = {s.id: s for s in cfg.staff}
    for i, account in enumerate(cfg.accounts):
        where = f"accounts[{i}]"
        unknown = [m for m in account.moderators if m not in staff]
        not_mods = [m for m in account.moderators if m in staff and Role.MODERATOR not in staff[m].roles]
        if unknown:
            problems.append(
                f"{where}.moderators: {', '.join(unknown)} not listed under [[staff]]; add them or fix the id"
            )
        if not_mods:
            problems.append(
                f'{where}.moderators: {", ".join(not_mods)} lack the "moderator" role; add it to their roles'
            )
        named = sorted(set(account.moderators))
        if len(named) < 2:
            problems.append(
                f"{where}.moderators: account {account.id!r} names {len(named)} moderator(s); the policy needs at "
                'least two trained staff per account: add another staff id with the "moderator" role'
            )
    return problems


def _duplicates(problems: list[str], section: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i, ident in enumerate(ids):
        if ident in seen:
            problems.append(f"{section}[{i}].id: {ident!r} is used twice; ids must be unique")
        seen.add(ident)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def parse_config(data: dict[str, Any], *, path: Path | None = None) -> Config:
    """Validate already-parsed TOML; raise ConfigError with one line per problem.

    This checks the file's own shape and cross-references; what each platform accepts
    (its name, watch targets and credentials) is checked by `monitors.registry`."""
    name = path.name if path else "config"
    try:
        return Config.model_validate({**data, "path": path})
    except ConfigError as exc:
        raise ConfigError([f"{name}: {p}" for p in exc.problems]) from None
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key; check its spelling against config.example.toml"
            elif err["type"] == "missing":
                msg = "required; add it"
            lines.append(f"{name}: {_loc(loc)}: {msg}")
        raise ConfigError(lines) from None


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
