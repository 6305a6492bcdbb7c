use chrono::{TimeDelta, Utc};
use serde_json::Value;

use crate::helpers::{new_order, spawn_app};

async fn json_error(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.expect("a JSON error body")
}

#[tokio::test]
async fn orders_are_listed_newest_first_in_pages() {
    let app = spawn_app().await;
    let now = Utc::now();
    let events: Vec<_> = (0..3)
        .map(|n| new_order(&format!("c{n}@example.com"), 1, now - TimeDelta::minutes(n)))
        .collect();
    for event in events.iter().rev() {
        app.publish(event).await;
    }
    app.wait_until_processed().await;

    let response = app.get("/orders?limit=2&email=c0@example.com").await;
    assert_eq!(response.status(), 200);
    let page: Vec<Value> = response.json().await.unwrap();
    assert_eq!(
        page.len(),
        1,
        "the email filter keeps one customer's orders"
    );

    let response = app.get("/orders?limit=2&offset=1").await;
    let link = response.headers()["link"].to_str().unwrap().to_owned();
    assert_eq!(link, "</orders?limit=2&offset=3>; rel=\"next\"");
    let page: Vec<Value> = response.json().await.unwrap();
    let ids: Vec<&str> = page.iter().map(|o| o["id"].as_str().unwrap()).collect();
    // Offset 1 skips the sentinel, the newest of all.
    assert_eq!(
        ids,
        [
            events[0].aggregate_id.to_string(),
            events[1].aggregate_id.to_string()
        ]
    );
}

#[tokio::test]
async fn customers_are_listed_by_email_with_their_orders() {
    let app = spawn_app().await;
    for email in ["bob@example.com", "ada@example.com", "ada@example.com"] {
        app.publish(&new_order(email, 2, Utc::now())).await;
    }
    app.wait_until_processed().await;

    let customers: Vec<Value> = app.get("/customers?limit=2").await.json().await.unwrap();
    let emails: Vec<&str> = customers
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["ada@example.com", "bob@example.com"]);
    assert_eq!(customers[0]["orderCount"], 2);
    assert_eq!(customers[0]["totalQuantity"], 4);

    let orders: Vec<Value> = app
        .get("/customers/ADA@example.com/orders")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(orders.len(), 2);
}

#[tokio::test]
async fn unknown_ids_are_404_with_a_json_error() {
    let app = spawn_app().await;
    for path in [
        "/orders/0193f0e6-0000-7000-8000-000000000000",
        "/orders/not-a-uuid",
        "/customers/nobody@example.com",
        "/customers/nobody@example.com/orders",
        "/customers/%7B%22$gt%22:%22%22%7D",
    ] {
        let body = json_error(app.get(path).await, 404).await;
        assert_eq!(body["error"], "not_found", "{path}");
    }
}

#[tokio::test]
async fn bad_paging_parameters_are_400_naming_the_parameter() {
    let app = spawn_app().await;
    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
    ] {
        let body = json_error(app.get(&format!("/orders?{query}")).await, 400).await;
        assert_eq!(body["parameter"], parameter, "{query}");
    }
}

#[tokio::test]
async fn writes_are_not_served_by_the_query_side() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/customers", app.address))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_error(response, 405).await["error"],
        "method_not_allowed"
    );
}
