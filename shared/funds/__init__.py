"""Funds and their ledger (SPEC section 5): deposits, commitments, payments and releases."""
