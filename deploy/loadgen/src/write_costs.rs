//! What each kind of write the projection makes costs the read store alone, in CPU per
//! document of the store's processes (secantusd-rs, mongod, or FerretDB and its PostgreSQL):
//! inserting new orders in batches, updating one existing document by `_id` (as every carried
//! customer summary and every position counter is written), and inserting small documents in
//! batches (what an append-only summary would cost). On FerretDB 1.24 the second is the projection's
//! floor: see docs/performance.md.

use mongodb::bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::IndexModel;
use serde::Serialize;
use uuid::Uuid;

use crate::cpu::{read_store_ms_per_order, CpuSnapshot};

/// The projection's batch size.
const BATCH: u64 = 64;
const CUSTOMERS: u64 = 1000;

/// One kind of write, measured alone.
#[derive(Debug, Clone, Serialize)]
pub struct WriteCost {
    pub write: &'static str,
    pub documents: u64,
    pub cpu_ms_per_document: f64,
}

/// Measures each kind of write on `documents` documents in a scratch database, dropped after.
pub async fn measure(uri: &str, documents: u64) -> anyhow::Result<Vec<WriteCost>> {
    let client = mongodb::Client::with_uri_str(uri).await?;
    let database = client.database(&format!("loadgen_{}", Uuid::new_v4().simple()));
    let measured = measure_in(&database, documents.max(BATCH)).await;
    database.drop().await?;
    measured
}

async fn measure_in(
    database: &mongodb::Database,
    documents: u64,
) -> anyhow::Result<Vec<WriteCost>> {
    let orders = database.collection::<Document>("orders");
    for (keys, name) in [
        (doc! { "listPage": 1 }, "list_pages"),
        (doc! { "customerPage": 1 }, "customer_pages"),
    ] {
        let options = IndexOptions::builder().name(name.to_owned()).build();
        orders
            .create_index(IndexModel::builder().keys(keys).options(options).build())
            .await?;
    }
    let summaries = database.collection::<Document>("customers");
    summaries
        .insert_many((0..CUSTOMERS).map(|n| doc! { "_id": email(n), "orderCount": 0_i64 }))
        .await?;
    let versions = database.collection::<Document>("summaryVersions");

    let mut costs = Vec::new();
    let started = CpuSnapshot::take();
    for batch in 0..documents / BATCH {
        orders
            .insert_many((batch * BATCH..(batch + 1) * BATCH).map(order))
            .ordered(false)
            .await?;
    }
    costs.push(cost(
        "insert_many of 64 orders, two indexes",
        documents,
        &started,
    ));

    let started = CpuSnapshot::take();
    for n in 0..documents {
        summaries
            .update_one(
                doc! { "_id": email(n % CUSTOMERS) },
                doc! { "$set": { "orderCount": n as i64, "lastOrderAt": mongodb::bson::DateTime::now() } },
            )
            .await?;
    }
    costs.push(cost("update_one of a summary by _id", documents, &started));

    let started = CpuSnapshot::take();
    for batch in 0..documents / BATCH {
        versions
            .insert_many((batch * BATCH..(batch + 1) * BATCH).map(|n| {
                doc! { "_id": format!("{}/{n}", email(n % CUSTOMERS)), "orderCount": n as i64 }
            }))
            .ordered(false)
            .await?;
    }
    costs.push(cost(
        "insert_many of 64 summary versions",
        documents,
        &started,
    ));
    Ok(costs)
}

fn cost(write: &'static str, documents: u64, started: &CpuSnapshot) -> WriteCost {
    let (uses, _) = started.used_since(documents);
    WriteCost {
        write,
        documents,
        cpu_ms_per_document: read_store_ms_per_order(&uses).unwrap_or(0.0),
    }
}

fn email(n: u64) -> String {
    format!("bench{n}@loadgen.example")
}

fn order(n: u64) -> Document {
    let email = email(n % CUSTOMERS);
    doc! {
        "_id": Uuid::now_v7().to_string(),
        "description": format!("write-cost order {n}"),
        "quantity": 1 + (n % 9) as i64,
        "status": "placed",
        "customer": { "email": &email, "firstName": "Bench", "lastName": "Mark" },
        "customerEmail": &email,
        "createdAt": mongodb::bson::DateTime::now(),
        "version": 1_i64,
        "listPosition": n as i64,
        "listPage": (n / BATCH) as i64,
        "customerOrder": (n / CUSTOMERS) as i64,
        "customerPage": format!("{email}/{}", n / CUSTOMERS / BATCH),
    }
}
