-- Each order's positions in the read side's listings, given in the transaction that places it
-- and carried in its events (OnNewOrder v4, OrderCancelled v3): its place among all orders,
-- its customer's place among customers (given with their first order), and its place among its
-- customer's orders. The read side derives every page from them, with no counter of its own.
-- Orders placed before are numbered in the order of their OnNewOrder in the event log, as a
-- rebuild numbers their events (query-service's rebuild::numbering): both sides agree.
-- Numbering rewrites every order: no statement limit (the service's pool sets one) for this
-- migration's transaction.
SET LOCAL statement_timeout = 0;

CREATE SEQUENCE order_list_positions AS BIGINT;
CREATE SEQUENCE customer_list_positions AS BIGINT;

ALTER TABLE orders
    ADD COLUMN list_position  BIGINT,
    ADD COLUMN customer_order BIGINT;
ALTER TABLE customers ADD COLUMN list_position BIGINT;

WITH placed AS (
    SELECT orders.id, orders.customer_email,
           row_number() OVER (ORDER BY outbox.id) AS list_position,
           row_number() OVER (PARTITION BY orders.customer_email ORDER BY outbox.id) AS customer_order
      FROM orders
      JOIN outbox ON outbox.aggregate_id = orders.id AND outbox.event_type = 'OnNewOrder'
)
UPDATE orders
   SET list_position = placed.list_position, customer_order = placed.customer_order
  FROM placed
 WHERE orders.id = placed.id;

WITH first_seen AS (
    SELECT customer_email, row_number() OVER (ORDER BY min(list_position)) AS list_position
      FROM orders
     WHERE list_position IS NOT NULL
     GROUP BY customer_email
)
UPDATE customers
   SET list_position = first_seen.list_position
  FROM first_seen
 WHERE customers.email = first_seen.customer_email;

SELECT setval('order_list_positions', coalesce(max(list_position), 0) + 1, false) FROM orders;
SELECT setval('customer_list_positions', coalesce(max(list_position), 0) + 1, false) FROM customers;

ALTER TABLE orders
    ALTER COLUMN list_position SET NOT NULL,
    ALTER COLUMN customer_order SET NOT NULL;
ALTER TABLE customers ALTER COLUMN list_position SET NOT NULL;
