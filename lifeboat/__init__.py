"""Lifeboat: backup, restore and rescue for Letta V1 agent servers."""

__version__ = "0.1.0"
