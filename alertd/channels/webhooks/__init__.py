"""The webhook channel: partners' signed webhooks, chat webhooks (Slack, Discord, Teams) and
direct posts to Mastodon and Telegram, each endpoint checked against SSRF before every request."""
