use chrono::{TimeDelta, Utc};
use serde_json::Value;

use crate::helpers::spawn_app;

async fn json_error(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.expect("a JSON error body")
}

#[tokio::test]
async fn orders_are_listed_newest_first_in_pages() {
    let app = spawn_app().await;
    let now = Utc::now();
    // Placed oldest first, c2 to c0.
    let mut events: Vec<_> = (0..3)
        .rev()
        .map(|n| app.placed(&format!("c{n}@example.com"), 1, now - TimeDelta::minutes(n)))
        .collect();
    events.reverse();
    for event in &events {
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
    // The sentinel, c0 and c1 at list positions 4, 3 and 2: the next page starts after c1's.
    assert_eq!(link, "</orders?limit=2&cursor=2>; rel=\"next\"");
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

    // An offset counts after the cursor: after the sentinel (position 4), skip one.
    let response = app.get("/orders?limit=1&cursor=4&offset=1").await;
    assert_eq!(
        response.headers()["link"].to_str().unwrap(),
        "</orders?limit=1&cursor=2>; rel=\"next\""
    );
    let page: Vec<Value> = response.json().await.unwrap();
    assert_eq!(page[0]["id"], events[1].aggregate_id.to_string());

    let response = app.get("/orders?limit=2&cursor=2").await;
    assert!(response.headers().get("link").is_none(), "the last page");
    let page: Vec<Value> = response.json().await.unwrap();
    let ids: Vec<&str> = page.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [events[2].aggregate_id.to_string()]);
}

/// Follows `Link: rel="next"` from `path` to the end; the ids of every page, in order.
async fn every_page(app: &crate::helpers::TestApp, path: &str) -> Vec<Vec<String>> {
    harness::walk_pages(&app.client, &app.address, path).await
}

#[tokio::test]
async fn following_the_links_lists_every_order_once_newest_first_across_list_pages() {
    let app = spawn_app().await;
    let now = Utc::now();
    // More than two pages of list positions (64 each), for two customers.
    let events: Vec<_> = (0..150)
        .map(|n| app.placed(&format!("c{}@example.com", n % 2), 1, now))
        .collect();
    for event in &events {
        app.publish(event).await;
    }
    app.wait_until_processed().await;

    let pages = every_page(&app, "/orders?limit=40").await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [40, 40, 40, 31], "150 orders and the sentinel");
    let listed: Vec<String> = pages.concat();
    let mut expected: Vec<String> = events.iter().map(|e| e.aggregate_id.to_string()).collect();
    expected.reverse();
    assert_eq!(
        listed[1..],
        expected[..],
        "newest first, after the sentinel"
    );

    let one_customer = every_page(&app, "/customers/c1@example.com/orders?limit=30").await;
    let listed: Vec<String> = one_customer.concat();
    let expected: Vec<String> = events
        .iter()
        .rev()
        .step_by(2)
        .map(|e| e.aggregate_id.to_string())
        .collect();
    assert_eq!(listed, expected, "c1's orders, newest first");
}

#[tokio::test]
async fn customers_are_listed_in_the_order_first_seen_with_their_orders() {
    let app = spawn_app().await;
    for email in ["bob@example.com", "ada@example.com", "ada@example.com"] {
        app.publish(&app.placed(email, 2, Utc::now())).await;
    }
    app.wait_until_processed().await;

    let pages = every_page(&app, "/customers?limit=1").await;
    assert_eq!(
        pages,
        [
            vec!["bob@example.com".to_owned()],
            vec!["ada@example.com".to_owned()],
            vec!["sentinel@example.com".to_owned()],
            vec![]
        ],
        "one customer a page, by position cursor"
    );
    let beyond = app.get("/customers?cursor=9223372036854775807").await;
    assert_eq!(beyond.status(), 200, "a cursor at the last position");
    assert_eq!(
        beyond.json::<Vec<Value>>().await.unwrap(),
        Vec::<Value>::new()
    );
    let customers: Vec<Value> = app
        .get("/customers?limit=2&offset=1")
        .await
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = customers
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["ada@example.com", "sentinel@example.com"]);
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
async fn customers_on_a_list_page_added_since_the_last_read_are_listed() {
    let app = spawn_app().await;
    app.publish(&app.placed("first@example.com", 1, Utc::now()))
        .await;
    app.wait_until_processed().await;
    // This read leaves the process knowing the listing's last page: page 0.
    let before: Vec<Value> = app.get("/customers").await.json().await.unwrap();
    assert_eq!(before.len(), 2, "the first customer and the sentinel");

    // More customers than the rest of the first page of positions (64) holds, two orders each.
    let newer: Vec<String> = (0..70).map(|n| format!("c{n}@example.com")).collect();
    for email in newer.iter().chain(&newer) {
        app.publish(&app.placed(email, 1, Utc::now())).await;
    }
    app.wait_until_processed().await;

    let listed: Vec<String> = every_page(&app, "/customers?limit=500").await.concat();
    assert_eq!(listed.len(), 72, "{listed:?}");
    assert_eq!(
        listed[2..],
        newer[..],
        "the newer customers in order, page 1's too"
    );
    let after_them: Vec<Value> = app
        .get("/customers?limit=500&offset=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        after_them.len(),
        70,
        "every customer after the two read before"
    );
    let counts: Vec<&Value> = after_them.iter().map(|c| &c["orderCount"]).collect();
    assert!(
        counts.iter().all(|count| *count == 2),
        "each completed from their second order, whichever query read its span: {counts:?}"
    );
}

#[tokio::test]
async fn unknown_ids_are_404_with_a_json_error() {
    let app = spawn_app().await;
    for path in [
        "/orders/0193f0e6-0000-7000-8000-000000000000",
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
        ("offset=10001", "offset"),
        ("cursor=abc", "cursor"),
        ("cursor=0", "cursor"),
        ("cursor=+5", "cursor"),
        ("limit=+5", "limit"),
        ("offset=1.0", "offset"),
        ("consistencyToken=x&consistencyToken=y", "consistencyToken"),
    ] {
        let body = json_error(app.get(&format!("/orders?{query}")).await, 400).await;
        assert_eq!(body["parameter"], parameter, "{query}");
    }
}

#[tokio::test]
async fn a_control_character_in_an_email_or_cursor_or_a_malformed_id_is_400_not_a_store_error() {
    let app = spawn_app().await;
    for (path, parameter) in [
        ("/orders?email=a%00b@example.com", "email"),
        ("/customers/a%00b@example.com", "email"),
        ("/customers/a%00b@example.com/orders", "email"),
        ("/orders?email=a%0Ab@example.com", "email"),
        ("/customers?cursor=a%00b", "cursor"),
        ("/orders/%00", "id"),
        ("/orders/not-a-uuid", "id"),
        ("/orders/0193f0e6-0000-7000-8000-00000000000%00", "id"),
    ] {
        let body = json_error(app.get(path).await, 400).await;
        assert_eq!(body["parameter"], parameter, "{path}");
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

#[tokio::test]
async fn a_customer_is_found_by_either_spelling_of_an_internationalised_domain() {
    let app = spawn_app().await;
    // The command side stores the domain in its ASCII form.
    app.publish(&app.placed("leser@xn--bcher-kva.de", 2, Utc::now()))
        .await;
    app.wait_until_processed().await;

    for path in [
        "/customers/Leser@B%C3%BCcher.de",
        "/customers/leser@xn--bcher-kva.de",
    ] {
        let customer = app.get_eventually(path).await;
        assert_eq!(customer["email"], "leser@xn--bcher-kva.de", "{path}");
    }
    let orders: Vec<Value> = app
        .get("/orders?email=leser@b%C3%BCcher.de")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(orders.len(), 1);
}
