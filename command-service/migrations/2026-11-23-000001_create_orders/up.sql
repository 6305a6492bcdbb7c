CREATE TABLE customers (
    email      TEXT PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id             UUID PRIMARY KEY,
    customer_email TEXT NOT NULL REFERENCES customers (email),
    description    TEXT NOT NULL,
    quantity       INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    version        BIGINT NOT NULL DEFAULT 1,
    created_at     TIMESTAMPTZ NOT NULL
);

CREATE INDEX orders_customer_email_idx ON orders (customer_email);

-- One row per event, written in the same transaction as the state change it describes.
-- Published rows are kept: together they are the write side's event log.
CREATE TABLE outbox (
    id               BIGSERIAL PRIMARY KEY,
    event_id         UUID NOT NULL UNIQUE,
    aggregate_id     UUID NOT NULL,
    event_type       TEXT NOT NULL,
    routing_key      TEXT NOT NULL,
    envelope         JSONB NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at     TIMESTAMPTZ,
    -- A relay that claimed the row owns it until this time; after a crash another may take it.
    claimed_until    TIMESTAMPTZ,
    publish_attempts INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT
);

CREATE INDEX outbox_pending_idx ON outbox (id) WHERE published_at IS NULL;
