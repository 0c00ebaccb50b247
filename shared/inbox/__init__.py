"""Telegram updates kept in the database before they are confirmed to Telegram (issue 15)."""
