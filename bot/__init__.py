"""Government Service Assistant gateway: channels, conversation, staff API and CLI."""
