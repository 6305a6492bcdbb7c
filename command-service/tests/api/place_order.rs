use diesel::prelude::*;
use diesel::sql_types::{BigInt, Int4, Text};
use serde_json::{json, Value};

use crate::helpers::{json_error, order_body, spawn_app};

#[derive(QueryableByName, Debug)]
struct OrderRow {
    #[diesel(sql_type = Text)]
    customer_email: String,
    #[diesel(sql_type = Text)]
    description: String,
    #[diesel(sql_type = Int4)]
    quantity: i32,
}

#[derive(QueryableByName, Debug)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .unwrap()
        .count
}

#[tokio::test]
async fn a_valid_order_is_accepted_with_its_id_and_location() {
    let app = spawn_app().await;

    let response = app.post_order(&order_body("Ada@Example.com")).await;

    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_str().expect("an id in the body");
    assert_eq!(location, format!("/orders/{id}"));
    uuid::Uuid::parse_str(id).expect("the id is a UUID");

    let mut conn = app.database();
    let row: OrderRow = diesel::sql_query(
        "SELECT customer_email, description, quantity FROM orders WHERE id = $1::uuid",
    )
    .bind::<Text, _>(id)
    .get_result(&mut conn)
    .expect("the order is stored");
    assert_eq!(row.customer_email, "ada@example.com");
    assert_eq!(row.description, "Analytical engine punch cards");
    assert_eq!(row.quantity, 3);
}

#[tokio::test]
async fn the_order_its_customer_and_its_event_are_committed_together() {
    let app = spawn_app().await;
    let id = app.place_order("grace@example.com").await;

    let mut conn = app.database();
    #[derive(QueryableByName)]
    struct Envelope {
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        envelope: Value,
    }
    let stored: Envelope =
        diesel::sql_query("SELECT envelope FROM outbox WHERE aggregate_id = $1::uuid")
            .bind::<Text, _>(&id)
            .get_result(&mut conn)
            .expect("one outbox row for the order");
    let envelope = stored.envelope;
    assert_eq!(envelope["eventType"], "OnNewOrder");
    assert_eq!(envelope["schemaVersion"], 5);
    assert_eq!(envelope["aggregateVersion"], 1);
    assert_eq!(envelope["payload"]["customerSummary"]["version"], 1);
    assert_eq!(
        envelope["payload"]["listPositions"],
        json!({"order": 1, "customer": 1, "customerOrder": 1})
    );
    assert_eq!(
        envelope["payload"]["owner"], "",
        "auth is off: the anonymous owner"
    );
    assert_eq!(
        envelope["payload"]["ownerPositions"],
        json!({"order": 1, "customer": 1})
    );
    assert_eq!(envelope["payload"]["unitPrice"], Value::Null);
    assert_eq!(envelope["payload"]["orderId"], id.as_str());
    assert_eq!(
        envelope["payload"]["customer"]["email"],
        "grace@example.com"
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS count FROM customers WHERE email = 'grace@example.com'"
        ),
        1
    );
}

#[tokio::test]
async fn a_returning_customer_keeps_the_latest_names() {
    let app = spawn_app().await;
    app.place_order("ada@example.com").await;
    let mut renamed = order_body("ADA@example.com");
    renamed["lastName"] = json!("King");
    assert_eq!(app.post_order(&renamed).await.status(), 202);

    let mut conn = app.database();
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS count FROM customers"),
        1
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS count FROM customers WHERE last_name = 'King'"
        ),
        1
    );
    assert_eq!(count(&mut conn, "SELECT count(*) AS count FROM orders"), 2);
}

#[tokio::test]
async fn every_invalid_field_is_reported_at_once() {
    let app = spawn_app().await;
    let response = app
        .post_order(&json!({
            "description": "  ",
            "quantity": 0,
            "firstName": "",
            "lastName": "x".repeat(101),
            "email": "not-an-email",
        }))
        .await;

    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "validation_failed");
    let fields: Vec<&str> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| field["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["description", "quantity", "firstName", "lastName", "email"]
    );
    let mut conn = app.database();
    assert_eq!(count(&mut conn, "SELECT count(*) AS count FROM outbox"), 0);
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_reported_per_field() {
    let app = spawn_app().await;
    let cases = [
        (json!({"quantity": "3"}), "quantity", "must be a number"),
        (json!({"quantity": 1.5}), "quantity", "whole number"),
        (json!({"quantity": 1e300}), "quantity", "whole number"),
        (
            json!({"quantity": serde_json::from_str::<Value>("99999999999999999999").unwrap()}),
            "quantity",
            "whole number",
        ),
        (json!({"quantity": -4}), "quantity", "between 1 and 10000"),
        (
            json!({"description": 42}),
            "description",
            "must be a string",
        ),
        (json!({"email": null}), "email", "is required"),
        (json!({"email": ["a@b.c"]}), "email", "must be a string"),
        (
            json!({"firstName": "..."}),
            "firstName",
            "must contain a letter",
        ),
        (
            json!({"lastName": "\u{3164}\u{3164}"}),
            "lastName",
            "draw nothing",
        ),
        (
            json!({"description": "Tea\u{2028}Set-Cookie: x"}),
            "description",
            "one line",
        ),
        (
            json!({"description": "Tea\u{E000}"}),
            "description",
            "private-use",
        ),
        (
            json!({"unitPriceMinor": 100, "currency": "ZZZ"}),
            "currency",
            "active ISO 4217",
        ),
    ];
    for (patch, field, expected) in cases {
        let mut body = order_body("ada@example.com");
        for (key, value) in patch.as_object().unwrap() {
            body[key] = value.clone();
        }
        let response = app.post_order(&body).await;
        assert_eq!(response.status(), 422, "{patch}");
        let body: Value = response.json().await.unwrap();
        let reported = &body["fields"][0];
        assert_eq!(reported["field"], field, "{patch}");
        assert!(
            reported["message"].as_str().unwrap().contains(expected),
            "{patch}: {reported}"
        );
        assert_eq!(body["fields"].as_array().unwrap().len(), 1, "{patch}");
    }
}

#[tokio::test]
async fn operator_and_sql_looking_text_is_stored_literally() {
    let app = spawn_app().await;
    let mut body = order_body("ada@example.com");
    body["description"] = json!("{\"$gt\": \"\"}'; DROP TABLE orders; --");
    body["firstName"] = json!("$where");
    body["lastName"] = json!("a.b.c");
    let response = app.post_order(&body).await;
    assert_eq!(response.status(), 202);

    let mut conn = app.database();
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS count FROM orders WHERE description = '{\"$gt\": \"\"}''; DROP TABLE orders; --'"
        ),
        1
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS count FROM customers WHERE first_name = '$where' AND last_name = 'a.b.c'"),
        1
    );
}

#[tokio::test]
async fn unknown_fields_are_ignored_even_operator_or_dotted_ones() {
    let app = spawn_app().await;
    let mut body = order_body("ada@example.com");
    body["giftWrap"] = json!(true);
    body["$set"] = json!({"quantity": 9999});
    body["customer.email"] = json!("mallory@example.com");
    assert_eq!(app.post_order(&body).await.status(), 202);

    let mut conn = app.database();
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS count FROM orders WHERE quantity = 3 AND customer_email = 'ada@example.com'"),
        1
    );
}

#[tokio::test]
async fn each_event_carries_the_customer_summary_with_itself_counted() {
    let app = spawn_app().await;
    let first = app.place_order("lin@example.com").await;
    app.place_order("Lin@Example.com").await;
    let cancelled = app
        .client
        .post(format!("{}/orders/{first}/cancel", app.address))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 202);

    #[derive(QueryableByName)]
    struct Summary {
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        summary: Value,
    }
    let summaries: Vec<Value> = diesel::sql_query(
        "SELECT envelope->'payload'->'customerSummary' AS summary FROM outbox ORDER BY id",
    )
    .load::<Summary>(&mut app.database())
    .unwrap()
    .into_iter()
    .map(|row| row.summary)
    .collect();
    let counts: Vec<(i64, i64, i64, i64, i64)> = summaries
        .iter()
        .map(|summary| {
            let field = |name: &str| summary[name].as_i64().unwrap();
            (
                field("version"),
                field("placedOrderCount"),
                field("placedQuantity"),
                field("cancelledOrderCount"),
                field("cancelledQuantity"),
            )
        })
        .collect();
    // order_body orders 3 units.
    assert_eq!(counts, [(1, 1, 3, 0, 0), (2, 2, 6, 0, 0), (3, 2, 6, 1, 3)]);
    assert_eq!(summaries[2]["lastOrderAt"], summaries[1]["lastOrderAt"]);
}

#[tokio::test]
async fn a_refused_cancellation_leaves_the_summary_alone() {
    let app = spawn_app().await;
    let id = app.place_order("ida@example.com").await;
    let cancel = || {
        app.client
            .post(format!("{}/orders/{id}/cancel", app.address))
            .header("content-type", "application/json")
            .send()
    };
    assert_eq!(cancel().await.unwrap().status(), 202);
    assert_eq!(cancel().await.unwrap().status(), 409);
    assert_eq!(
        count(
            &mut app.database(),
            "SELECT summary_version AS count FROM customers WHERE email = 'ida@example.com'"
        ),
        2
    );
}

#[tokio::test]
async fn placing_an_order_answers_its_version_and_consistency_token() {
    let app = spawn_app().await;
    let response = app.post_order(&order_body("ada@example.com")).await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let header_token = response.headers()["x-consistency-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["version"], 1);
    assert_eq!(body["consistencyToken"], header_token);
    assert_eq!(header_token, format!("{}.1", body["id"].as_str().unwrap()));
}

#[tokio::test]
async fn a_unit_price_is_stored_and_published_and_comes_with_its_currency() {
    let app = spawn_app().await;
    let mut body = order_body("ada@example.com");
    body["unitPriceMinor"] = json!(1250);
    body["currency"] = json!("EUR");
    let response = app.post_order(&body).await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let price = app.events_of(&id)[0].payload.order().unit_price.clone();
    let price = price.expect("the event carries the price");
    assert_eq!((price.amount_minor, price.currency.as_str()), (1250, "EUR"));

    for (missing, present, value) in [
        ("currency", "unitPriceMinor", json!(100)),
        ("unitPriceMinor", "currency", json!("EUR")),
    ] {
        let mut body = order_body("ada@example.com");
        body[present] = value;
        let error = json_error(app.post_order(&body).await, 422).await;
        assert_eq!(error["fields"][0]["field"], missing, "{error}");
    }
    let mut body = order_body("ada@example.com");
    body["unitPriceMinor"] = json!(-5);
    body["currency"] = json!("EURO");
    let error = json_error(app.post_order(&body).await, 422).await;
    let fields: Vec<&str> = error["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| field["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["unitPriceMinor", "currency"]);
}
