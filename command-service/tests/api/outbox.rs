use std::collections::HashSet;
use std::time::Duration;

use command_service::store::{OrderPlacement, Placement, Store};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use harness::{eventually, metric, scrape_metrics, EventTap};
use service_support::broker::BrokerAddresses;
use shared_events::{EventEnvelope, OnNewOrder, OrderEvent};
use uuid::Uuid;

use crate::helpers::{
    new_order, spawn_app, spawn_app_on, spawn_app_owning, test_settings, TestApp,
};

#[derive(QueryableByName, Debug)]
struct OutboxState {
    #[diesel(sql_type = BigInt)]
    pending: i64,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
}

fn outbox_state(conn: &mut PgConnection) -> OutboxState {
    diesel::sql_query(
        "SELECT count(*) FILTER (WHERE published_at IS NULL) AS pending, max(last_error) AS last_error FROM outbox",
    )
    .get_result(conn)
    .unwrap()
}

async fn wait_until_all_published(conn: &mut PgConnection) {
    eventually(
        "every outbox row to be marked published",
        Duration::from_secs(5),
        || {
            let pending = outbox_state(conn).pending;
            async move { (pending == 0).then_some(()) }
        },
    )
    .await;
}

#[tokio::test]
async fn an_accepted_order_is_published_and_then_marked_published() {
    let app = spawn_app().await;
    let mut tap = EventTap::attach(&app.amqp_url).await;

    let id = app.place_order("ada@example.com").await;

    let (body, properties) = tap
        .next(Duration::from_secs(10))
        .await
        .expect("the event is published");
    let envelope = EventEnvelope::decode(&body).expect("a valid envelope");
    assert_eq!(envelope.aggregate_id.to_string(), id);
    let OrderEvent::OnNewOrder(event) = &envelope.payload else {
        panic!("not an OnNewOrder: {envelope:?}");
    };
    assert_eq!(event.order.customer.email, "ada@example.com");
    assert_eq!(event.order.quantity, 3);
    assert_eq!(envelope.schema_version, OnNewOrder::SCHEMA_VERSION);
    assert_eq!(
        event
            .customer_summary
            .as_ref()
            .map(|summary| (summary.version, summary.placed_order_count)),
        Some((1, 1))
    );
    assert_eq!(properties.delivery_mode(), &Some(2), "persistent delivery");
    assert_eq!(
        properties.message_id().as_ref().map(ToString::to_string),
        Some(envelope.event_id.to_string())
    );

    let mut conn = app.database();
    wait_until_all_published(&mut conn).await;
}

/// A broker given as several addresses (a cluster's nodes), the first of which is down.
#[tokio::test]
async fn the_relay_publishes_through_the_first_broker_address_that_answers() {
    let vhost = harness::fresh_vhost().await;
    let dead_first = format!("amqp://127.0.0.1:1/%2f,{}", vhost.url);
    let app = spawn_app_owning(|settings| {
        settings.broker.url = BrokerAddresses::try_from(dead_first).unwrap();
    })
    .await;
    let mut tap = EventTap::attach(&vhost.url).await;

    let id = app.place_order("ada@example.com").await;

    let (body, _) = tap
        .next(Duration::from_secs(10))
        .await
        .expect("the event is published through the second address");
    let envelope = EventEnvelope::decode(&body).expect("a valid envelope");
    assert_eq!(envelope.aggregate_id.to_string(), id);
}

#[tokio::test]
async fn events_wait_in_the_outbox_until_a_queue_is_bound() {
    let app = spawn_app().await;
    app.place_order("ada@example.com").await;

    let mut conn = app.database();
    let state = eventually(
        "the broker to return the unroutable event",
        Duration::from_secs(10),
        || {
            let state = outbox_state(&mut conn);
            async move { state.last_error.is_some().then_some(state) }
        },
    )
    .await;
    assert_eq!(
        state.pending, 1,
        "the event must stay pending, not be dropped"
    );
    assert!(state.last_error.unwrap().contains("no queue is bound"));

    let mut tap = EventTap::attach(&app.amqp_url).await;
    assert!(
        tap.next(Duration::from_secs(10)).await.is_some(),
        "the event is published once a queue is bound"
    );
    wait_until_all_published(&mut conn).await;
}

/// A queue bound to every event that is always full and refuses what it cannot take, so the
/// broker nacks every event published while it exists.
async fn bind_a_refusing_queue(amqp_url: &str) -> (lapin::Connection, lapin::Channel) {
    use lapin::options::{QueueBindOptions, QueueDeclareOptions};
    use lapin::types::{AMQPValue, FieldTable};

    let connection = lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    service_support::broker::declare_order_events_exchange(&channel)
        .await
        .unwrap();
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongInt(0));
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    channel
        .queue_declare("refusing".into(), QueueDeclareOptions::default(), arguments)
        .await
        .unwrap();
    channel
        .queue_bind(
            "refusing".into(),
            shared_events::ORDER_EVENTS_EXCHANGE.into(),
            shared_events::ORDER_EVENTS_BINDING.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    (connection, channel)
}

#[tokio::test]
async fn a_nacked_event_stays_in_the_outbox_and_the_relay_reconnects_to_publish_it() {
    let app = spawn_app().await;
    let (_connection, channel) = bind_a_refusing_queue(&app.amqp_url).await;
    let mut tap = EventTap::attach(&app.amqp_url).await;
    app.place_order("ada@example.com").await;

    let mut conn = app.database();
    let state = eventually(
        "the broker to nack the event",
        Duration::from_secs(10),
        || {
            let state = outbox_state(&mut conn);
            async move { state.last_error.is_some().then_some(state) }
        },
    )
    .await;
    assert_eq!(state.pending, 1, "a nacked event must stay pending");
    assert!(state.last_error.unwrap().contains("nack"));
    wait_for_relay_connections(&app, 2.0, "the relay to reconnect").await;

    channel
        .queue_delete(
            "refusing".into(),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    assert!(
        tap.next(Duration::from_secs(10)).await.is_some(),
        "the event is published once the broker takes it"
    );
    wait_until_all_published(&mut conn).await;
}

#[tokio::test]
async fn two_replicas_share_the_outbox_without_publishing_twice() {
    let first = spawn_app().await;
    let second = spawn_app_on(&first.database_url, &first.amqp_url).await;
    let mut tap = EventTap::attach(&first.amqp_url).await;

    let mut placed = HashSet::new();
    for n in 0..40 {
        let app = if n % 2 == 0 { &first } else { &second };
        placed.insert(app.place_order(&format!("customer{n}@example.com")).await);
    }

    let mut published = Vec::new();
    while let Some((body, _)) = tap.next(Duration::from_secs(2)).await {
        published.push(
            EventEnvelope::decode(&body)
                .unwrap()
                .aggregate_id
                .to_string(),
        );
    }
    let distinct: HashSet<String> = published.iter().cloned().collect();
    assert_eq!(distinct, placed, "every order's event is published");
    assert_eq!(published.len(), placed.len(), "no event is published twice");
}

#[tokio::test]
async fn the_event_log_refuses_a_second_event_for_one_version_of_an_order() {
    let app = spawn_app().await;
    let id = app.place_order("ada@example.com").await;
    let mut conn = app.database();
    let copy = |event_id: &str| {
        diesel::sql_query(
            "INSERT INTO outbox (event_id, aggregate_id, event_type, routing_key, envelope)
             SELECT $1::uuid, aggregate_id, event_type, routing_key,
                    jsonb_set(envelope, '{eventId}', to_jsonb($1::text))
             FROM outbox WHERE aggregate_id = $2::uuid",
        )
        .bind::<Text, _>(event_id.to_owned())
        .bind::<Text, _>(id.clone())
    };

    let refused = copy(&Uuid::now_v7().to_string())
        .execute(&mut conn)
        .unwrap_err();

    assert!(
        refused.to_string().contains("outbox_aggregate_version_key"),
        "{refused}"
    );
}

/// Waits until the relay has opened `count` broker connections (past the first, it
/// reconnected); while connected, it takes what commits hand over.
async fn wait_for_relay_connections(app: &TestApp, count: f64, what: &str) {
    eventually(what, Duration::from_secs(10), || async {
        let page = scrape_metrics(&app.client, &app.metrics_address).await;
        (metric(&page, "outbox_relay_connections_total") >= Some(count)).then_some(())
    })
    .await;
}

/// (events published as handed over, events published after a claim), as the metrics count.
async fn relay_paths(app: &TestApp) -> (f64, f64) {
    let page = scrape_metrics(&app.client, &app.metrics_address).await;
    let read = |name: &str| metric(&page, name).unwrap_or_else(|| panic!("no {name}"));
    (
        read("outbox_handed_off_events_total"),
        read("outbox_claimed_events_total"),
    )
}

#[derive(QueryableByName)]
struct Attempts {
    #[diesel(sql_type = Integer)]
    publish_attempts: i32,
}

#[tokio::test]
async fn events_committed_while_the_relay_is_connected_are_handed_to_it_and_published_unclaimed() {
    let app = spawn_app().await;
    let mut tap = EventTap::attach(&app.amqp_url).await;
    wait_for_relay_connections(&app, 1.0, "the relay to connect to the broker").await;

    for email in ["ada@example.com", "grace@example.com", "alan@example.com"] {
        app.place_order(email).await;
    }

    for _ in 0..3 {
        let (body, properties) = tap
            .next(Duration::from_secs(10))
            .await
            .expect("every event is published");
        let envelope = EventEnvelope::decode(&body).expect("a valid envelope");
        assert_eq!(
            properties
                .correlation_id()
                .as_ref()
                .map(ToString::to_string),
            Some(envelope.correlation_id),
            "the handed-over event's correlation id"
        );
    }
    let mut conn = app.database();
    wait_until_all_published(&mut conn).await;
    assert_eq!(relay_paths(&app).await, (3.0, 0.0));
    let attempts: Vec<Attempts> = diesel::sql_query("SELECT publish_attempts FROM outbox")
        .load(&mut conn)
        .unwrap();
    assert!(
        attempts.iter().all(|row| row.publish_attempts == 1),
        "each row claimed once, by the statement that appended it"
    );
}

#[tokio::test]
async fn events_appended_without_a_hand_off_are_claimed_and_published() {
    let app = spawn_app().await;
    let mut tap = EventTap::attach(&app.amqp_url).await;
    wait_for_relay_connections(&app, 1.0, "the relay to connect to the broker").await;
    // A store with no relay of its own, as another process's would be.
    let store = Store::new(&test_settings(&app.database_url, &app.amqp_url).database);

    let outcome = store
        .place_orders(vec![OrderPlacement::new(
            new_order("ada@example.com", "Lovelace", 1),
            String::new(),
            None,
            "test".into(),
        )])
        .await
        .outcomes
        .remove(0);

    let Ok(Placement::Placed(id)) = outcome else {
        panic!("not placed: {outcome:?}");
    };
    let (body, properties) = tap
        .next(Duration::from_secs(10))
        .await
        .expect("the relay claims and publishes the event");
    let envelope = EventEnvelope::decode(&body).expect("a valid envelope");
    assert_eq!(envelope.aggregate_id, id);
    assert_eq!(envelope.correlation_id, "test");
    assert_eq!(
        properties
            .correlation_id()
            .as_ref()
            .map(ToString::to_string),
        Some("test".to_owned()),
        "the claimed row's correlation id, read from its stored envelope"
    );
    wait_until_all_published(&mut app.database()).await;
    assert_eq!(relay_paths(&app).await, (0.0, 1.0));
}
