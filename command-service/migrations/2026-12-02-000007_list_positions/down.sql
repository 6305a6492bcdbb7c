ALTER TABLE customers DROP COLUMN list_position;
ALTER TABLE orders DROP COLUMN customer_order, DROP COLUMN list_position;
DROP SEQUENCE customer_list_positions;
DROP SEQUENCE order_list_positions;
