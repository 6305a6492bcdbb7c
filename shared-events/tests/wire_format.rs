#![allow(clippy::unwrap_used)] // test code: a failed expectation should panic

use serde_json::json;
use shared_events::fixtures::{on_new_order_v1, ON_NEW_ORDER_V1_JSON};
use shared_events::{DecodeError, EventEnvelope};

#[test]
fn on_new_order_v1_encodes_exactly_as_the_golden_file() {
    let encoded = serde_json::to_string_pretty(&on_new_order_v1()).unwrap() + "\n";
    assert_eq!(
        encoded, ON_NEW_ORDER_V1_JSON,
        "the wire format changed: add a new schema version instead of editing this one"
    );
}

#[test]
fn the_golden_on_new_order_v1_decodes_to_the_same_event() {
    let decoded = EventEnvelope::decode(ON_NEW_ORDER_V1_JSON.as_bytes()).unwrap();
    assert_eq!(decoded, on_new_order_v1());
}

#[test]
fn the_routing_key_names_the_event_type() {
    assert_eq!(on_new_order_v1().routing_key(), "order.OnNewOrder");
}

fn golden_with(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_str(ON_NEW_ORDER_V1_JSON).unwrap();
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
    let bytes = golden_with(|v| v["eventType"] = json!("OnOrderTeleported"));
    let error = EventEnvelope::decode(&bytes).unwrap_err();
    assert!(matches!(&error, DecodeError::UnknownEventType(t) if t == "OnOrderTeleported"));
    assert_eq!(error.reason_code(), "unknown-event-type");
}

#[test]
fn an_unknown_schema_version_is_reported() {
    let bytes = golden_with(|v| v["schemaVersion"] = json!(99));
    let error = EventEnvelope::decode(&bytes).unwrap_err();
    assert!(matches!(
        error,
        DecodeError::UnsupportedSchemaVersion { version: 99, .. }
    ));
}

#[test]
fn a_payload_missing_a_field_is_invalid() {
    let bytes = golden_with(|v| {
        v["payload"].as_object_mut().unwrap().remove("quantity");
    });
    let error = EventEnvelope::decode(&bytes).unwrap_err();
    assert!(
        matches!(error, DecodeError::InvalidPayload { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("quantity"), "{error}");
}
