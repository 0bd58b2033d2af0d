"""Broadcast notices (群发通知): campaigns, recipient lists, approval, preview, and a crash-safe sending
engine on Redis Streams and the SMS ledger.  See ``service.py`` (lifecycle), ``audience.py`` (recipient
lists and saved groups), ``preview.py`` (what a campaign would send, and what blocks it), ``views.py``
(what staff see: campaign, progress and result views), ``export.py`` (the XLSX results), ``engine.py``
(sending), ``api.py`` (staff HTTP API), ``cli.py`` (``govbot broadcast``) and ``worker.py`` (the worker
process)."""

from sms_gateway.broadcast.config import BroadcastSettings
from sms_gateway.broadcast.engine import BroadcastWorker
from sms_gateway.broadcast.limiter import Priority, RateLimitedProvider, RateLimiter
from sms_gateway.broadcast.models import CampaignState, Channel, Exclusion
from sms_gateway.broadcast.preview import Preview
from sms_gateway.broadcast.service import BroadcastError, BroadcastService

__all__ = [
    "BroadcastError",
    "BroadcastService",
    "BroadcastSettings",
    "BroadcastWorker",
    "CampaignState",
    "Channel",
    "Exclusion",
    "Preview",
    "Priority",
    "RateLimitedProvider",
    "RateLimiter",
]
