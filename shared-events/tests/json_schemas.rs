#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use std::path::PathBuf;

use serde_json::Value;
use shared_events::fixtures::{
    ON_NEW_ORDER_V1_JSON, ON_NEW_ORDER_V2_JSON, ON_NEW_ORDER_V3_JSON, ON_NEW_ORDER_V4_JSON,
    ON_NEW_ORDER_V5_JSON, ORDER_CANCELLED_V1_JSON, ORDER_CANCELLED_V2_JSON,
    ORDER_CANCELLED_V3_JSON, ORDER_CANCELLED_V4_JSON,
};
use shared_events::schemas::event_schemas;

fn schema_path(file_name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(file_name)
}

fn checked_in(file_name: &str) -> Value {
    let text = std::fs::read_to_string(schema_path(file_name))
        .unwrap_or_else(|error| panic!("schemas/{file_name}: {error}"));
    serde_json::from_str(&text).unwrap()
}

/// Run with `UPDATE_SCHEMAS=1` to rewrite the checked-in schemas after changing an event type.
#[test]
fn the_checked_in_schemas_are_generated_from_the_current_types() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    for generated in event_schemas() {
        let text = serde_json::to_string_pretty(&generated.schema).unwrap() + "\n";
        if update {
            std::fs::write(schema_path(&generated.file_name), &text).unwrap();
        }
        assert_eq!(
            checked_in(&generated.file_name),
            serde_json::to_value(&generated.schema).unwrap(),
            "schemas/{} is out of date: run `UPDATE_SCHEMAS=1 cargo test -p shared-events`",
            generated.file_name
        );
    }
}

fn validator(file_name: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&checked_in(file_name)).expect("the schema is itself valid")
}

#[test]
fn every_golden_event_validates_against_its_schema() {
    for (file_name, golden) in [
        ("OnNewOrder.v1.schema.json", ON_NEW_ORDER_V1_JSON),
        ("OnNewOrder.v2.schema.json", ON_NEW_ORDER_V2_JSON),
        ("OnNewOrder.v3.schema.json", ON_NEW_ORDER_V3_JSON),
        ("OnNewOrder.v4.schema.json", ON_NEW_ORDER_V4_JSON),
        ("OnNewOrder.v5.schema.json", ON_NEW_ORDER_V5_JSON),
        ("OrderCancelled.v1.schema.json", ORDER_CANCELLED_V1_JSON),
        ("OrderCancelled.v2.schema.json", ORDER_CANCELLED_V2_JSON),
        ("OrderCancelled.v3.schema.json", ORDER_CANCELLED_V3_JSON),
        ("OrderCancelled.v4.schema.json", ORDER_CANCELLED_V4_JSON),
    ] {
        let instance: Value = serde_json::from_str(golden).unwrap();
        let errors: Vec<String> = validator(file_name)
            .iter_errors(&instance)
            .map(|error| error.to_string())
            .collect();
        assert!(errors.is_empty(), "{file_name}: {errors:?}");
    }
}

#[test]
fn the_schemas_reject_a_wrong_version_and_a_missing_field() {
    let v1: Value = serde_json::from_str(ON_NEW_ORDER_V1_JSON).unwrap();
    assert!(!validator("OnNewOrder.v2.schema.json").is_valid(&v1));

    let mut without_quantity: Value = serde_json::from_str(ON_NEW_ORDER_V2_JSON).unwrap();
    without_quantity["payload"]
        .as_object_mut()
        .unwrap()
        .remove("quantity");
    assert!(!validator("OnNewOrder.v2.schema.json").is_valid(&without_quantity));

    let mut text_quantity: Value = serde_json::from_str(ORDER_CANCELLED_V1_JSON).unwrap();
    text_quantity["payload"]["order"]["quantity"] = Value::from("three");
    assert!(!validator("OrderCancelled.v1.schema.json").is_valid(&text_quantity));

    let mut without_owner: Value = serde_json::from_str(ON_NEW_ORDER_V5_JSON).unwrap();
    without_owner["payload"]
        .as_object_mut()
        .unwrap()
        .remove("owner");
    assert!(!validator("OnNewOrder.v5.schema.json").is_valid(&without_owner));
}
