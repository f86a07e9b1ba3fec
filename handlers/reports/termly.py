"""The governors' termly report: the digest's figures over a term, per school or for a whole
trust, with trends and charts, as standalone HTML or PDF. Counts only: no comment texts, no names.
"""

from __future__ import annotations

import base64
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlmodel import Session

from core.config import Config, SchoolConfig
from handlers.reports import charts
from handlers.reports.digest import summary
from handlers.reports.figures import Period, compute, fmt_hours, fmt_rate, source_problems
from handlers.reports.pdf import Document

TEMPLATES = Path(__file__).parent / "templates"


def weeks_of(period: Period) -> list[Period]:
    """The period cut into weeks (the last one may be shorter)."""
    out, start = [], period.start
    while start <= period.end:
        out.append(Period(start, min(start + timedelta(days=6), period.end)))
        start += timedelta(days=7)
    return out


def _volume(daily: dict[date, Counter[str]], period: Period) -> tuple[dict[date, Counter[str]], str]:
    """Daily bars for up to five weeks; weekly bars (keyed by week start) for a term."""
    if len(period.days) <= 35:
        return daily, "Items by category per day"
    weekly: dict[date, Counter[str]] = {}
    for week in weeks_of(period):
        weekly[week.start] = sum((daily[d] for d in week.days), Counter())
    return weekly, "Items by category per week (week starting)"


def report_data(
    session: Session, *, config: Config, schools: list[SchoolConfig], period: Period, now: datetime
) -> dict[str, Any]:
    """Everything the report shows, as plain values plus PNG charts."""
    figures = compute(session, config=config, schools=schools, period=period, now=now)
    before = compute(session, config=config, schools=schools, period=period.previous(), now=now)
    trend = [
        (w.start, compute(session, config=config, schools=schools, period=w, now=now).on_time_rate)
        for w in weeks_of(period)
    ]
    bars, title = _volume(figures.daily, period)
    per_school = (
        [
            {"name": s.name, **summary(compute(session, config=config, schools=[s], period=period, now=now))}
            for s in schools
        ]
        if len(schools) > 1
        else []
    )
    return {
        "title": "Social media: termly report to governors",
        "scope": schools[0].name if len(schools) == 1 else f"Trust: {', '.join(s.name for s in schools)}",
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "made_at": now.isoformat(timespec="minutes"),
        "this": summary(figures),
        "before": summary(before),
        "per_school": per_school,
        "sources": [
            {"account": p.account, "source": p.source, "state": p.state, "detail": p.detail}
            for p in source_problems(session, config=config, schools=schools, now=now)
        ],
        "charts": {
            "volume": charts.volume_by_category(bars, title=title),
            "trend": charts.on_time_trend(trend, title="Replies on time, by week"),
        },
    }


def environment(*extra: Path) -> Environment:
    """Jinja2 with autoescaping on for every template (user text never reaches a report, but be sure)."""
    env = Environment(loader=FileSystemLoader([*extra, TEMPLATES]), autoescape=select_autoescape(default=True))
    env.filters.update(hours=fmt_hours, rate=fmt_rate)
    return env


def report_html(data: dict[str, Any]) -> str:
    """A standalone page: the charts are embedded as data URIs, so the file can be emailed."""
    images = {k: "data:image/png;base64," + base64.b64encode(v).decode() for k, v in data["charts"].items()}
    return environment().get_template("report.html").render(r=data, images=images, standalone=True)


def report_pdf(data: dict[str, Any]) -> bytes:
    this, before = data["this"], data["before"]
    doc = Document(
        data["title"],
        subtitle=f"{data['scope']} · {data['period']['start']} to {data['period']['end']} · made {data['made_at']}",
    )
    doc.heading("Summary")
    doc.table(["", "this period", "period before"], [[label, fn(this), fn(before)] for label, fn in ROWS])
    doc.heading("Items by category")
    doc.table(["category", "items"], [[c, str(n)] for c, n in this["by_category"].items()] or [["none", "0"]])
    doc.image(data["charts"]["volume"])
    doc.image(data["charts"]["trend"])
    if data["per_school"]:
        doc.heading("By school")
        doc.table(
            ["school", "items", "on time", "median first reply", "escalations"],
            [
                [
                    s["name"],
                    str(s["items"]),
                    fmt_rate(s["on_time_rate"]),
                    fmt_hours(s["median_response_hours"]),
                    str(sum(s["escalations"].values())),
                ]
                for s in data["per_school"]
            ],
        )
    doc.heading("Monitoring")
    doc.paragraph(
        "All monitored sources are healthy."
        if not data["sources"]
        else "; ".join(f"{p['source']}: {p['state']} ({p['detail']})" for p in data["sources"])
    )
    doc.paragraph(
        "Counts only: this report holds no comment text and no names. Safeguarding concerns are "
        "counted here and handled by the Designated Safeguarding Lead.",
        muted=True,
    )
    return doc.output()


ROWS = [
    ("Items", lambda s: str(s["items"])),
    ("Replies on time", lambda s: f"{s['on_time']} of {s['on_time'] + s['late']} ({fmt_rate(s['on_time_rate'])})"),
    ("Median time to first reply", lambda s: fmt_hours(s["median_response_hours"])),
    ("90th percentile time to first reply", lambda s: fmt_hours(s["p90_response_hours"])),
    ("Awaiting a reply at the end", lambda s: f"{s['awaiting_at_end']} ({s['overdue_at_end']} overdue)"),
    ("Escalations raised", lambda s: ", ".join(f"{t.upper()} {n}" for t, n in sorted(s["escalations"].items())) or "0"),
    (
        "Median time to acknowledge",
        lambda s: "n/a" if s["median_ack_minutes"] is None else f"{s['median_ack_minutes']:.0f} min",
    ),
    ("Unacknowledged at the end", lambda s: str(s["unacknowledged_at_end"])),
]
