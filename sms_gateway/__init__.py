"""SMS gateway: two-way SMS behind a provider interface (Twilio first), one outbound ledger for replies,
notifications and broadcasts, opt-out, and the Chinese SMS rules (signature, segments, budget).

Public API::

    from sms_gateway import Purpose, SmsOutbox
    await outbox.send("+8613812345678", "您的办件已办结……", purpose=Purpose.NOTIFICATION)

The inbound webhook (the SMS *channel*) lives in the gateway app, ``bot/gateway/channels/sms/``; this
package depends only on ``bot.core``.

See sms_gateway/README.md.
"""

from sms_gateway.compose import ComposedReply, Composer, SmsMessage
from sms_gateway.config import SmsSettings
from sms_gateway.models import LedgerStatus, Purpose
from sms_gateway.optout import OptOutStore
from sms_gateway.outbox import LedgerEntry, SmsOutbox
from sms_gateway.provider import SmsProvider

__all__ = [
    "ComposedReply",
    "Composer",
    "LedgerEntry",
    "LedgerStatus",
    "OptOutStore",
    "Purpose",
    "SmsMessage",
    "SmsOutbox",
    "SmsProvider",
    "SmsSettings",
]
