"""Message Counter: counts chat-message webhooks once per account and hour."""
