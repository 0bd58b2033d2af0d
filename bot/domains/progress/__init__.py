"""Case progress by ticket number: verification, privacy, replies and proactive notifications."""
