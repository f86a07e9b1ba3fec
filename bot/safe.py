"""Neutralising user-controlled strings before any surface draws them.

`clean` removes NUL and other control characters and makes bidirectional overrides visible
(a right-to-left override can disguise a link or a name); `safe_url` keeps only absolute
http/https links, percent-encoding what would break out of a Slack `<url|label>` or a
Markdown link. Each renderer then escapes for its own format (Slack mrkdwn, Teams text).
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c]")
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
URL_UNSAFE = "<>|\"'` \\[]()*_~{}^"


def clean(text: str | None) -> str | None:
    """The text with control characters removed and bidi overrides shown as U+FFFD."""
    if text is None:
        return None
    return CONTROL.sub("", BIDI.sub("\ufffd", text.replace("\r\n", "\n").replace("\r", "\n")))


def safe_url(url: str | None) -> str | None:
    """An absolute http(s) URL safe to put inside a link, or None for anything else (javascript:,
    data:, relative, malformed)."""
    cleaned = clean(url)
    if not cleaned:
        return None
    cleaned = cleaned.strip()
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or "\n" in cleaned:
        return None
    return "".join(quote(ch, safe="") if ch in URL_UNSAFE or ord(ch) > 126 else ch for ch in cleaned)
