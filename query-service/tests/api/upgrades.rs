use std::time::Duration;

use harness::eventually;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::{Collection, Database};
use query_service::config::Settings;
use query_service::store::{Generation, ReadStore};
use serde_json::Value;
use service_support::config::LayeredSettings;

use crate::helpers::{spawn_app_with, TestApp};

const UPGRADES: &str = "readModelUpgrades";

/// A fresh read database, empty, and the guard that drops it.
async fn fresh_database() -> (String, Database, harness::TestMongoDatabase) {
    let scratch = harness::fresh_mongo_database();
    let database = mongodb::Client::with_uri_str(&scratch.uri)
        .await
        .unwrap()
        .database(&scratch.name);
    (scratch.uri.clone(), database, scratch)
}

/// The application on an existing read database.
async fn spawn_app_on(uri: String, database: &Database) -> TestApp {
    let name = database.name().to_owned();
    spawn_app_with(|settings| {
        settings.mongodb.uri = uri;
        settings.mongodb.database = name;
    })
    .await
}

/// An order as the release before `customerEmail` stored it: the email only inside `customer`.
async fn insert_legacy_order(orders: &Collection<Document>, id: &str, email: &str) {
    orders
        .insert_one(doc! {
            "_id": id,
            "description": "Stored by the previous release",
            "quantity": 1_i64,
            "status": "placed",
            "customer": { "email": email, "firstName": "Old", "lastName": "Timer" },
            "createdAt": DateTime::now(),
            "version": 1_i64,
        })
        .await
        .unwrap();
}

async fn listed_ids(response: reqwest::Response) -> Vec<String> {
    let listed: Vec<Value> = response.json().await.unwrap();
    listed
        .iter()
        .map(|order| order["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn orders_stored_before_customer_email_existed_are_backfilled_once_and_found_by_email() {
    let (uri, database, _scratch) = fresh_database().await;
    let orders = database.collection::<Document>("orders");
    insert_legacy_order(&orders, "legacy-order", "legacy@example.com").await;

    let app = spawn_app_on(uri, &database).await;

    let record = eventually("the backfill's record", Duration::from_secs(10), || async {
        database
            .collection::<Document>(UPGRADES)
            .find_one(doc! { "_id": "orders.customerEmail" })
            .await
            .unwrap()
    })
    .await;
    assert!(record.get_datetime("completedAt").is_ok(), "{record}");
    assert!(orders
        .find_one(doc! { "_id": "legacy-order", "customerEmail": "legacy@example.com" })
        .await
        .unwrap()
        .is_some());
    let response = app.get("/orders?email=legacy@example.com").await;
    assert_eq!(listed_ids(response).await, ["legacy-order"]);
}

#[tokio::test]
async fn a_recorded_backfill_is_not_repeated_and_email_filters_use_customer_email_at_once() {
    let (uri, database, _scratch) = fresh_database().await;
    let orders = database.collection::<Document>("orders");
    database
        .collection::<Document>(UPGRADES)
        .insert_one(doc! { "_id": "orders.customerEmail", "completedAt": DateTime::now() })
        .await
        .unwrap();
    // Found through `customer.email` only: by the scan a start without the record runs, or by
    // a filter on the nested field. With the record trusted, neither happens.
    insert_legacy_order(&orders, "unrecorded-order", "legacy@example.com").await;

    let app = spawn_app_on(uri, &database).await;

    let response = app.get("/orders?email=legacy@example.com").await;
    assert_eq!(listed_ids(response).await, Vec::<String>::new());
    assert!(orders
        .find_one(doc! { "_id": "unrecorded-order", "customerEmail": { "$exists": false } })
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn a_generation_s_upgrade_records_go_with_its_collections() {
    let (uri, database, _scratch) = fresh_database().await;
    let mut settings = Settings::defaults().unwrap();
    settings.mongodb.uri = uri;
    settings.mongodb.database = database.name().to_owned();
    let store = ReadStore::new(&settings.mongodb).await.unwrap();
    let next = store.pinned(Generation::FIRST.next());

    assert!(!store.customer_email_recorded().await.unwrap());
    assert_eq!(store.backfill_customer_email().await.unwrap(), 0);
    next.record_customer_email_complete().await.unwrap();
    let restarted = ReadStore::new(&settings.mongodb).await.unwrap();
    assert!(restarted.customer_email_recorded().await.unwrap());
    assert!(restarted
        .pinned(Generation::FIRST.next())
        .customer_email_recorded()
        .await
        .unwrap());

    next.drop_collections().await.unwrap();
    let records: Vec<String> = database
        .collection::<Document>(UPGRADES)
        .distinct("_id", doc! {})
        .await
        .unwrap()
        .into_iter()
        .filter_map(|id| id.as_str().map(str::to_owned))
        .collect();
    assert_eq!(records, ["orders.customerEmail"]);
}
