-- Each customer's order summary, kept in the transaction of every placement and cancellation
-- and carried in its event (OnNewOrder v3, OrderCancelled v2): the read side keeps the summary
-- of the highest summary_version, a write of constant size. Customers with earlier orders
-- start from what the orders table holds, one version per placement and per cancellation.
ALTER TABLE customers
    ADD COLUMN summary_version       BIGINT NOT NULL DEFAULT 0 CHECK (summary_version >= 0),
    ADD COLUMN placed_order_count    BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN placed_quantity       BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN cancelled_order_count BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN cancelled_quantity    BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN last_order_at         TIMESTAMPTZ;

UPDATE customers
SET placed_order_count    = counted.placed,
    placed_quantity       = counted.placed_quantity,
    cancelled_order_count = counted.cancelled,
    cancelled_quantity    = counted.cancelled_quantity,
    summary_version       = counted.placed + counted.cancelled,
    last_order_at         = counted.last_order_at
FROM (
    SELECT customer_email,
           count(*)                                                        AS placed,
           sum(quantity)                                                   AS placed_quantity,
           count(*) FILTER (WHERE status = 'cancelled')                    AS cancelled,
           coalesce(sum(quantity) FILTER (WHERE status = 'cancelled'), 0)  AS cancelled_quantity,
           max(created_at)                                                 AS last_order_at
    FROM orders
    GROUP BY customer_email
) AS counted
WHERE customers.email = counted.customer_email;
