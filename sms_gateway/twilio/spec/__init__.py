"""The Messages part of Twilio's OpenAPI description (see NOTICE.md); ``extract`` regenerates it."""

from pathlib import Path

SPEC_PATH = Path(__file__).with_name("twilio_api_v2010_messages.json")
