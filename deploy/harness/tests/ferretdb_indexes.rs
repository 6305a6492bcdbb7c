//! The local MongoDB-wire server serves equality lookups from indexes: FerretDB's own queries,
//! on a collection of 20 000 documents, run as index scans of the GIN twins that
//! `deploy/ferretdb/index-twins.sql` gives its indexes, with the custom plans the local stack
//! forces. Runs a FerretDB of its own on a fresh database, as the local stack sets them up.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use harness::{eventually, Durability, PrivateReadStore, ReadStoreKind};
use mongodb::bson::{doc, Document};
use mongodb::{Client, Collection, IndexModel};

const DOCUMENTS: usize = 20_000;
const LOOKUPS: i64 = 50;

#[derive(QueryableByName)]
struct IndexScans {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    scans: i64,
}

/// The scans counted so far on each GIN twin of the `orders` collection's table.
fn twin_scans(storage: &mut PgConnection) -> Vec<IndexScans> {
    diesel::sql_query(
        "SELECT indexrelname AS name, idx_scan AS scans FROM pg_stat_user_indexes \
         WHERE relname LIKE 'orders\\_%' AND indexrelname LIKE '%\\_gin' ORDER BY indexrelname",
    )
    .load(storage)
    .expect("read the index statistics")
}

fn twin_names(storage: &mut PgConnection) -> Vec<String> {
    twin_scans(storage)
        .into_iter()
        .map(|index| index.name)
        .collect()
}

/// The name of each index PostgreSQL's plan for `filter` scans, as FerretDB's `explain` tells.
async fn scanned_indexes(orders: &Collection<Document>, filter: Document) -> Vec<String> {
    let explained = orders
        .client()
        .database(&orders.namespace().db)
        .run_command(doc! { "explain": { "find": orders.name(), "filter": filter } })
        .await
        .expect("explain");
    let plan = serde_json::to_string(&explained).expect("plan as JSON");
    plan.split("\"Index Name\":\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn ferretdb_lookups_by_an_indexed_field_scan_its_gin_twin_and_the_twin_goes_with_the_index() {
    let ferret =
        PrivateReadStore::start_kind(ReadStoreKind::FerretDb, Durability::SyncOnCommit).await;
    let storage = ferret.ferretdb_storage_url().expect("FerretDB's storage");
    let mut storage = PgConnection::establish(storage).expect("FerretDB's storage");
    let client = Client::with_uri_str(ferret.uri()).await.expect("client");
    let orders: Collection<Document> = client.database("read_models").collection("orders");
    orders
        .create_index(
            IndexModel::builder()
                .keys(doc! { "customerEmail": 1, "createdAt": -1 })
                .build(),
        )
        .await
        .expect("create the email index");
    // Looked up many times while tiny, as a freshly started query side does: a cached
    // generic plan would scan the table from then on.
    orders
        .insert_one(doc! { "_id": "first", "customerEmail": "first@example.com" })
        .await
        .expect("insert");
    for _ in 0..10 {
        orders
            .find_one(doc! { "_id": "first" })
            .await
            .expect("find");
    }
    let documents: Vec<Document> = (0..DOCUMENTS)
        .map(|i| {
            doc! {
                "_id": format!("order-{i}"),
                "customerEmail": format!("customer-{}@example.com", i % 500),
                "createdAt": i64::try_from(i).expect("small"),
            }
        })
        .collect();
    for chunk in documents.chunks(1_000) {
        orders.insert_many(chunk).await.expect("insert a chunk");
    }

    for filter in [
        doc! { "_id": "order-777" },
        doc! { "customerEmail": "customer-7@example.com" },
    ] {
        let indexes = scanned_indexes(&orders, filter.clone()).await;
        assert!(
            indexes.len() == 1 && indexes[0].ends_with("_gin"),
            "{filter} is not served by a GIN twin: {indexes:?}"
        );
    }

    let scans_before: i64 = twin_scans(&mut storage).iter().map(|i| i.scans).sum();
    for i in 0..LOOKUPS {
        let found = orders
            .find_one(doc! { "_id": format!("order-{}", i * 31) })
            .await
            .expect("find");
        assert!(found.is_some());
    }
    // Statistics reach the view when FerretDB's connection reports them (within seconds).
    eventually(
        "every lookup to be counted as a scan of a GIN twin",
        Duration::from_secs(30),
        || {
            let scans: i64 = twin_scans(&mut storage).iter().map(|i| i.scans).sum();
            std::future::ready((scans - scans_before >= LOOKUPS).then_some(()))
        },
    )
    .await;

    let twins = twin_names(&mut storage);
    orders
        .drop_index("customerEmail_1_createdAt_-1")
        .await
        .expect("drop the email index");
    let remaining = twin_names(&mut storage);
    assert!(
        remaining.len() < twins.len() && remaining.iter().all(|name| twins.contains(name)),
        "dropping the index left its twins: {twins:?} then {remaining:?}"
    );
}
