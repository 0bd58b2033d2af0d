"""Channel-independent conversation: normalise → serialise per sender → Rasa → replies."""
