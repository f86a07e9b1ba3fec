"""Charts as PNG bytes, drawn server-side with matplotlib (no display needed).

Counts only: the charts are built from figures, never from items.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display on a server

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from handlers.reports.figures import CATEGORY_ORDER

COLOURS = {
    "question": "#1f77b4",
    "complaint": "#ff7f0e",
    "praise": "#2ca02c",
    "abuse": "#d62728",
    "safeguarding": "#9467bd",
    "media": "#8c564b",
    "spam": "#7f7f7f",
    "other": "#bcbd22",
    "untriaged": "#17becf",
}


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def volume_by_category(daily: Mapping[date, Counter[str]], *, title: str = "Items by category per day") -> bytes:
    """Stacked bars: one per day, one colour per category."""
    days = sorted(daily)
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    bottoms = [0] * len(days)
    labels = [d.strftime("%a %d %b") if len(days) <= 14 else d.strftime("%d %b") for d in days]
    positions = list(range(len(days)))
    for category in CATEGORY_ORDER:
        heights = [daily[d].get(category, 0) for d in days]
        if not any(heights):
            continue
        ax.bar(positions, heights, bottom=bottoms, label=category, color=COLOURS[category], width=0.8)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    step = max(1, len(days) // 14)
    ax.set_xticks(positions[::step], labels[::step], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("items")
    ax.set_title(title)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if any(bottoms):
        ax.legend(fontsize=8, ncols=2, loc="upper left", frameon=False)
    else:
        ax.text(0.5, 0.5, "no items in this period", transform=ax.transAxes, ha="center", va="center")
    fig.tight_layout()
    return _png(fig)


def on_time_trend(points: Sequence[tuple[date, float | None]], *, title: str = "Replies on time, by week") -> bytes:
    """A line of the on-time rate (per cent) per period; gaps where nothing needed a reply."""
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    labels = [d.strftime("%d %b") for d, _ in points]
    xs = list(range(len(points)))
    ys = [None if rate is None else 100 * rate for _, rate in points]
    ax.plot(xs, [float("nan") if y is None else y for y in ys], marker="o", color="#1f77b4")  # NaN: a gap
    for x, y in zip(xs, ys, strict=True):
        if y is not None:
            ax.annotate(f"{y:.0f}%", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xticks(xs, labels)
    ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_ylim(0, 110)
    ax.set_ylabel("% on time")
    ax.set_xlabel("week starting")
    ax.set_title(title)
    ax.tick_params(axis="x", labelsize=8, rotation=45)
    fig.tight_layout()
    return _png(fig)
