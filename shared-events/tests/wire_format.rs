#![allow(clippy::unwrap_used)] // test code: a failed expectation should panic

use serde::Serialize;
use serde_json::json;
use shared_events::fixtures::{
    on_new_order_v1, on_new_order_v2, on_new_order_v3, on_new_order_v4, on_new_order_v5,
    order_cancelled_v1, order_cancelled_v2, order_cancelled_v3, order_cancelled_v4, FIXTURE_OWNER,
    ON_NEW_ORDER_V1_JSON, ON_NEW_ORDER_V2_JSON, ON_NEW_ORDER_V3_JSON, ON_NEW_ORDER_V4_JSON,
    ON_NEW_ORDER_V5_JSON, ORDER_CANCELLED_V1_JSON, ORDER_CANCELLED_V2_JSON,
    ORDER_CANCELLED_V3_JSON, ORDER_CANCELLED_V4_JSON,
};
use shared_events::{
    DecodeError, EventEnvelope, OnNewOrder, OrderCancelled, OrderEvent, OwnerPositions,
};

fn encode<T: Serialize>(event: &T) -> String {
    serde_json::to_string_pretty(event).unwrap() + "\n"
}

const CHANGED: &str =
    "the wire format changed: add a new schema version instead of editing this one";

#[test]
fn each_event_version_encodes_exactly_as_its_golden_file() {
    assert_eq!(
        encode(&on_new_order_v1()),
        ON_NEW_ORDER_V1_JSON,
        "{CHANGED}"
    );
    assert_eq!(
        encode(&on_new_order_v2()),
        ON_NEW_ORDER_V2_JSON,
        "{CHANGED}"
    );
    assert_eq!(
        encode(&on_new_order_v3()),
        ON_NEW_ORDER_V3_JSON,
        "{CHANGED}"
    );
    assert_eq!(
        encode(&on_new_order_v4()),
        ON_NEW_ORDER_V4_JSON,
        "{CHANGED}"
    );
    assert_eq!(
        encode(&order_cancelled_v1()),
        ORDER_CANCELLED_V1_JSON,
        "{CHANGED}"
    );
    assert_eq!(
        encode(&order_cancelled_v2()),
        ORDER_CANCELLED_V2_JSON,
        "{CHANGED}"
    );
    assert_eq!(
        encode(&order_cancelled_v3()),
        ORDER_CANCELLED_V3_JSON,
        "{CHANGED}"
    );
    assert_eq!(
        encode(&on_new_order_v5()),
        ON_NEW_ORDER_V5_JSON,
        "{CHANGED}"
    );
    assert_eq!(
        encode(&order_cancelled_v4()),
        ORDER_CANCELLED_V4_JSON,
        "{CHANGED}"
    );
}

#[test]
fn the_current_golden_files_decode_to_the_same_events() {
    let placed = EventEnvelope::decode(ON_NEW_ORDER_V5_JSON.as_bytes()).unwrap();
    assert_eq!(placed, on_new_order_v5());
    assert_eq!(placed.payload.owner(), FIXTURE_OWNER);
    let cancelled = EventEnvelope::decode(ORDER_CANCELLED_V4_JSON.as_bytes()).unwrap();
    assert_eq!(cancelled, order_cancelled_v4());
    assert_eq!(cancelled.payload.owner(), FIXTURE_OWNER);
}

#[test]
fn events_before_owners_are_upcast_as_the_anonymous_owner_s_at_their_list_positions() {
    for (golden, current) in [
        (ON_NEW_ORDER_V4_JSON, on_new_order_v5()),
        (ORDER_CANCELLED_V3_JSON, order_cancelled_v4()),
    ] {
        let upcast = EventEnvelope::decode(golden.as_bytes()).unwrap();
        assert_eq!(upcast.payload.owner(), "");
        let positions = upcast.payload.list_positions().unwrap();
        assert_eq!(positions, current.payload.list_positions().unwrap());
        assert_eq!(
            upcast.payload.owner_positions(),
            Some(OwnerPositions {
                order: positions.order,
                customer: positions.customer,
            })
        );
        assert_eq!(upcast.payload.order(), current.payload.order());
        assert_eq!(
            upcast.payload.customer_summary(),
            current.payload.customer_summary()
        );
    }
    assert_eq!(
        EventEnvelope::decode(ON_NEW_ORDER_V4_JSON.as_bytes())
            .unwrap()
            .event_id,
        on_new_order_v4().event_id
    );
}

#[test]
fn events_before_the_list_positions_are_upcast_without_them_and_keep_their_summary() {
    let placed = EventEnvelope::decode(ON_NEW_ORDER_V3_JSON.as_bytes()).unwrap();
    let current = on_new_order_v5();
    assert_eq!(placed.schema_version, OnNewOrder::SCHEMA_VERSION);
    assert_eq!(placed.payload.list_positions(), None);
    assert_eq!(placed.payload.owner_positions(), None);
    assert_eq!(
        placed.payload.customer_summary(),
        current.payload.customer_summary()
    );
    assert_eq!(placed.payload.order(), current.payload.order());

    let cancelled = EventEnvelope::decode(ORDER_CANCELLED_V2_JSON.as_bytes()).unwrap();
    let current = order_cancelled_v4();
    assert_eq!(cancelled.schema_version, OrderCancelled::SCHEMA_VERSION);
    assert_eq!(cancelled.payload.list_positions(), None);
    assert_eq!(cancelled.payload.owner_positions(), None);
    assert_eq!(
        cancelled.payload.customer_summary(),
        current.payload.customer_summary()
    );
    assert_eq!(cancelled.payload.order(), current.payload.order());
}

#[test]
fn events_before_the_customer_summary_are_upcast_without_one() {
    let placed = EventEnvelope::decode(ON_NEW_ORDER_V2_JSON.as_bytes()).unwrap();
    let current = on_new_order_v5();
    assert_eq!(placed.schema_version, OnNewOrder::SCHEMA_VERSION);
    assert_eq!(placed.payload.customer_summary(), None);
    assert_eq!(placed.payload.order(), current.payload.order());
    assert_eq!(placed.event_id, on_new_order_v2().event_id);

    let cancelled = EventEnvelope::decode(ORDER_CANCELLED_V1_JSON.as_bytes()).unwrap();
    let current = order_cancelled_v4();
    assert_eq!(cancelled.schema_version, OrderCancelled::SCHEMA_VERSION);
    assert_eq!(cancelled.payload.customer_summary(), None);
    assert_eq!(cancelled.payload.order(), current.payload.order());
    let (OrderEvent::OrderCancelled(old), OrderEvent::OrderCancelled(new)) =
        (&cancelled.payload, &current.payload)
    else {
        panic!("not cancellations: {cancelled:?}");
    };
    assert_eq!(
        (&old.reason, old.cancelled_at),
        (&new.reason, new.cancelled_at)
    );
    assert_eq!(cancelled.event_id, order_cancelled_v1().event_id);
}

#[test]
fn a_version_1_order_is_upcast_without_a_price() {
    let upcast = EventEnvelope::decode(ON_NEW_ORDER_V1_JSON.as_bytes()).unwrap();
    let v1 = on_new_order_v1();
    assert_eq!(upcast.schema_version, OnNewOrder::SCHEMA_VERSION);
    assert_eq!(upcast.event_id, v1.event_id);
    assert_eq!(upcast.aggregate_version, 1);
    let OrderEvent::OnNewOrder(event) = upcast.payload else {
        panic!("not an OnNewOrder: {upcast:?}");
    };
    assert_eq!(event.order_id, v1.payload.order_id);
    assert_eq!(event.order.description, v1.payload.description);
    assert_eq!(event.order.quantity, v1.payload.quantity);
    assert_eq!(event.order.customer, v1.payload.customer);
    assert_eq!(event.order.created_at, v1.payload.created_at);
    assert_eq!(event.order.unit_price, None);
}

#[test]
fn the_routing_key_names_the_event_type() {
    assert_eq!(on_new_order_v5().routing_key(), "order.OnNewOrder");
    assert_eq!(order_cancelled_v4().routing_key(), "order.OrderCancelled");
}

fn golden_with(golden: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_str(golden).unwrap();
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

#[test]
fn bytes_that_are_not_an_envelope_are_malformed() {
    for bytes in [&b"not json"[..], b"{}", b"[1,2]", b"{\"eventId\": 5}"] {
        let error = EventEnvelope::decode(bytes).unwrap_err();
        assert!(matches!(error, DecodeError::Malformed(_)), "{error:?}");
        assert_eq!(error.reason_code(), "malformed-envelope");
    }
}

#[test]
fn an_unknown_event_type_is_reported_by_name() {
    let bytes = golden_with(ON_NEW_ORDER_V3_JSON, |v| {
        v["eventType"] = json!("OnOrderTeleported")
    });
    let error = EventEnvelope::decode(&bytes).unwrap_err();
    assert!(matches!(&error, DecodeError::UnknownEventType(t) if t == "OnOrderTeleported"));
    assert_eq!(error.reason_code(), "unknown-event-type");
}

#[test]
fn an_unknown_schema_version_is_reported() {
    for golden in [ON_NEW_ORDER_V5_JSON, ORDER_CANCELLED_V4_JSON] {
        let bytes = golden_with(golden, |v| v["schemaVersion"] = json!(99));
        let error = EventEnvelope::decode(&bytes).unwrap_err();
        assert!(
            matches!(
                error,
                DecodeError::UnsupportedSchemaVersion { version: 99, .. }
            ),
            "{error:?}"
        );
    }
}

#[test]
fn a_payload_missing_a_field_is_invalid() {
    for golden in [
        ON_NEW_ORDER_V1_JSON,
        ON_NEW_ORDER_V2_JSON,
        ON_NEW_ORDER_V3_JSON,
        ON_NEW_ORDER_V4_JSON,
        ON_NEW_ORDER_V5_JSON,
    ] {
        let bytes = golden_with(golden, |v| {
            v["payload"].as_object_mut().unwrap().remove("quantity");
        });
        let error = EventEnvelope::decode(&bytes).unwrap_err();
        assert!(
            matches!(error, DecodeError::InvalidPayload { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("quantity"), "{error}");
    }
}
