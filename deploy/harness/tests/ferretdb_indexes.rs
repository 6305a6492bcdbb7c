//! The local MongoDB-wire server serves equality lookups from indexes: FerretDB's own queries,
//! on a collection of 20 000 documents, run as index scans of the GIN indexes that
//! `deploy/ferretdb/index-twins.sql` puts in place of its non-unique btrees and beside its unique
//! ones, with the custom plans the local stack forces. Runs a FerretDB of its own on a fresh
//! database, as the local stack sets them up.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use std::time::Duration;

use diesel::sql_types::{BigInt, Bool, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use futures::TryStreamExt;
use harness::{eventually, index_names, Durability, PrivateReadStore, ReadStoreKind};
use mongodb::bson::{doc, Document};
use mongodb::{Client, Collection, IndexModel};

const DOCUMENTS: usize = 20_000;
const LOOKUPS: i64 = 50;
const EMAIL_INDEX: &str = "customerEmail_1_createdAt_-1";

/// An index of the `orders` collection's table, as PostgreSQL has it.
#[derive(QueryableByName, Debug, Clone, PartialEq)]
struct StoredIndex {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    method: String,
    #[diesel(sql_type = Bool)]
    is_unique: bool,
    #[diesel(sql_type = BigInt)]
    scans: i64,
}

fn stored_indexes(storage: &mut PgConnection) -> Vec<StoredIndex> {
    diesel::sql_query(
        "SELECT statistics.indexrelname AS name, method.amname AS method, \
                index_row.indisunique AS is_unique, statistics.idx_scan AS scans \
           FROM pg_stat_user_indexes statistics \
           JOIN pg_index index_row ON index_row.indexrelid = statistics.indexrelid \
           JOIN pg_class index_class ON index_class.oid = statistics.indexrelid \
           JOIN pg_am method ON method.oid = index_class.relam \
          WHERE statistics.relname LIKE 'orders\\_%' ORDER BY statistics.indexrelname",
    )
    .load(storage)
    .expect("read the indexes")
}

/// The scans counted so far on the GIN indexes of the `orders` collection's table.
fn gin_scans(storage: &mut PgConnection) -> i64 {
    stored_indexes(storage)
        .iter()
        .filter(|index| index.method == "gin")
        .map(|index| index.scans)
        .sum()
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
async fn ferretdb_lookups_by_an_indexed_field_scan_a_gin_index_that_goes_with_the_index() {
    let ferret =
        PrivateReadStore::start_kind(ReadStoreKind::FerretDb, Durability::SyncOnCommit).await;
    let storage = ferret.ferretdb_storage_url().expect("FerretDB's storage");
    let mut storage = PgConnection::establish(storage).expect("FerretDB's storage");
    let client = Client::with_uri_str(ferret.uri()).await.expect("client");
    let orders: Collection<Document> = client.database("read_models").collection("orders");
    let email_index = IndexModel::builder()
        .keys(doc! { "customerEmail": 1, "createdAt": -1 })
        .build();
    orders
        .create_index(email_index.clone())
        .await
        .expect("create the email index");
    // Made again, as each start of the query side does: FerretDB finds it by name.
    orders
        .create_index(email_index)
        .await
        .expect("create the email index again");
    assert!(index_names(&orders).await.contains(&EMAIL_INDEX.to_owned()));
    let indexes = stored_indexes(&mut storage);
    let mut methods: Vec<(&str, bool)> = indexes
        .iter()
        .map(|index| (index.method.as_str(), index.is_unique))
        .collect();
    methods.sort_unstable();
    assert_eq!(
        methods,
        [("btree", true), ("gin", false), ("gin", false)],
        "the unique `_id` btree with its twin, and a GIN index in place of the email btree: \
         {indexes:?}"
    );
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
    let duplicate = orders
        .insert_one(doc! { "_id": "order-7", "customerEmail": "again@example.com" })
        .await;
    assert!(
        duplicate.is_err(),
        "the unique btree refuses a duplicate `_id`"
    );

    let gin_indexes: Vec<String> = stored_indexes(&mut storage)
        .into_iter()
        .filter(|index| index.method == "gin")
        .map(|index| index.name)
        .collect();
    for filter in [
        doc! { "_id": "order-777" },
        doc! { "customerEmail": "customer-7@example.com" },
    ] {
        let scanned = scanned_indexes(&orders, filter.clone()).await;
        assert!(
            scanned.len() == 1 && gin_indexes.contains(&scanned[0]),
            "{filter} is not served by a GIN index: {scanned:?}, GIN indexes {gin_indexes:?}"
        );
    }
    let email_documents: Vec<Document> = orders
        .find(doc! { "customerEmail": "customer-7@example.com" })
        .await
        .expect("find by email")
        .try_collect()
        .await
        .expect("read by email");
    assert_eq!(email_documents.len(), DOCUMENTS / 500);

    let scans_before = gin_scans(&mut storage);
    for i in 0..LOOKUPS {
        let found = orders
            .find_one(doc! { "_id": format!("order-{}", i * 31) })
            .await
            .expect("find");
        assert!(found.is_some());
    }
    // Statistics reach the view when FerretDB's connection reports them (within seconds).
    eventually(
        "every lookup to be counted as a scan of a GIN index",
        Duration::from_secs(30),
        || {
            let scans = gin_scans(&mut storage);
            std::future::ready((scans - scans_before >= LOOKUPS).then_some(()))
        },
    )
    .await;

    let before = stored_indexes(&mut storage);
    orders
        .drop_index(EMAIL_INDEX)
        .await
        .expect("drop the email index");
    let remaining: Vec<String> = stored_indexes(&mut storage)
        .into_iter()
        .map(|index| index.name)
        .collect();
    assert!(!index_names(&orders).await.contains(&EMAIL_INDEX.to_owned()));
    assert_eq!(
        remaining.len(),
        2,
        "dropping the index left its GIN index: {before:?} then {remaining:?}"
    );
}
