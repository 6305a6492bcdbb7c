use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde_json::{json, Value};

use crate::helpers::{json_error, order_body, spawn_app, TestApp};

async fn post_with_key(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{}/orders", app.address))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[derive(QueryableByName)]
struct Counts {
    #[diesel(sql_type = BigInt)]
    orders: i64,
    #[diesel(sql_type = BigInt)]
    events: i64,
}

fn counts(app: &TestApp) -> (i64, i64) {
    let counts: Counts = diesel::sql_query(
        "SELECT (SELECT count(*) FROM orders) AS orders, (SELECT count(*) FROM outbox) AS events",
    )
    .get_result(&mut app.database())
    .unwrap();
    (counts.orders, counts.events)
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_same_order_and_writes_nothing() {
    let app = spawn_app().await;
    let body = order_body("ada@example.com");
    let first = post_with_key(&app, "retry-1", &body).await;
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    let retry = post_with_key(&app, "retry-1", &body).await;
    assert_eq!(retry.status(), 202);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry, first);
    assert_eq!(counts(&app), (1, 1));

    let other_key = post_with_key(&app, "retry-2", &body).await;
    assert_eq!(other_key.status(), 202);
    assert_eq!(counts(&app), (2, 2), "another key is another order");
}

#[tokio::test]
async fn a_commit_lost_with_its_connection_is_an_unknown_outcome_that_a_retry_settles() {
    let app = spawn_app().await;
    // At COMMIT, the order's deferred trigger ends the session: the client hears nothing back
    // from its COMMIT, as when a primary dies after its standby has the commit.
    app.database()
        .batch_execute(
            "CREATE FUNCTION test_end_session() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER test_end_session_at_commit AFTER INSERT ON orders
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_end_session()",
        )
        .unwrap();
    let body = order_body("ada@example.com");

    let lost = post_with_key(&app, "lost-commit", &body).await;

    assert!(lost.headers().contains_key("retry-after"));
    let error = json_error(lost, 503).await;
    assert_eq!(error["error"], "outcome_unknown", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{error}"
    );

    diesel::sql_query("DROP TRIGGER test_end_session_at_commit ON orders")
        .execute(&mut app.database())
        .unwrap();
    let retry = post_with_key(&app, "lost-commit", &body).await;
    assert_eq!(retry.status(), 202);
    assert!(
        retry.headers().get("idempotent-replayed").is_none(),
        "this commit had not happened, so the retry placed the order"
    );
    assert_eq!(counts(&app), (1, 1));
}

#[tokio::test]
async fn concurrent_requests_with_one_key_place_one_order() {
    let app = spawn_app().await;
    let body = order_body("ada@example.com");
    let answers =
        futures::future::join_all((0..8).map(|_| post_with_key(&app, "burst", &body))).await;
    let mut ids = Vec::new();
    for answer in answers {
        assert_eq!(answer.status(), 202);
        ids.push(answer.json::<Value>().await.unwrap()["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(counts(&app), (1, 1));
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused() {
    let app = spawn_app().await;
    assert_eq!(
        post_with_key(&app, "once", &order_body("ada@example.com"))
            .await
            .status(),
        202
    );
    let mut different = order_body("ada@example.com");
    different["quantity"] = json!(4);
    let response = post_with_key(&app, "once", &different).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "idempotency_key_reused");
    assert_eq!(counts(&app), (1, 1));

    let response = post_with_key(&app, "has space", &order_body("ada@example.com")).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["header"], "Idempotency-Key");
}

#[tokio::test]
async fn two_idempotency_keys_on_one_request_are_refused() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/orders", app.address))
        .header("idempotency-key", "first")
        .header("idempotency-key", "second")
        .json(&order_body("ada@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["header"], "Idempotency-Key", "{body}");
    assert_eq!(counts(&app), (0, 0));
}
