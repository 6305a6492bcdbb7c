use std::time::Duration;

use chrono::{DateTime, Utc};
use harness::{
    eventually, json_when_ok, metric, run_in_background, scrape_metrics, InProcess,
    PrivateReadStore, ReadStoreKind, TestPublisher,
};
use query_service::config::{BrokerSettings, Settings};
use query_service::read_models::SpanLength;
use query_service::rebuild::numbering::LogNumbering;
use query_service::startup::Application;
use serde_json::Value;
use service_support::broker::BrokerAddresses;
use service_support::config::LayeredSettings;
use shared_events::fixtures::{
    self as fixtures, new_order_event, with_customer_summary, with_list_positions, with_owner,
};
use shared_events::{EventEnvelope, EventId, OrderEvent, OrderId};
use uuid::Uuid;

/// How long a read with a consistency token may wait: long, because it waits for the
/// projection, which a loaded machine (CI runs two passes of the suite at once) may hold up for
/// more than a second; no test may depend on the machine's speed. The test of a read that never
/// becomes consistent sets a short one.
const CONSISTENCY_WAIT_MS: u64 = 10_000;

pub struct TestApp {
    pub address: String,
    pub metrics_address: String,
    pub amqp_url: String,
    pub broker: BrokerSettings,
    pub client: reqwest::Client,
    pub publisher: TestPublisher,
    /// Numbers the test's events as the command side would, in the order they are made.
    numbering: std::sync::Mutex<LogNumbering>,
    pub vhost: harness::TestVhost,
    mongo: harness::TestMongoDatabase,
}

/// The real application on a random port, with its own vhost and read database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The real application on a read store of the test's own, which the test can freeze: reads
/// and a batch's writes give up after 300 ms.
pub async fn spawn_app_on(store: &PrivateReadStore) -> TestApp {
    spawn_app_with(|settings| {
        settings.mongodb.uri = store.uri();
        settings.mongodb.read_timeout_ms = 300;
        settings.mongodb.batch_timeout_ms = 300;
    })
    .await
}

/// The same, with the test settings changed by `adjust`.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = env_logger::builder().is_test(true).try_init();
    }
    let vhost = harness::fresh_vhost().await;
    let mongo = harness::fresh_mongo_database();
    let amqp_url = vhost.url.clone();
    let mut settings = Settings::defaults().expect("default settings");
    settings.http.port = 0;
    settings.metrics.port = 0;
    settings.mongodb.uri = mongo.uri.clone();
    settings.mongodb.database = mongo.name.clone();
    settings.broker.url = BrokerAddresses::try_from(amqp_url.clone()).unwrap();
    settings.broker.max_attempts = 3;
    settings.broker.retry_delay_ms = 50;
    // One lane applies everything in delivery order, which `wait_until_processed` relies on.
    settings.broker.lanes = 1;
    settings.consistency.max_wait_ms = CONSISTENCY_WAIT_MS;
    adjust(&mut settings);
    let broker = settings.broker.clone();
    let InProcess {
        address,
        metrics_address,
    } = run_in_background(Application::build(settings)).await;
    let app = TestApp {
        address,
        metrics_address,
        publisher: TestPublisher::connect(&amqp_url).await,
        numbering: std::sync::Mutex::default(),
        amqp_url,
        broker,
        client: harness::http_client(),
        vhost,
        mongo,
    };
    // Events published before the consumer declared its queue would be unroutable.
    let ready_url = format!("{}/health/ready", app.address);
    eventually("the consumer to attach", Duration::from_secs(10), || {
        let request = app.client.get(&ready_url).send();
        async move {
            let body: Value = request.await.ok()?.json().await.ok()?;
            (body["checks"]["rabbitmq"] == "up").then_some(())
        }
    })
    .await;
    app
}

/// The length of the customers' spans in this run's read models: long on FerretDB alone.
pub fn span_length_of_this_run() -> SpanLength {
    match ReadStoreKind::of_this_run() {
        ReadStoreKind::FerretDb => SpanLength::LONG,
        ReadStoreKind::Secantusd => SpanLength::SHORT,
    }
}

/// An `OnNewOrder` event with fresh ids, as an earlier release published it: without its
/// customer's summary and list positions ([`TestApp::numbered`] adds them).
pub fn new_order(email: &str, quantity: u32, created_at: DateTime<Utc>) -> EventEnvelope {
    new_order_event(
        OrderId::from_uuid(Uuid::now_v7()),
        EventId::from_uuid(Uuid::now_v7()),
        email,
        quantity,
        created_at,
    )
}

/// The `OrderCancelled` event of an order made by [`new_order`], a minute after it.
pub fn cancellation_of(placed: &EventEnvelope) -> EventEnvelope {
    assert!(matches!(placed.payload, OrderEvent::OnNewOrder(_)));
    fixtures::cancellation_of(
        placed,
        EventId::from_uuid(Uuid::now_v7()),
        placed.payload.order().created_at + chrono::TimeDelta::minutes(1),
    )
}

impl TestApp {
    /// `event` with its customer's summary and positions, as the command side publishes it
    /// for the anonymous owner: numbered after every event numbered before in this test (what
    /// it carries already is kept).
    pub fn numbered(&self, event: EventEnvelope) -> EventEnvelope {
        let numbered = self
            .numbering
            .lock()
            .unwrap()
            .number(event)
            .expect("a cancellation of an order numbered before");
        let owner = numbered.envelope.payload.owner().to_owned();
        with_owner(
            with_list_positions(
                with_customer_summary(numbered.envelope, numbered.summary),
                numbered.positions,
            ),
            &owner,
            numbered.owner_positions,
        )
    }

    /// The next `OnNewOrder` as the command side publishes it.
    pub fn placed(&self, email: &str, quantity: u32, created_at: DateTime<Utc>) -> EventEnvelope {
        self.numbered(new_order(email, quantity, created_at))
    }

    /// The cancellation of `placed` as the command side publishes it.
    pub fn cancelled(&self, placed: &EventEnvelope) -> EventEnvelope {
        self.numbered(cancellation_of(placed))
    }

    pub async fn publish(&self, event: &EventEnvelope) {
        self.publisher
            .publish(&event.routing_key(), &serde_json::to_vec(event).unwrap())
            .await;
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("GET")
    }

    /// Waits until `GET path` answers 200 and returns its body.
    pub async fn get_eventually(&self, path: &str) -> Value {
        json_when_ok(
            &self.client,
            &format!("{}{path}", self.address),
            Duration::from_secs(10),
        )
        .await
    }

    /// Every document of `collection` in the read model (the first generation's collection,
    /// which a test's read database starts with).
    pub async fn documents(&self, collection: &str) -> Vec<mongodb::bson::Document> {
        use futures::TryStreamExt;
        mongodb::Client::with_uri_str(&self.mongo.uri)
            .await
            .unwrap()
            .database(&self.mongo.name)
            .collection::<mongodb::bson::Document>(collection)
            .find(mongodb::bson::doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    }

    /// Waits until the projection has given up on a batch's write at least once and retries
    /// it (the read store frozen).
    pub async fn wait_until_a_batch_is_retried(&self) {
        eventually(
            "a batch to be abandoned and retried",
            Duration::from_secs(5),
            || async {
                let page = scrape_metrics(&self.client, &self.metrics_address).await;
                (metric(&page, r#"events_retried_total{reason="store_unavailable"}"#) >= Some(1.0))
                    .then_some(())
            },
        )
        .await;
    }

    /// Publishes a sentinel order and waits until it is readable: with one lane, events are
    /// applied in queue order, so everything published before it has been processed.
    /// Waits until every event published before the call is applied: the store writes a
    /// batch's new orders last, so the sentinel, the newest of its batch, is readable only once
    /// the rest of its batch is written.
    pub async fn wait_until_processed(&self) {
        let sentinel = self.placed("sentinel@example.com", 1, Utc::now());
        self.publish(&sentinel).await;
        self.get_eventually(&format!("/orders/{}", sentinel.aggregate_id))
            .await;
    }
}
