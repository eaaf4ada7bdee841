"""Channels: where a published version goes (CAP feeds, SMS, webhooks), and the dispatch and
delivery records that track it there."""
