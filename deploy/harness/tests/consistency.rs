//! Issue 5 through the deployed shape: order lifecycle, read-your-writes, version-1 events
//! from the first release, and a read-model rebuild under live traffic, all checked against
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Int8, Text};
use harness::{index_names, ServiceStack};
use mongodb::bson::doc;
use serde_json::{json, Value};
use shared_events::fixtures::ON_NEW_ORDER_V1_JSON;

struct Stack {
    services: ServiceStack,
    client: reqwest::Client,
}

/// What a command answered: the order id and the consistency token.
struct Accepted {
    id: String,
    token: String,
}

impl Stack {
    async fn start() -> Self {
        Self {
            services: ServiceStack::start().await,
            client: harness::http_client(),
        }
    }

    async fn command(&self, path: &str, body: &Value) -> Accepted {
        let response = self
            .client
            .post(self.services.gateway.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{path}");
        let body: Value = response.json().await.unwrap();
        Accepted {
            id: body["id"].as_str().unwrap().to_owned(),
            token: body["consistencyToken"].as_str().unwrap().to_owned(),
        }
    }

    async fn place(&self, email: &str, quantity: u32) -> Accepted {
        self.command(
            "/orders",
            &json!({
                "description": "Jacquard loom cards",
                "quantity": quantity,
                "firstName": "Ada",
                "lastName": "Lovelace",
                "email": email,
                "unitPriceMinor": 990,
                "currency": "GBP",
            }),
        )
        .await
    }

    /// A read that presents `token`: it must be answered 200 at once, never a 404 or stale.
    async fn read_after(&self, path: &str, token: &str) -> Value {
        let response = self
            .client
            .get(self.services.gateway.url(path))
            .header("X-Consistency-Token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path} after {token}");
        response.json().await.unwrap()
    }

    /// A read without a token, through the gateway.
    async fn get_json(&self, path: &str) -> Value {
        self.client
            .get(self.services.gateway.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    fn database(&self) -> PgConnection {
        PgConnection::establish(&self.services.database_url).unwrap()
    }
}

#[derive(QueryableByName, Debug)]
struct OrderRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Int8)]
    version: i64,
}

#[derive(QueryableByName, Debug)]
struct CustomerRow {
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = BigInt)]
    live: i64,
    #[diesel(sql_type = BigInt)]
    cancelled: i64,
    #[diesel(sql_type = BigInt)]
    live_quantity: i64,
}

/// Every order and every customer summary the gateway serves matches PostgreSQL.
async fn assert_read_models_match_postgres(stack: &Stack) {
    let mut conn = stack.database();
    let orders: Vec<OrderRow> =
        diesel::sql_query("SELECT id::text AS id, status, version FROM orders")
            .load(&mut conn)
            .unwrap();
    for order in &orders {
        let token = format!("{}.{}", order.id, order.version);
        let read = stack
            .read_after(&format!("/orders/{}", order.id), &token)
            .await;
        assert_eq!(read["status"], order.status.as_str(), "{}", order.id);
        assert_eq!(read["version"], order.version, "{}", order.id);
    }
    let listed = stack.get_json("/orders?limit=500").await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        orders.len(),
        "no order more, none less"
    );

    let customers: Vec<CustomerRow> = diesel::sql_query(
        "SELECT customer_email AS email,
                count(*) FILTER (WHERE status = 'placed') AS live,
                count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                coalesce(sum(quantity) FILTER (WHERE status = 'placed'), 0)::bigint AS live_quantity
           FROM orders GROUP BY customer_email",
    )
    .load(&mut conn)
    .unwrap();
    for customer in customers {
        let read = stack
            .get_json(&format!("/customers/{}", customer.email))
            .await;
        assert_eq!(read["orderCount"], customer.live, "{read}");
        assert_eq!(read["cancelledOrderCount"], customer.cancelled, "{read}");
        assert_eq!(read["totalQuantity"], customer.live_quantity, "{read}");
    }
}

#[tokio::test]
async fn commands_and_reads_through_the_gateway_honour_tokens_and_versions() {
    let stack = Stack::start().await;
    let placed = stack.place("ada@example.com", 2).await;
    let order = stack
        .read_after(&format!("/orders/{}", placed.id), &placed.token)
        .await;
    assert_eq!(
        order["unitPrice"],
        json!({"amountMinor": 990, "currency": "GBP"})
    );

    let cancelled = stack
        .command(
            &format!("/orders/{}/cancel", placed.id),
            &json!({"reason": "Duplicate"}),
        )
        .await;
    let customer = stack
        .read_after("/customers/ada@example.com", &cancelled.token)
        .await;
    assert_eq!(customer["orderCount"], 0);
    assert_eq!(customer["cancelledOrderCount"], 1);

    let again = stack
        .client
        .post(
            stack
                .services
                .gateway
                .url(&format!("/orders/{}/cancel", placed.id)),
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        409,
        "the gateway routes the command side's refusal"
    );
}

#[tokio::test]
async fn read_your_writes_holds_for_every_order_under_concurrent_load() {
    let stack = Stack::start().await;
    let results = futures::future::join_all((0..40).map(|n| {
        let stack = &stack;
        async move {
            let placed = stack.place(&format!("c{}@example.com", n % 7), 1).await;
            stack
                .read_after(&format!("/orders/{}", placed.id), &placed.token)
                .await
        }
    }))
    .await;
    assert_eq!(results.len(), 40);
    assert!(results.iter().all(|order| order["version"] == 1));
}

/// An `OnNewOrder` of schema version 1 written to the outbox as the first release wrote it
/// (its order and customer rows too), for the relay and the rebuild to find. The golden
/// message gets fresh ids, as a first-release order placed just now would have: the read that
/// follows presents its token, and a token of an order placed long ago that the read model does
/// not know is answered at once (see `http::consistency`).
/// The rebuild command's process ended without a panic, even after its work succeeded (a
/// client dropped as the process exits once made the driver panic).
fn assert_exited_cleanly(output: &std::process::Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn write_like_the_first_release(stack: &Stack) -> String {
    let mut envelope: Value = serde_json::from_str(ON_NEW_ORDER_V1_JSON).unwrap();
    let order_id = uuid::Uuid::now_v7().to_string();
    envelope["eventId"] = Value::from(uuid::Uuid::now_v7().to_string());
    envelope["aggregateId"] = Value::from(order_id.clone());
    envelope["payload"]["orderId"] = Value::from(order_id);
    let payload = &envelope["payload"];
    let mut conn = stack.database();
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        // Numbered as the migration that introduced list positions numbered such orders.
        diesel::sql_query(
            "INSERT INTO customers (owner, email, first_name, last_name, list_position,
                                    owner_position)
             SELECT '', $1, $2, $3, position, position
               FROM nextval('customer_list_positions') AS position
             ON CONFLICT (owner, email) DO NOTHING",
        )
        .bind::<Text, _>(payload["customer"]["email"].as_str().unwrap())
        .bind::<Text, _>(payload["customer"]["firstName"].as_str().unwrap())
        .bind::<Text, _>(payload["customer"]["lastName"].as_str().unwrap())
        .execute(conn)?;
        diesel::sql_query(
            "INSERT INTO orders (id, owner, customer_email, description, quantity, created_at,
                                 list_position, customer_order, owner_position)
             SELECT $1::uuid, '', $2, $3, $4::int, $5::timestamptz, position, 1, position
               FROM nextval('order_list_positions') AS position",
        )
        .bind::<Text, _>(payload["orderId"].as_str().unwrap())
        .bind::<Text, _>(payload["customer"]["email"].as_str().unwrap())
        .bind::<Text, _>(payload["description"].as_str().unwrap())
        .bind::<Text, _>(payload["quantity"].to_string())
        .bind::<Text, _>(payload["createdAt"].as_str().unwrap())
        .execute(conn)?;
        diesel::sql_query(
            "INSERT INTO outbox (event_id, aggregate_id, event_type, routing_key, envelope)
             VALUES ($1::uuid, $2::uuid, 'OnNewOrder', 'order.OnNewOrder', $3::jsonb)",
        )
        .bind::<Text, _>(envelope["eventId"].as_str().unwrap())
        .bind::<Text, _>(envelope["aggregateId"].as_str().unwrap())
        .bind::<Text, _>(envelope.to_string())
        .execute(conn)?;
        Ok(())
    })
    .unwrap();
    payload["orderId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_rebuild_under_live_traffic_restores_corrupted_read_models_to_match_postgres() {
    let stack = Stack::start().await;
    // An order of the first release, before any of this one's: its event carries neither its
    // customer's summary nor its list positions, so only a rebuild applies it.
    let v1_order = write_like_the_first_release(&stack);
    let mut placed = Vec::new();
    for n in 0..24 {
        placed.push(
            stack
                .place(&format!("c{}@example.com", n % 5), 1 + n % 3)
                .await,
        );
    }
    let mut cancelled = Vec::new();
    for order in placed.iter().step_by(4) {
        cancelled.push(
            stack
                .command(&format!("/orders/{}/cancel", order.id), &json!({}))
                .await,
        );
    }
    // Every event must be applied before the corruption below, or a late cancellation would
    // write its order back.
    let last = placed.last().unwrap();
    stack
        .read_after(&format!("/orders/{}", last.id), &last.token)
        .await;
    for order in &cancelled {
        stack
            .read_after(&format!("/orders/{}", order.id), &order.token)
            .await;
    }
    let parked = stack
        .client
        .get(stack.services.gateway.url(&format!("/orders/{v1_order}")))
        .send()
        .await
        .unwrap();
    assert_eq!(parked.status(), 404, "a v1 event is not applied live");

    // Corrupt the active read models: lose orders, break a summary.
    let mongo = mongodb::Client::with_uri_str(&stack.services.mongodb_uri)
        .await
        .unwrap()
        .database(&stack.services.mongo_database);
    let orders = mongo.collection::<mongodb::bson::Document>("orders");
    for order in placed.iter().take(6) {
        orders.delete_one(doc! { "_id": &order.id }).await.unwrap();
    }
    // A customer's summary is in their summary documents and their orders' documents.
    for (collection, field) in [
        ("customerSummaries", "summary.placedOrderCount"),
        ("orders", "customerSummary.placedOrderCount"),
    ] {
        mongo
            .collection::<mongodb::bson::Document>(collection)
            .update_many(
                doc! { "customerEmail": "c1@example.com" },
                doc! { "$set": { field: 999_i64 } },
            )
            .await
            .unwrap();
    }
    let lost = stack
        .client
        .get(
            stack
                .services
                .gateway
                .url(&format!("/orders/{}", placed[0].id)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        lost.status(),
        404,
        "the corruption is visible before the rebuild"
    );
    let collections_before_the_rebuild = mongo.list_collection_names().await.unwrap();

    // A dry run says what the rebuild would do, and changes nothing.
    let output = stack.services.rebuild_read_models(&["--dry-run"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "dry run failed: {stdout}");
    assert_exited_cleanly(&output);
    assert!(
        stdout.starts_with("dry run: would rebuild generation 1 from the ")
            && stdout.contains("in place of generation 0; nothing was written"),
        "{stdout}"
    );
    assert_eq!(
        mongo.list_collection_names().await.unwrap().len(),
        collections_before_the_rebuild.len(),
        "the dry run created a collection"
    );

    // Keep commands coming while the rebuild runs.
    let traffic = async {
        let mut later = Vec::new();
        for n in 0..15 {
            later.push(stack.place(&format!("live{}@example.com", n % 3), 1).await);
        }
        later
    };
    let (output, later) = tokio::join!(stack.services.rebuild_read_models(&[]), traffic);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "rebuild failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("generation 1 is active"), "{stdout}");
    assert_exited_cleanly(&output);
    // The indexes only reads use are built after the replay, and none is left out.
    assert!(
        stdout.contains("index customer_spans of orders_g1 built in"),
        "{stdout}"
    );
    for collection in ["orders", "customerSummaries", "listPages"] {
        assert_eq!(
            index_names(&mongo.collection(&format!("{collection}_g1"))).await,
            index_names(&mongo.collection(collection)).await,
            "the rebuilt {collection} lack an index the service makes"
        );
    }

    assert_eq!(later.len(), 15);
    assert_read_models_match_postgres(&stack).await;
    let v1_read = stack.get_json(&format!("/orders/{v1_order}")).await;
    assert_eq!(
        v1_read["unitPrice"],
        Value::Null,
        "the rebuild applied the v1 event"
    );
    let customers: HashMap<String, Value> = stack
        .get_json("/customers?limit=500")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|customer| {
            (
                customer["email"].as_str().unwrap().to_owned(),
                customer.clone(),
            )
        })
        .collect();
    let c1 = &customers["c1@example.com"];
    assert!(c1["orderCount"].as_i64().unwrap() < 24, "{c1}");

    // A second rebuild moves on from generation 1 and drops generation 0, which nothing uses.
    let output = stack.services.rebuild_read_models(&[]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "second rebuild failed: {stdout}");
    assert!(stdout.contains("generation 2 is active"), "{stdout}");
    assert_exited_cleanly(&output);
    let collections = mongo.list_collection_names().await.unwrap();
    assert!(
        !collections.iter().any(|name| name == "orders"),
        "{collections:?}"
    );
    assert_read_models_match_postgres(&stack).await;
}
