//! Three query-service replicas as competing consumers of one queue, on one read store: every
//! listing, read from any replica, names every order and every customer exactly once, in
//! order. The positions come with the events, so it does not matter which replica applies
//! which event, or in which order.

#![allow(clippy::unwrap_used)] // test code: a failed expectation should panic

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use harness::{assert_listings_match_postgres, eventually, walk_listing, ServiceStack};
use serde_json::{json, Value};

const CLIENTS: usize = 8;
const ORDERS_PER_CLIENT: usize = 40;
const CUSTOMERS: usize = 30;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_under_load_keep_every_listing_exact() {
    let stack = ServiceStack::start().await;
    let replicas = [
        stack.start_query_replica().await,
        stack.start_query_replica().await,
    ];
    let client = harness::http_client();

    let gateway = &stack.gateway;
    let clients = (0..CLIENTS).map(|c| {
        let client = client.clone();
        async move {
            let mut cancelled = 0;
            for n in 0..ORDERS_PER_CLIENT {
                let customer = (c * ORDERS_PER_CLIENT + n) % CUSTOMERS;
                let answer = client
                    .post(gateway.url("/orders"))
                    .json(&json!({
                        "description": format!("replicas {c}/{n}"),
                        "quantity": 1 + n % 4,
                        "firstName": "Rep",
                        "lastName": "Lica",
                        "email": format!("replica-c{customer}@example.com"),
                    }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), 202);
                let body: Value = answer.json().await.unwrap();
                if n % 7 == 3 {
                    let id = body["id"].as_str().unwrap();
                    let answer = client
                        .post(gateway.url(&format!("/orders/{id}/cancel")))
                        .json(&json!({}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(answer.status(), 202);
                    cancelled += 1;
                }
            }
            cancelled
        }
    });
    let cancelled: usize = futures::future::join_all(clients).await.into_iter().sum();
    assert!(cancelled > 0);

    let committed = diesel::sql_query("SELECT count(*) AS count FROM orders")
        .get_result::<Count>(&mut PgConnection::establish(&stack.database_url).unwrap())
        .unwrap()
        .count;
    assert_eq!(committed, (CLIENTS * ORDERS_PER_CLIENT) as i64);
    let query = format!("http://{}", stack.query.address());
    eventually("every order projected", Duration::from_secs(60), || async {
        let listed = walk_listing(&client, &query, "/orders?limit=500").await;
        (listed.len() as i64 == committed).then_some(())
    })
    .await;

    for replica in [&stack.query, &replicas[0], &replicas[1]] {
        let base = format!("http://{}", replica.address());
        assert_listings_match_postgres(&client, &base, &stack.database_url, 37).await;
        let metrics = harness::scrape_metrics(
            &client,
            &format!("http://127.0.0.1:{}", replica.metrics_port()),
        )
        .await;
        assert!(
            harness::metric(&metrics, "events_applied_total").unwrap_or_default() > 0.0,
            "{base} applied no event: the replicas did not share the queue"
        );
    }
}
