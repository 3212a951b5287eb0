"""Webhooks: the feeds' events pushed to integrations, signed (Standard Webhooks), retried with
backoff, logged, replayable, and never sent to internal addresses (see docs/webhooks.md)."""
