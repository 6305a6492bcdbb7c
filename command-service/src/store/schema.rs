// @generated automatically by Diesel CLI.

diesel::table! {
    customers (owner, email) {
        email -> Text,
        first_name -> Text,
        last_name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        summary_version -> Int8,
        placed_order_count -> Int8,
        placed_quantity -> Int8,
        cancelled_order_count -> Int8,
        cancelled_quantity -> Int8,
        last_order_at -> Nullable<Timestamptz>,
        list_position -> Int8,
        owner -> Text,
        owner_position -> Int8,
    }
}

diesel::table! {
    idempotency_keys (principal, key) {
        key -> Text,
        request -> Jsonb,
        order_id -> Uuid,
        created_at -> Timestamptz,
        principal -> Text,
    }
}

diesel::table! {
    orders (id) {
        id -> Uuid,
        customer_email -> Text,
        description -> Text,
        quantity -> Int4,
        version -> Int8,
        created_at -> Timestamptz,
        status -> Text,
        cancelled_at -> Nullable<Timestamptz>,
        cancellation_reason -> Nullable<Text>,
        unit_price_minor -> Nullable<Int8>,
        currency -> Nullable<Text>,
        list_position -> Int8,
        customer_order -> Int8,
        owner -> Text,
        owner_position -> Int8,
    }
}

diesel::table! {
    owners (owner) {
        owner -> Text,
        order_count -> Int8,
        customer_count -> Int8,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        event_id -> Uuid,
        aggregate_id -> Uuid,
        event_type -> Text,
        routing_key -> Text,
        envelope -> Jsonb,
        created_at -> Timestamptz,
        published_at -> Nullable<Timestamptz>,
        claimed_until -> Nullable<Timestamptz>,
        publish_attempts -> Int4,
        last_error -> Nullable<Text>,
        aggregate_version -> Int8,
        trace_parent -> Nullable<Text>,
    }
}

diesel::joinable!(idempotency_keys -> orders (order_id));

diesel::allow_tables_to_appear_in_same_query!(customers, idempotency_keys, orders, outbox, owners,);
