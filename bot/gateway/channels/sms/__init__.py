"""The SMS channel: provider webhooks in, conversation turns, replies through the SMS ledger."""

from bot.gateway.channels.sms.channel import SmsChannel, build_sms_channel

__all__ = ["SmsChannel", "build_sms_channel"]
