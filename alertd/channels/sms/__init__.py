"""The SMS channel: subscribers, their areas, texts and the Twilio gateway."""
