"""Messaging channels (WeChat, SMS)."""
