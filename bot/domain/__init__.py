"""Domain services shared by the gateway and the custom actions (no vendor SDKs here)."""
