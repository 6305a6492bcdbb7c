use std::time::Duration;

use chrono::{SubsecRound, TimeDelta, Utc};
use harness::{eventually, take_message, PrivateReadStore, ReadStoreKind};
use serde_json::{json, Value};
use shared_events::fixtures::{with_customer_summary, ON_NEW_ORDER_V1_JSON, ON_NEW_ORDER_V3_JSON};
use shared_events::{CustomerSummary, OrderEvent};

use query_service::config::Settings;
use query_service::read_models::customers::{customer_key, Spans, SPANS_PER_COMPACTION};
use query_service::read_models::SpanLength;
use query_service::store::{KeyLookups, ReadStore};

use query_service::broker::{
    dead_letter_queue_name, replay_dead_letters, ATTEMPTS_HEADER, ERROR_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER, REASON_HEADER,
};

use crate::helpers::{new_order, span_length_of_this_run, spawn_app, spawn_app_on, spawn_app_with};
use service_support::broker::BrokerAddresses;
use service_support::config::LayeredSettings;

#[tokio::test]
async fn a_published_order_becomes_readable_with_its_customer_embedded_and_its_price() {
    let app = spawn_app().await;
    let event = app.placed("ada@example.com", 3, Utc::now());
    app.publish(&event).await;

    let order = app
        .get_eventually(&format!("/orders/{}", event.aggregate_id))
        .await;
    assert_eq!(order["id"], event.aggregate_id.to_string());
    assert_eq!(order["description"], "Analytical engine punch cards");
    assert_eq!(order["quantity"], 3);
    assert_eq!(order["status"], "placed");
    assert_eq!(order["version"], 1);
    assert_eq!(
        order["unitPrice"],
        json!({"amountMinor": 1250, "currency": "EUR"})
    );
    assert_eq!(
        order["customer"],
        json!({"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace"})
    );
    assert!(
        order.get("listPosition").is_none(),
        "positions stay internal"
    );

    let customer = app.get_eventually("/customers/ada@example.com").await;
    assert_eq!(customer["orderCount"], 1);
    assert_eq!(customer["totalQuantity"], 3);
}

#[tokio::test]
async fn an_event_without_list_positions_is_parked_naming_the_rebuild_that_applies_it() {
    let app = spawn_app().await;
    for golden in [ON_NEW_ORDER_V1_JSON, ON_NEW_ORDER_V3_JSON] {
        app.publisher.publish_as_new_order(golden.as_bytes()).await;
    }

    let dead_letter_queue = dead_letter_queue_name(&app.broker.queue);
    for _ in 0..2 {
        let (_, properties) =
            eventually("a dead-lettered message", Duration::from_secs(15), || {
                take_message(&app.amqp_url, &dead_letter_queue)
            })
            .await;
        assert_eq!(header(&properties, REASON_HEADER), "unnumbered-event");
        let error = header(&properties, ERROR_HEADER);
        assert!(error.contains("rebuild"), "{error}");
    }
    let order = app
        .get("/orders/01935f3a-1c00-7000-8000-000000000001")
        .await;
    assert_eq!(order.status(), 404);
}

#[tokio::test]
async fn a_cancelled_order_leaves_the_live_counts_and_is_counted_apart() {
    let app = spawn_app().await;
    let created_at = Utc::now();
    let kept = app.placed("ada@example.com", 2, created_at);
    let placed = app.placed("ada@example.com", 3, created_at);
    let cancelled = app.cancelled(&placed);
    for event in [&kept, &placed, &cancelled, &cancelled, &placed] {
        app.publish(event).await;
    }
    app.wait_until_processed().await;

    let order = app
        .get_eventually(&format!("/orders/{}", placed.aggregate_id))
        .await;
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["version"], 2);
    assert_eq!(order["cancellationReason"], "Ordered twice by mistake");
    assert!(order["cancelledAt"].is_string(), "{order}");
    let customer = app.get_eventually("/customers/ada@example.com").await;
    assert_eq!(customer["orderCount"], 1, "{customer}");
    assert_eq!(customer["totalQuantity"], 2, "{customer}");
    assert_eq!(customer["cancelledOrderCount"], 1, "{customer}");
}

#[tokio::test]
async fn a_cancellation_arriving_before_its_order_builds_and_lists_the_whole_order() {
    let app = spawn_app().await;
    let placed = app.placed("ada@example.com", 3, Utc::now());
    let cancelled = app.cancelled(&placed);
    app.publish(&cancelled).await;
    app.wait_until_processed().await;

    let order = app
        .get_eventually(&format!("/orders/{}", placed.aggregate_id))
        .await;
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["description"], "Analytical engine punch cards");
    assert_eq!(order["quantity"], 3);
    let customer = app.get_eventually("/customers/ada@example.com").await;
    assert_eq!(customer["orderCount"], 0, "{customer}");
    assert_eq!(customer["cancelledOrderCount"], 1, "{customer}");
    // Listed at the position its events carry, below the sentinel placed after it.
    let listed: Vec<Value> = app.get("/orders").await.json().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids[1], placed.aggregate_id.to_string(), "{listed:?}");
    let own: Vec<Value> = app
        .get("/customers/ada@example.com/orders")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own.len(), 1);

    app.publish(&placed).await;
    app.wait_until_processed().await;
    let order = app
        .get_eventually(&format!("/orders/{}", placed.aggregate_id))
        .await;
    assert_eq!(
        order["status"], "cancelled",
        "the later placement changes nothing"
    );
}

#[tokio::test]
async fn the_same_event_delivered_twice_is_counted_once() {
    let app = spawn_app().await;
    let first = app.placed("ada@example.com", 3, Utc::now());
    let second = app.placed("ada@example.com", 4, Utc::now());
    for event in [&first, &first, &second, &first, &second] {
        app.publish(event).await;
    }
    app.wait_until_processed().await;

    let customer = app.get_eventually("/customers/ada@example.com").await;
    assert_eq!(customer["orderCount"], 2);
    assert_eq!(customer["totalQuantity"], 7);
    let orders: Vec<Value> = app
        .get("/orders?email=ada@example.com")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(orders.len(), 2);
}

#[tokio::test]
async fn an_older_version_never_overwrites_a_newer_one() {
    let app = spawn_app().await;
    let mut newer = app.placed("ada@example.com", 3, Utc::now());
    newer.aggregate_version = 2;
    let OrderEvent::OnNewOrder(payload) = &mut newer.payload else {
        unreachable!("placed makes an OnNewOrder")
    };
    payload.order.description = "Version two".into();
    let mut older = newer.clone();
    older.aggregate_version = 1;
    let OrderEvent::OnNewOrder(payload) = &mut older.payload else {
        unreachable!("placed makes an OnNewOrder")
    };
    payload.order.description = "Version one".into();

    app.publish(&newer).await;
    app.publish(&older).await;
    app.wait_until_processed().await;

    let order = app
        .get_eventually(&format!("/orders/{}", newer.aggregate_id))
        .await;
    assert_eq!(order["description"], "Version two");
    assert_eq!(order["version"], 2);
}

#[tokio::test]
async fn the_customer_has_the_names_of_their_newest_summary_whatever_the_arrival_order() {
    let app = spawn_app().await;
    let now = Utc::now();
    let renamed = |event: &mut shared_events::EventEnvelope| {
        let OrderEvent::OnNewOrder(payload) = &mut event.payload else {
            unreachable!("placed makes an OnNewOrder")
        };
        payload.order.customer.last_name = "King".into();
    };
    let earlier = app.placed("ada@example.com", 1, now - TimeDelta::minutes(5));
    let mut latest = app.placed("ada@example.com", 1, now);
    renamed(&mut latest);
    // The same two orders of another customer, arriving in the order they were placed.
    let grace_earlier = app.placed("grace@example.com", 1, now - TimeDelta::minutes(5));
    let mut grace_latest = app.placed("grace@example.com", 1, now);
    renamed(&mut grace_latest);

    for event in [&latest, &earlier, &grace_earlier, &grace_latest] {
        app.publish(event).await;
    }
    app.wait_until_processed().await;

    for email in ["ada@example.com", "grace@example.com"] {
        let customer = app.get_eventually(&format!("/customers/{email}")).await;
        assert_eq!(customer["lastName"], "King", "{customer}");
        assert_eq!(customer["orderCount"], 2, "{customer}");
        assert_eq!(
            customer["lastOrderAt"],
            serde_json::to_value(now.trunc_subsecs(3)).unwrap()
        );
    }
}

/// A summary as the command side carries it.
fn carried(version: u64, placed: (u64, u64), cancelled: (u64, u64)) -> CustomerSummary {
    CustomerSummary {
        version,
        placed_order_count: placed.0,
        placed_quantity: placed.1,
        cancelled_order_count: cancelled.0,
        cancelled_quantity: cancelled.1,
        last_order_at: Utc::now().trunc_subsecs(3),
    }
}

#[tokio::test]
async fn summaries_are_stored_once_a_span_and_the_older_ones_deleted_as_spans_open() {
    let app = spawn_app().await;
    let email = "versions@example.com";
    let summary_of = |app_customer: &Value| {
        (
            app_customer["orderCount"].clone(),
            app_customer["totalQuantity"].clone(),
        )
    };
    let orders = 70_u64;
    let start = Utc::now().trunc_subsecs(3);
    for n in 1..=orders {
        let placed = new_order(email, 2, start + TimeDelta::seconds(n as i64));
        app.publish(&app.numbered(with_customer_summary(
            placed,
            carried(n, (n, 2 * n), (0, 0)),
        )))
        .await;
        if n == 3 {
            app.wait_until_processed().await;
            let customer = app.get_eventually(&format!("/customers/{email}")).await;
            assert_eq!(summary_of(&customer), (json!(3), json!(6)), "{customer}");
            let listed = app.get_eventually("/customers?limit=10").await;
            let listed = listed
                .as_array()
                .unwrap()
                .iter()
                .find(|customer| customer["email"] == email)
                .expect("the customer is listed")
                .clone();
            assert_eq!(summary_of(&listed), (json!(3), json!(6)), "{listed}");
        }
    }
    app.wait_until_processed().await;

    let customer = app.get_eventually(&format!("/customers/{email}")).await;
    assert_eq!(summary_of(&customer), (json!(70), json!(140)), "{customer}");
    let listed = app.get_eventually("/customers?limit=10").await;
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|customer| customer["email"] == email && customer["orderCount"] == 70));
    // Stored: the order that opens each span (see `Spans`), the newest of them where one
    // batch holds several. A batch that opens a span deletes the older documents; on FerretDB
    // only at the customer's sparse compaction points, one span in SPANS_PER_COMPACTION.
    let spans = Spans::of(&customer_key("", email), span_length_of_this_run());
    let last_span = spans.span_of(orders as i64 + 1);
    let first_kept_span = match ReadStoreKind::of_this_run() {
        ReadStoreKind::Secantusd => last_span,
        ReadStoreKind::FerretDb => {
            last_span.div_euclid(SPANS_PER_COMPACTION) * SPANS_PER_COMPACTION
        }
    };
    // The order that opens span `s` closes span `s - 1`.
    let expected: Vec<i64> = (first_kept_span..=last_span)
        .map(|span| match span {
            0 => 1,
            _ => spans.last_order_of(span - 1),
        })
        .collect();
    eventually(
        &format!("documents of orders among {expected:?} alone, the last one's among them"),
        Duration::from_secs(10),
        || async {
            let mut kept: Vec<i64> = app
                .documents("customerSummaries")
                .await
                .iter()
                .filter(|version| version.get_str("customerEmail") == Ok(email))
                .map(|version| {
                    version
                        .get_document("summary")
                        .and_then(|summary| summary.get_i64("version"))
                        .unwrap()
                })
                .collect();
            kept.sort_unstable();
            (kept.last() == expected.last() && kept.iter().all(|kept| expected.contains(kept)))
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn many_keys_are_looked_up_in_a_query_and_spans_are_short_except_on_ferretdb() {
    let database = harness::fresh_mongo_database();
    let mut settings = Settings::defaults().expect("default settings").mongodb;
    settings.uri = database.uri.clone();
    settings.database = database.name.clone();
    let store = ReadStore::new(&settings).await.unwrap();

    let lookups = store.key_lookups().await.unwrap();
    let span_length = store.span_length().await.unwrap();

    let expected = match ReadStoreKind::of_this_run() {
        ReadStoreKind::FerretDb => (KeyLookups::OneEach, SpanLength::LONG),
        ReadStoreKind::Secantusd => (KeyLookups::ManyPerQuery, SpanLength::SHORT),
    };
    assert_eq!((lookups, span_length), expected);
}

fn header(properties: &lapin::BasicProperties, name: &str) -> String {
    match properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(name).cloned())
    {
        Some(lapin::types::AMQPValue::LongString(text)) => text.to_string(),
        Some(lapin::types::AMQPValue::LongLongInt(n)) => n.to_string(),
        other => panic!("header {name}: {other:?}"),
    }
}

#[tokio::test]
async fn unusable_messages_are_retried_then_parked_with_the_reason() {
    let app = spawn_app().await;
    let golden: Value = serde_json::from_str(ON_NEW_ORDER_V1_JSON).unwrap();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut value = golden.clone();
        edit(&mut value);
        serde_json::to_vec(&value).unwrap()
    };
    let poison = [
        (b"not json".to_vec(), "malformed-envelope"),
        (
            with(&|v| v["eventType"] = json!("OnOrderTeleported")),
            "unknown-event-type",
        ),
        (
            with(&|v| v["schemaVersion"] = json!(99)),
            "unsupported-schema-version",
        ),
        (
            with(&|v| v["payload"]["quantity"] = json!("three")),
            "invalid-payload",
        ),
    ];
    for (body, _) in &poison {
        app.publisher.publish_as_new_order(body).await;
    }

    let dead_letter_queue = dead_letter_queue_name(&app.broker.queue);
    let mut parked = Vec::new();
    while parked.len() < poison.len() {
        parked.push(
            eventually("a dead-lettered message", Duration::from_secs(15), || {
                take_message(&app.amqp_url, &dead_letter_queue)
            })
            .await,
        );
    }
    for (body, reason) in &poison {
        let (_, properties) = parked
            .iter()
            .find(|(parked_body, _)| parked_body == body)
            .unwrap_or_else(|| panic!("{reason}: not in the dead-letter queue"));
        assert_eq!(header(properties, REASON_HEADER), *reason);
        assert_eq!(header(properties, ATTEMPTS_HEADER), "3");
        assert!(!header(properties, ERROR_HEADER).is_empty());
        assert_eq!(
            header(properties, ORIGINAL_ROUTING_KEY_HEADER),
            shared_events::routing_key(shared_events::OnNewOrder::EVENT_TYPE)
        );
    }

    // The queue was never blocked: a good event behind them is applied.
    app.wait_until_processed().await;
}

#[tokio::test]
async fn replaying_the_dead_letter_queue_brings_parked_events_back() {
    let app = spawn_app().await;
    let event = app.placed("ada@example.com", 5, Utc::now());
    app.publisher
        .publish_to_queue(
            &dead_letter_queue_name(&app.broker.queue),
            &serde_json::to_vec(&event).unwrap(),
        )
        .await;

    let replayed = replay_dead_letters(&app.broker).await.unwrap();

    assert_eq!(replayed, 1);
    let order = app
        .get_eventually(&format!("/orders/{}", event.aggregate_id))
        .await;
    assert_eq!(order["quantity"], 5);
    assert!(
        take_message(&app.amqp_url, &dead_letter_queue_name(&app.broker.queue))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_batch_with_duplicates_a_cancellation_and_an_unusable_message_counts_everything_once() {
    // Everything published within the wait lands in one batch or very few.
    let app = spawn_app_with(|settings| settings.broker.batch_wait_ms = 500).await;
    let created_at = Utc::now().trunc_subsecs(3);
    let ada: Vec<_> = (1..=4)
        .map(|n| {
            app.placed(
                "ada@example.com",
                n,
                created_at + TimeDelta::seconds(n.into()),
            )
        })
        .collect();
    let bob = app.placed("bob@example.com", 7, created_at);
    let ada_cancelled = app.cancelled(&ada[1]);
    for event in ada
        .iter()
        .chain([&bob, &ada[0], &ada_cancelled, &bob, &ada[3]])
    {
        app.publish(event).await;
        if event.aggregate_id == bob.aggregate_id {
            app.publisher
                .publish("order.garbage", b"not an envelope")
                .await;
        }
    }
    app.wait_until_processed().await;

    // Live counts: four placed, one of them (quantity 2) cancelled.
    let ada_summary = app.get_eventually("/customers/ada@example.com").await;
    assert_eq!(ada_summary["orderCount"], 3);
    assert_eq!(ada_summary["totalQuantity"], 1 + 3 + 4);
    assert_eq!(ada_summary["cancelledOrderCount"], 1);
    let bob_summary = app.get_eventually("/customers/bob@example.com").await;
    assert_eq!(bob_summary["orderCount"], 1);
    assert_eq!(bob_summary["totalQuantity"], 7);
    let cancelled = app
        .get_eventually(&format!("/orders/{}", ada[1].aggregate_id))
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["version"], 2);

    let page = eventually(
        "the unusable messages to be dead-lettered",
        Duration::from_secs(10),
        || async {
            let page = harness::scrape_metrics(&app.client, &app.metrics_address).await;
            (harness::metric(&page, "events_dead_lettered_total") == Some(2.0)).then_some(page)
        },
    )
    .await;
    // 9 events and the sentinel: 7 applied (4 + 1 orders, the cancellation, the sentinel),
    // 3 duplicates, in far fewer batches than events.
    assert_eq!(harness::metric(&page, "events_applied_total"), Some(7.0));
    assert_eq!(harness::metric(&page, "events_duplicate_total"), Some(3.0));
    let batches = harness::metric(&page, "projection_batch_size_count").unwrap_or_default();
    assert!(
        (1.0..=4.0).contains(&batches),
        "{batches} batches for 10 events"
    );
}

/// A broker given as several addresses (a cluster's nodes), the first of which is down.
#[tokio::test]
async fn the_consumer_attaches_through_the_first_broker_address_that_answers() {
    let vhost = harness::fresh_vhost().await;
    let dead_first = format!("amqp://127.0.0.1:1/%2f,{}", vhost.url);
    let app = spawn_app_with(|settings| {
        settings.broker.url = BrokerAddresses::try_from(dead_first).unwrap();
    })
    .await;
    let publisher = harness::TestPublisher::connect(&vhost.url).await;
    let placed = app.placed("ada@example.com", 2, Utc::now());

    publisher
        .publish(&placed.routing_key(), &serde_json::to_vec(&placed).unwrap())
        .await;

    let order = app
        .get_eventually(&format!("/orders/{}", placed.aggregate_id))
        .await;
    assert_eq!(order["customer"]["email"], "ada@example.com");
}

#[tokio::test]
async fn a_connection_the_broker_closes_mid_batch_is_reopened_and_the_batch_applied_once() {
    let store = PrivateReadStore::start().await;
    let app = spawn_app_on(&store).await;
    let first = app.placed("reconnected@example.com", 1, Utc::now());
    app.publish(&first).await;
    app.get_eventually(&format!("/orders/{}", first.aggregate_id))
        .await;

    // The next batch is taken and held: its write cannot reach the frozen store.
    store.pause();
    let held = app.placed("reconnected@example.com", 2, Utc::now());
    app.publish(&held).await;
    app.wait_until_a_batch_is_retried().await;
    assert_eq!(app.vhost.close_connections("query-service").await, 1);
    store.resume();

    let order = app
        .get_eventually(&format!("/orders/{}", held.aggregate_id))
        .await;
    assert_eq!(order["quantity"], 2, "{order}");
    let customer = app
        .get_eventually("/customers/reconnected@example.com")
        .await;
    assert_eq!(customer["orderCount"], 2, "{customer}");
    // The consumer is attached again: what is published now is applied too.
    app.wait_until_processed().await;
}
