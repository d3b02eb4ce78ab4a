"""The sweeper: the outbox relay, and the stall sweep that sends lost stage messages again."""
