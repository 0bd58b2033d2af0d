"""The one place that picks an SMS adapter: ``SMS_PROVIDER`` names it."""

from __future__ import annotations

import aiohttp

from sms_gateway.config import SmsSettings
from sms_gateway.provider import SmsProvider


def provider_for(settings: SmsSettings, http: aiohttp.ClientSession) -> SmsProvider:
    """The provider ``SMS_PROVIDER`` names (the one place that picks an adapter)."""
    settings.check()
    if settings.provider == "twilio":
        from sms_gateway.twilio.provider import TwilioProvider

        return TwilioProvider(settings, http)
    raise ValueError(f"no SMS provider {settings.provider!r}")
