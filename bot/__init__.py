"""The Telegram bot: a thin python-telegram-bot adapter over `shared` services."""
