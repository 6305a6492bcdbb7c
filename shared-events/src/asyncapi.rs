//! The events' contract as an AsyncAPI 3.0 document, built from the same types and constants
//! the services publish and consume with: the exchange and routing keys, the message
//! properties and headers the relay sets, and each event type and schema version's JSON
//! Schema ([`crate::schemas`]). Tools read it (the AsyncAPI CLI validates it in CI); the
//! query-service serves it with its own queues.

use serde_json::{json, Map, Value};

use crate::schemas::{event_schemas, EventSchema};
use crate::{
    routing_key, OnNewOrder, OrderCancelled, ORDER_EVENTS_EXCHANGE, REQUEST_ID_HEADER,
    TRACEPARENT_HEADER,
};

/// The version of the AsyncAPI bindings for AMQP 0-9-1 the document uses.
const AMQP_BINDING_VERSION: &str = "0.3.0";

/// A queue a consumer receives the events from, as a channel of the document.
pub struct QueueChannel<'a> {
    /// The channel's id in the document.
    pub id: &'a str,
    /// The queue's name on the broker.
    pub name: &'a str,
    pub description: &'a str,
}

/// The id of the message of `event_type` at schema `version` in the document: `OnNewOrder.v5`.
pub fn message_id(event_type: &str, version: u32) -> String {
    format!("{event_type}.v{version}")
}

/// The AsyncAPI document: the exchange every event is published to, `queues` (which receive
/// every event), and one message per event type and schema version this code decodes.
pub fn document(queues: &[QueueChannel<'_>]) -> Value {
    let schemas = event_schemas();
    let messages: Map<String, Value> = schemas
        .iter()
        .map(|schema| {
            (
                message_id(schema.event_type, schema.version),
                message(schema),
            )
        })
        .collect();
    // Every channel carries every message.
    let channel_messages: Map<String, Value> = messages
        .keys()
        .map(|id| {
            let reference = json!({ "$ref": format!("#/components/messages/{id}") });
            (id.clone(), reference)
        })
        .collect();
    let routing_keys: Vec<String> = [OnNewOrder::EVENT_TYPE, OrderCancelled::EVENT_TYPE]
        .iter()
        .map(|event_type| routing_key(event_type))
        .collect();

    let mut channels = Map::new();
    channels.insert(
        "orderEvents".to_owned(),
        json!({
            "address": ORDER_EVENTS_EXCHANGE,
            "title": "Every order event",
            "description": format!(
                "The durable topic exchange the command side's outbox relay publishes every \
                 event to, with routing key `order.<eventType>` ({}), as a persistent message \
                 with publisher confirms and `mandatory` set.",
                routing_keys.join(", ")
            ),
            "messages": channel_messages.clone(),
            "bindings": { "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": ORDER_EVENTS_EXCHANGE,
                    "type": "topic",
                    "durable": true,
                    "autoDelete": false,
                    "vhost": "/",
                },
                "bindingVersion": AMQP_BINDING_VERSION,
            }},
        }),
    );
    let mut operations = Map::new();
    operations.insert(
        "publishOrderEvents".to_owned(),
        json!({
            "action": "send",
            "title": "The outbox relay publishes each committed event",
            "channel": { "$ref": "#/channels/orderEvents" },
            "messages": channel_refs("orderEvents", messages.keys()),
            "bindings": { "amqp": {
                "deliveryMode": 2,
                "mandatory": true,
                "bindingVersion": AMQP_BINDING_VERSION,
            }},
        }),
    );
    for queue in queues {
        channels.insert(
            queue.id.to_owned(),
            json!({
                "address": queue.name,
                "description": queue.description,
                "messages": channel_messages.clone(),
                "bindings": { "amqp": {
                    "is": "queue",
                    "queue": {
                        "name": queue.name,
                        "durable": true,
                        "exclusive": false,
                        "autoDelete": false,
                        "vhost": "/",
                    },
                    "bindingVersion": AMQP_BINDING_VERSION,
                }},
            }),
        );
        operations.insert(
            format!("receiveFrom{}", upper_first(queue.id)),
            json!({
                "action": "receive",
                "channel": { "$ref": format!("#/channels/{}", queue.id) },
                "messages": channel_refs(queue.id, messages.keys()),
                "bindings": { "amqp": {
                    "ack": true,
                    "bindingVersion": AMQP_BINDING_VERSION,
                }},
            }),
        );
    }

    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Order events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "What the command side publishes and the query side consumes: \
                            one envelope (event id, type, schema version, aggregate id and \
                            version, correlation id) around each event's payload. A consumer \
                            decodes every version listed here; the newest of each type is \
                            the one published now.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages },
    })
}

/// References to the messages `ids` of the channel `channel`, for an operation.
fn channel_refs<'a>(channel: &str, ids: impl Iterator<Item = &'a String>) -> Vec<Value> {
    ids.map(|id| json!({ "$ref": format!("#/channels/{channel}/messages/{id}") }))
        .collect()
}

fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The message of one event type and version: its properties and headers as the relay sets
/// them, and its envelope's JSON Schema with every definition written in place (a `$ref`
/// inside a document resolves against the document's root).
fn message(schema: &EventSchema) -> Value {
    let (event_type, version) = (schema.event_type, schema.version);
    let mut payload = serde_json::to_value(&schema.schema).unwrap_or(Value::Null);
    let definitions = payload
        .as_object_mut()
        .and_then(|object| {
            object.remove("$schema");
            object.remove("$defs")
        })
        .unwrap_or(Value::Null);
    inline_definitions(&mut payload, &definitions);
    json!({
        "name": event_type,
        "title": format!("{event_type} v{version}"),
        "contentType": "application/json",
        "correlationId": {
            "description": "The id of the HTTP request that caused the event, also the \
                            message's correlation_id property and the envelope's \
                            correlationId.",
            "location": format!("$message.header#/{REQUEST_ID_HEADER}"),
        },
        "headers": {
            "type": "object",
            "properties": {
                REQUEST_ID_HEADER: { "type": "string" },
                TRACEPARENT_HEADER: {
                    "type": "string",
                    "description": "The W3C trace context of the request that caused the \
                                    event, when it came in a trace (absent otherwise).",
                    "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                },
            },
            "required": [REQUEST_ID_HEADER],
            "additionalProperties": false,
        },
        "payload": payload,
        "bindings": { "amqp": {
            "messageType": event_type,
            "bindingVersion": AMQP_BINDING_VERSION,
        }},
    })
}

/// Replaces every `{"$ref": "#/$defs/<name>"}` in `schema` by that definition, itself with its
/// references replaced (the event types hold no cycle).
fn inline_definitions(schema: &mut Value, definitions: &Value) {
    match schema {
        Value::Object(object) => {
            let target = object
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|reference| reference.strip_prefix("#/$defs/"))
                .and_then(|name| definitions.get(name))
                .cloned();
            if let Some(mut definition) = target {
                inline_definitions(&mut definition, definitions);
                object.remove("$ref");
                if let Value::Object(fields) = definition {
                    for (key, value) in fields {
                        object.entry(key).or_insert(value);
                    }
                }
            }
            for value in object.values_mut() {
                inline_definitions(value, definitions);
            }
        }
        Value::Array(items) => {
            for item in items {
                inline_definitions(item, definitions);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_decoded_version_is_a_message_on_the_exchange_and_no_reference_is_left_dangling() {
        let document = document(&[QueueChannel {
            id: "projection",
            name: "orders.query-projection",
            description: "The query side's queue",
        }]);

        let messages = document["components"]["messages"].as_object().unwrap();
        assert!(messages.contains_key("OnNewOrder.v5"));
        assert!(messages.contains_key("OrderCancelled.v1"));
        assert_eq!(messages.len(), event_schemas().len());
        assert_eq!(
            document["channels"]["orderEvents"]["address"],
            ORDER_EVENTS_EXCHANGE
        );
        assert_eq!(
            document["channels"]["projection"]["bindings"]["amqp"]["queue"]["name"],
            "orders.query-projection"
        );
        let text = document.to_string();
        assert!(!text.contains("#/$defs/"), "a definition left behind");
        assert!(!text.contains("\"$schema\""));
    }
}
