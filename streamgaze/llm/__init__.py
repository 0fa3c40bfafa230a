"""The OpenAI-compatible client every model caller shares: retries, redaction, and the on-disk cache."""
