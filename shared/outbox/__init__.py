"""Persistent queue of messages to citizens, delivered by the bot (SPEC J3)."""
