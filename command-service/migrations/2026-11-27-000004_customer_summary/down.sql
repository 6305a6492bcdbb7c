ALTER TABLE customers
    DROP COLUMN summary_version,
    DROP COLUMN placed_order_count,
    DROP COLUMN placed_quantity,
    DROP COLUMN cancelled_order_count,
    DROP COLUMN cancelled_quantity,
    DROP COLUMN last_order_at;
