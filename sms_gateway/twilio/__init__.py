"""Twilio adapter (the only code that imports the ``twilio`` package): ``provider.TwilioProvider``, the
API fake ``fake`` (``python -m sms_gateway.twilio.fake``), signing helpers for tests in ``testing``, and a
copy of the Messages part of Twilio's OpenAPI description in ``spec/``."""
