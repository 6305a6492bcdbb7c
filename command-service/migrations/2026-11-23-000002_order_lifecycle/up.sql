-- Orders can be cancelled, and carry an optional unit price (OnNewOrder schema version 2).
-- Orders placed before this migration keep a NULL price: it was never recorded.
ALTER TABLE orders
    ADD COLUMN status              TEXT NOT NULL DEFAULT 'placed'
                                   CHECK (status IN ('placed', 'cancelled')),
    ADD COLUMN cancelled_at        TIMESTAMPTZ,
    ADD COLUMN cancellation_reason TEXT,
    ADD COLUMN unit_price_minor    BIGINT CHECK (unit_price_minor >= 0),
    ADD COLUMN currency            TEXT CHECK (currency ~ '^[A-Z]{3}$'),
    ADD CONSTRAINT orders_price_has_currency
        CHECK ((unit_price_minor IS NULL) = (currency IS NULL)),
    ADD CONSTRAINT orders_cancelled_has_time
        CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL));
