"""Rasa custom actions, served on the modern Python side next to the domain code (``govbot actions``)."""
