"""The one place that picks an SMS adapter: ``SMS_PROVIDER`` names it (the provider, and the composer that
turns texts into what that provider can send)."""

from __future__ import annotations

import aiohttp

from sms_gateway.compose import Composer
from sms_gateway.config import SmsSettings
from sms_gateway.provider import SmsProvider


def provider_for(settings: SmsSettings, http: aiohttp.ClientSession) -> SmsProvider:
    """The provider ``SMS_PROVIDER`` names (the one place that picks an adapter)."""
    settings.check()
    if settings.provider == "twilio":
        from sms_gateway.twilio.provider import TwilioProvider

        return TwilioProvider(settings, http)
    if settings.provider == "aliyun":
        from sms_gateway.aliyun.provider import AliyunProvider

        return AliyunProvider.from_settings(settings)
    raise ValueError(f"no SMS provider {settings.provider!r}")


def composer_for(settings: SmsSettings) -> Composer:
    """Free text for Twilio; registered templates only for Aliyun (``sms_gateway/aliyun/compose.py``)."""
    if settings.provider == "aliyun":
        from sms_gateway.aliyun.compose import TemplateComposer
        from sms_gateway.aliyun.templates import TemplateRegistry

        return TemplateComposer(
            TemplateRegistry.load(settings.aliyun_templates),
            settings.signature,
            reply_budget=settings.reply_segment_budget,
            max_segments=settings.max_segments_per_message,
        )
    return Composer(
        settings.signature,
        reply_budget=settings.reply_segment_budget,
        max_segments_per_message=settings.max_segments_per_message,
    )
