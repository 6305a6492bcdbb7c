//! A read model evolves by one way only: a new generation, rebuilt. Each generation records the
//! shape of the documents it holds; one written before shapes were recorded is reported at
//! start-up, and nothing is upgraded in place.

use mongodb::bson::{doc, DateTime, Document};
use mongodb::{Collection, Database};
use query_service::config::Settings;
use query_service::store::{Generation, ReadStore, CURRENT_SHAPE};
use serde_json::Value;
use service_support::config::LayeredSettings;

use crate::helpers::spawn_app_with;

/// A fresh read database, empty, a store on it, and the guard that drops it.
async fn fresh_store() -> (ReadStore, Database, Settings, harness::TestMongoDatabase) {
    let scratch = harness::fresh_mongo_database();
    let mut settings = Settings::defaults().unwrap();
    settings.mongodb.uri = scratch.uri.clone();
    settings.mongodb.database = scratch.name.clone();
    let database = mongodb::Client::with_uri_str(&scratch.uri)
        .await
        .unwrap()
        .database(&scratch.name);
    let store = ReadStore::new(&settings.mongodb).await.unwrap();
    (store, database, settings, scratch)
}

/// An order as the release before `customerEmail` and list positions stored it.
async fn insert_legacy_order(orders: &Collection<Document>, id: &str, email: &str) {
    orders
        .insert_one(doc! {
            "_id": id,
            "description": "Stored by an earlier release",
            "quantity": 1_i64,
            "status": "placed",
            "customer": { "email": email, "firstName": "Old", "lastName": "Timer" },
            "createdAt": DateTime::now(),
            "version": 1_i64,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_generation_without_a_recorded_shape_is_from_an_earlier_release() {
    let (store, database, _settings, _scratch) = fresh_store().await;
    insert_legacy_order(
        &database.collection("orders"),
        "legacy-order",
        "legacy@example.com",
    )
    .await;

    assert_eq!(store.shape_on_start().await.unwrap(), 0);
    // Asking again records nothing: the generation stays reported until it is rebuilt.
    assert_eq!(store.shape_on_start().await.unwrap(), 0);
}

#[tokio::test]
async fn an_empty_generation_takes_this_release_s_shape_and_keeps_it() {
    let (store, database, _settings, _scratch) = fresh_store().await;

    assert_eq!(store.shape_on_start().await.unwrap(), CURRENT_SHAPE);
    // Documents written since (by this release) do not make it look older.
    insert_legacy_order(&database.collection("orders"), "new-order", "a@example.com").await;
    assert_eq!(store.shape_on_start().await.unwrap(), CURRENT_SHAPE);
}

#[tokio::test]
async fn a_rebuilt_generation_records_its_shape_and_dropping_it_forgets_the_record() {
    let (store, database, settings, _scratch) = fresh_store().await;
    insert_legacy_order(&database.collection("orders"), "legacy", "a@example.com").await;
    let next = store.pinned(Generation::FIRST.next());
    insert_legacy_order(
        &database.collection("orders_g1"),
        "rebuilt",
        "a@example.com",
    )
    .await;

    next.record_shape().await.unwrap();
    next.record_shape().await.unwrap();

    let restarted = ReadStore::new(&settings.mongodb).await.unwrap();
    assert_eq!(restarted.shape_on_start().await.unwrap(), 0, "generation 0");
    assert_eq!(next.shape_on_start().await.unwrap(), CURRENT_SHAPE);
    next.drop_collections().await.unwrap();
    let records = database
        .collection::<Document>("readModelGenerations")
        .count_documents(doc! {})
        .await
        .unwrap();
    assert_eq!(records, 0, "the dropped generation's record is gone");
}

#[tokio::test]
async fn the_service_starts_on_an_earlier_generation_and_filters_by_customer_email_only() {
    let (_store, database, settings, _scratch) = fresh_store().await;
    let orders = database.collection::<Document>("orders");
    insert_legacy_order(&orders, "legacy-order", "legacy@example.com").await;

    let app = spawn_app_with(|app_settings| app_settings.mongodb = settings.mongodb.clone()).await;

    // Nothing upgrades the old order in place: it waits for a rebuild.
    let listed: Vec<Value> = app
        .get("/orders?email=legacy@example.com")
        .await
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    assert!(orders
        .find_one(doc! { "_id": "legacy-order", "customerEmail": { "$exists": false } })
        .await
        .unwrap()
        .is_some());
    let by_id = app.get("/orders/legacy-order").await;
    assert_eq!(by_id.status(), 200, "still read by id");
}
