//! JSON Schemas of the events, generated from the Rust types, so that consumers in other
//! languages can validate what they receive. The checked-in copies in `schemas/` are compared
//! with these by this crate's tests.

use schemars::{JsonSchema, Schema};
use serde_json::json;

use crate::{
    EventEnvelope, OnNewOrder, OnNewOrderV1, OnNewOrderV2, OnNewOrderV3, OnNewOrderV4,
    OrderCancelled, OrderCancelledV1, OrderCancelledV2, OrderCancelledV3,
};

/// One published schema: the file it is checked in as, and its content.
pub struct EventSchema {
    pub event_type: &'static str,
    pub version: u32,
    pub file_name: String,
    pub schema: Schema,
}

/// The schema of every event type and version this code can decode.
pub fn event_schemas() -> Vec<EventSchema> {
    vec![
        envelope_schema::<OnNewOrderV1>(OnNewOrder::EVENT_TYPE, OnNewOrderV1::SCHEMA_VERSION),
        envelope_schema::<OnNewOrderV2>(OnNewOrder::EVENT_TYPE, OnNewOrderV2::SCHEMA_VERSION),
        envelope_schema::<OnNewOrderV3>(OnNewOrder::EVENT_TYPE, OnNewOrderV3::SCHEMA_VERSION),
        envelope_schema::<OnNewOrderV4>(OnNewOrder::EVENT_TYPE, OnNewOrderV4::SCHEMA_VERSION),
        envelope_schema::<OnNewOrder>(OnNewOrder::EVENT_TYPE, OnNewOrder::SCHEMA_VERSION),
        envelope_schema::<OrderCancelledV1>(
            OrderCancelled::EVENT_TYPE,
            OrderCancelledV1::SCHEMA_VERSION,
        ),
        envelope_schema::<OrderCancelledV2>(
            OrderCancelled::EVENT_TYPE,
            OrderCancelledV2::SCHEMA_VERSION,
        ),
        envelope_schema::<OrderCancelledV3>(
            OrderCancelled::EVENT_TYPE,
            OrderCancelledV3::SCHEMA_VERSION,
        ),
        envelope_schema::<OrderCancelled>(
            OrderCancelled::EVENT_TYPE,
            OrderCancelled::SCHEMA_VERSION,
        ),
    ]
}

/// The envelope around payload `P`, with its event type and schema version pinned.
fn envelope_schema<P: JsonSchema>(event_type: &'static str, version: u32) -> EventSchema {
    let mut schema = schemars::schema_for!(EventEnvelope<P>);
    schema.insert(
        "title".to_owned(),
        json!(format!("{event_type} v{version}")),
    );
    if let Some(properties) = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        properties.insert("eventType".to_owned(), json!({ "const": event_type }));
        properties.insert("schemaVersion".to_owned(), json!({ "const": version }));
    }
    EventSchema {
        event_type,
        version,
        file_name: format!("{event_type}.v{version}.schema.json"),
        schema,
    }
}
