ALTER TABLE orders
    DROP CONSTRAINT orders_cancelled_has_time,
    DROP CONSTRAINT orders_price_has_currency,
    DROP COLUMN currency,
    DROP COLUMN unit_price_minor,
    DROP COLUMN cancellation_reason,
    DROP COLUMN cancelled_at,
    DROP COLUMN status;
