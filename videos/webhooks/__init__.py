"""Outbound webhooks, signed the Standard Webhooks way (`webhook-id`, `webhook-timestamp`,
`webhook-signature`): endpoints per project (`endpoints.py`), events recorded as deliveries in
the same transaction as the change that causes them (`events.py`), and workers sending them
with retries for about a day (`delivery.py`)."""
