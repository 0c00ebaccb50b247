"""Handlers by area: each module turns updates into `shared` service calls and replies."""
