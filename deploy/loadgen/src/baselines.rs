//! Each component alone, with the same number of clients as the end-to-end run: the ceilings
//! the whole system is compared with. Each works in scratch resources it removes afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use command_service::config::DatabaseSettings;
use command_service::domain::{
    Customer, Description, EmailAddress, NewOrder, PersonName, Quantity,
};
use command_service::store::{OrderPlacement, Store};
use diesel::{Connection, PgConnection, RunQueryDsl};
use futures::future::join_all;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection as AmqpConnection, ConnectionProperties};
use mongodb::bson::doc;
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Baselines {
    /// The command side's transaction (customer upsert + order + outbox row), committed.
    pub postgres_orders_per_sec: f64,
    /// Persistent messages published to a quorum queue, each awaited for its confirm.
    pub rabbitmq_confirmed_per_sec: f64,
    /// Single-document inserts.
    pub mongodb_inserts_per_sec: f64,
}

impl Baselines {
    pub fn slowest(&self) -> (&'static str, f64) {
        [
            ("PostgreSQL", self.postgres_orders_per_sec),
            ("RabbitMQ", self.rabbitmq_confirmed_per_sec),
            ("MongoDB", self.mongodb_inserts_per_sec),
        ]
        .into_iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or(("none", 0.0))
    }
}

/// Runs `work` on `clients` tasks until `duration` has passed; operations per second.
async fn rate<F, Fut>(clients: usize, duration: Duration, work: F) -> f64
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks = (0..clients).map(|client| {
        let (work, done) = (work.clone(), done.clone());
        tokio::spawn(async move {
            let mut n = client as u64 * 1_000_000_000;
            while started.elapsed() < duration {
                if work(n).await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
        })
    });
    join_all(tasks).await;
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

pub async fn postgres(admin_url: &str, clients: usize, duration: Duration) -> anyhow::Result<f64> {
    let name = format!("loadgen_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::establish(admin_url)?;
    diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut admin)?;
    let (base, _) = admin_url.rsplit_once('/').unwrap_or((admin_url, ""));
    let store = Store::new(&DatabaseSettings {
        url: format!("{base}/{name}").into(),
        pool_size: u32::try_from(clients).unwrap_or(u32::MAX),
        acquire_timeout_ms: 10_000,
        statement_timeout_ms: 10_000,
    });
    store.run_migrations().await?;
    let per_sec = rate(clients, duration, move |n| {
        let store = store.clone();
        async move {
            let order = NewOrder {
                description: Description::parse(format!("baseline order {n}"))
                    .map_err(anyhow::Error::msg)?,
                quantity: Quantity::parse(1 + (n % 9) as i64).map_err(anyhow::Error::msg)?,
                unit_price: None,
                customer: Customer {
                    email: EmailAddress::parse(format!("bench{}@loadgen.example", n % 1000))
                        .map_err(anyhow::Error::msg)?,
                    first_name: PersonName::parse("Bench".into()).map_err(anyhow::Error::msg)?,
                    last_name: PersonName::parse("Mark".into()).map_err(anyhow::Error::msg)?,
                },
            };
            let placement = OrderPlacement::new(order, String::new(), None, "loadgen".into());
            store
                .place_orders(vec![placement])
                .await
                .outcomes
                .remove(0)?;
            Ok(())
        }
    })
    .await;
    diesel::sql_query(format!("DROP DATABASE \"{name}\" WITH (FORCE)")).execute(&mut admin)?;
    Ok(per_sec)
}

pub async fn rabbitmq(amqp_url: &str, clients: usize, duration: Duration) -> anyhow::Result<f64> {
    let connection = AmqpConnection::connect(amqp_url, ConnectionProperties::default()).await?;
    let queue = format!("loadgen.baseline.{}", Uuid::new_v4().simple());
    let setup = connection.create_channel().await?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    setup
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await?;
    let body = serde_json::to_vec(&shared_events::fixtures::on_new_order_v1())?;
    let mut channels = Vec::new();
    for _ in 0..clients {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        channels.push(channel);
    }
    let channels = Arc::new(channels);
    let (queue_name, body) = (Arc::new(queue.clone()), Arc::new(body));
    let per_sec = rate(clients, duration, move |n| {
        let (channels, queue, body) = (channels.clone(), queue_name.clone(), body.clone());
        async move {
            let channel = &channels[(n / 1_000_000_000) as usize % channels.len()];
            let confirm = channel
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await?
                .await?;
            anyhow::ensure!(confirm.is_ack(), "nacked");
            Ok(())
        }
    })
    .await;
    setup
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    Ok(per_sec)
}

pub async fn mongodb(uri: &str, clients: usize, duration: Duration) -> anyhow::Result<f64> {
    let client = mongodb::Client::with_uri_str(uri).await?;
    let database = client.database(&format!("loadgen_{}", Uuid::new_v4().simple()));
    let orders = database.collection::<mongodb::bson::Document>("orders");
    let per_sec = rate(clients, duration, move |n| {
        let orders = orders.clone();
        async move {
            orders
                .insert_one(doc! {
                    "_id": Uuid::now_v7().to_string(),
                    "description": format!("baseline order {n}"),
                    "quantity": 1 + (n % 9) as i64,
                    "status": "placed",
                    "customer": { "email": format!("bench{}@loadgen.example", n % 1000), "firstName": "Bench", "lastName": "Mark" },
                    "createdAt": mongodb::bson::DateTime::now(),
                    "version": 1_i64,
                })
                .await?;
            Ok(())
        }
    })
    .await;
    database.drop().await?;
    Ok(per_sec)
}
