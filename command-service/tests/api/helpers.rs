use command_service::config::Settings;
use command_service::domain::{
    Customer, Description, EmailAddress, NewOrder, PersonName, Quantity,
};
use command_service::startup::Application;
use diesel::{Connection, PgConnection, RunQueryDsl};
use harness::{run_in_background, InProcess};
use serde_json::{json, Value};
use service_support::broker::BrokerAddresses;
use service_support::config::LayeredSettings;
use shared_events::EventEnvelope;

pub struct TestApp {
    pub address: String,
    pub metrics_address: String,
    pub database_url: String,
    pub amqp_url: String,
    pub client: reqwest::Client,
    /// The database and vhost this instance made for itself, if it did; others may share them.
    scratch: Option<(harness::TestDatabase, harness::TestVhost)>,
}

/// Settings for a test: the defaults, pointed at this test's own database and vhost.
pub fn test_settings(database_url: &str, amqp_url: &str) -> Settings {
    let mut settings = Settings::defaults().expect("default settings");
    settings.http.listen.port = 0;
    settings.metrics.port = 0;
    settings.database.url = database_url.into();
    settings.broker.url = BrokerAddresses::try_from(amqp_url.to_owned()).unwrap();
    settings.outbox.poll_interval_ms = 100;
    settings.outbox.retry_delay_ms = 100;
    settings.admin.token = ADMIN_TOKEN.into();
    settings
}

/// The admin token every test app is configured with.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// The real application on a random port, with a fresh database and vhost of its own.
pub async fn spawn_app() -> TestApp {
    spawn_app_owning(|_| {}).await
}

/// The same, with the test settings changed by `adjust`.
pub async fn spawn_app_owning(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let database = harness::fresh_postgres_database();
    let vhost = harness::fresh_vhost().await;
    let mut app = spawn_app_with(&database.url, &vhost.url, adjust).await;
    app.scratch = Some((database, vhost));
    app
}

/// Another instance of the application on the given database and vhost.
pub async fn spawn_app_on(database_url: &str, amqp_url: &str) -> TestApp {
    spawn_app_with(database_url, amqp_url, |_| {}).await
}

/// An instance on the given database and vhost, with the test settings changed by `adjust`.
pub async fn spawn_app_with(
    database_url: &str,
    amqp_url: &str,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    init_logging();
    let mut settings = test_settings(database_url, amqp_url);
    adjust(&mut settings);
    let InProcess {
        address,
        metrics_address,
    } = run_in_background(Application::build(settings)).await;
    TestApp {
        address,
        metrics_address,
        database_url: database_url.to_owned(),
        amqp_url: amqp_url.to_owned(),
        client: harness::http_client(),
        scratch: None,
    }
}

fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = env_logger::builder().is_test(true).try_init();
    }
}

/// The JSON error body of `response`, which must answer `status`, as JSON, with a message.
pub async fn json_error(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body: Value = response.json().await.expect("a JSON error body");
    assert!(body["message"].is_string(), "{body}");
    body
}

/// A valid order body for `email`.
pub fn order_body(email: &str) -> Value {
    json!({
        "description": "Analytical engine punch cards",
        "quantity": 3,
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": email,
    })
}

impl TestApp {
    pub async fn post_order(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/orders", self.address))
            .json(body)
            .send()
            .await
            .expect("POST /orders")
    }

    /// Posts a valid order and returns its id.
    pub async fn place_order(&self, email: &str) -> String {
        let response = self.post_order(&order_body(email)).await;
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// The events of order `id` in the outbox, oldest first.
    pub fn events_of(&self, id: &str) -> Vec<EventEnvelope> {
        #[derive(diesel::QueryableByName)]
        struct Envelope {
            #[diesel(sql_type = diesel::sql_types::Jsonb)]
            envelope: Value,
        }
        let rows: Vec<Envelope> = diesel::sql_query(
            "SELECT envelope FROM outbox WHERE aggregate_id = $1::uuid ORDER BY id",
        )
        .bind::<diesel::sql_types::Text, _>(id)
        .load(&mut self.database())
        .unwrap();
        rows.into_iter()
            .map(|row| EventEnvelope::decode(row.envelope.to_string().as_bytes()).unwrap())
            .collect()
    }

    pub fn database(&self) -> PgConnection {
        PgConnection::establish(&self.database_url).expect("connect to the test database")
    }
}

/// A valid order of `quantity` for the customer `email`, named Ada `last_name`.
pub fn new_order(email: &str, last_name: &str, quantity: i64) -> NewOrder {
    NewOrder {
        description: Description::parse("Tea".into()).unwrap(),
        quantity: Quantity::parse(quantity).unwrap(),
        unit_price: None,
        customer: Customer {
            email: EmailAddress::parse(email.into()).unwrap(),
            first_name: PersonName::parse("Ada".into()).unwrap(),
            last_name: PersonName::parse(last_name.into()).unwrap(),
        },
    }
}
