"""Message Counter: counts chat-message webhooks per account and hour, each message once."""
