"""The gateway app, the top layer: channels (WeChat, SMS), the conversation with Rasa, the action server,
staff HTTP wiring, the CLI and the launcher."""
