"""Notifications: destinations, routing, the outbox and the senders that drain it."""
