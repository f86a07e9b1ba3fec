"""The read-only web view (queue, records, reports, health), mounted by the app at /web."""

from bot.web.views import web_router

__all__ = ["web_router"]
