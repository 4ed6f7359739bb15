"""Outgoing mail: notices and relays become outbox rows, one per recipient (the `deliver`
actor sends them after the commit)."""
