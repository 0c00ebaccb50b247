"""Ripartire's domain: settings, database, models and services shared by the bot and the dashboard.

This package imports neither `bot` nor `dashboard`.
"""
