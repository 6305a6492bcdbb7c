-- A client's Idempotency-Key for POST /orders, written in the same transaction as the order:
-- a retry with the same key and request gets the same order instead of a second one.
CREATE TABLE idempotency_keys (
    key        TEXT PRIMARY KEY,
    -- The validated request, canonical JSON: the same key with another request is refused.
    request    JSONB NOT NULL,
    order_id   UUID NOT NULL REFERENCES orders (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
