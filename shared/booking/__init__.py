"""Helpdesks, opening hours, slots, bookings and the waitlist (SPEC section 4)."""
