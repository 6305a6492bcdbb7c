-- The W3C traceparent of the request that caused each event, published in the message's
-- headers so that the relay and the projection continue its trace. NULL: none to continue.
ALTER TABLE outbox ADD COLUMN trace_parent text;
