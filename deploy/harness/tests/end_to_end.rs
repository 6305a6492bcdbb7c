//! One order's whole journey through the deployed shape of the system: the nginx gateway in
//! front of both services running as their real binaries, on real PostgreSQL, RabbitMQ and the
//! MongoDB-wire server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{Jsonb, Text};
use harness::{json_when_ok, ServiceStack, TestPublisher};
use serde_json::{json, Value};

struct Stack {
    services: ServiceStack,
    client: reqwest::Client,
}

async fn start_stack() -> Stack {
    Stack {
        services: ServiceStack::start().await,
        client: harness::http_client(),
    }
}

impl Stack {
    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.services.gateway.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.services.gateway.url(path))
            .send()
            .await
            .unwrap()
    }

    async fn get_eventually(&self, path: &str) -> Value {
        json_when_ok(
            &self.client,
            &self.services.gateway.url(path),
            Duration::from_secs(15),
        )
        .await
    }

    /// Places an order through the gateway and waits until the gateway serves it back.
    async fn place_and_read(&self, body: &Value) -> Value {
        let response = self.post("/orders", body).await;
        assert_eq!(response.status(), 202);
        let id = response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.get_eventually(&format!("/orders/{id}")).await
    }
}

fn order(email: &str, quantity: u32) -> Value {
    json!({
        "description": "Difference engine, model 2",
        "quantity": quantity,
        "firstName": "Charles",
        "lastName": "Babbage",
        "email": email,
    })
}

#[tokio::test]
async fn an_order_posted_through_the_gateway_is_read_back_through_it() {
    let stack = start_stack().await;

    let response = stack
        .post("/orders", &order("charles@example.com", 2))
        .await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(location, format!("/orders/{id}"));

    let read = stack.get_eventually(&location).await;
    assert_eq!(read["id"], id.as_str());
    assert_eq!(read["description"], "Difference engine, model 2");
    assert_eq!(read["quantity"], 2);
    assert_eq!(read["status"], "placed");
    assert_eq!(
        read["customer"],
        json!({"email": "charles@example.com", "firstName": "Charles", "lastName": "Babbage"})
    );
    assert!(read["createdAt"].as_str().is_some());

    let customer = stack.get_eventually("/customers/charles@example.com").await;
    assert_eq!(customer["orderCount"], 1);
    assert_eq!(customer["totalQuantity"], 2);

    let listed: Vec<Value> = stack.get("/orders").await.json().await.unwrap();
    assert_eq!(listed.len(), 1);
    let customers: Vec<Value> = stack.get("/customers").await.json().await.unwrap();
    assert_eq!(customers.len(), 1);
    let their_orders: Vec<Value> = stack
        .get("/customers/charles@example.com/orders")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(their_orders[0]["id"], id.as_str());
}

#[tokio::test]
async fn an_invalid_order_is_rejected_through_the_gateway_naming_the_field() {
    let stack = start_stack().await;
    let mut body = order("charles@example.com", 2);
    body["quantity"] = json!(0);

    let response = stack.post("/orders", &body).await;

    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["fields"][0]["field"], "quantity");
}

#[tokio::test]
async fn the_gateway_answers_unknown_routes_and_methods_with_json() {
    let stack = start_stack().await;
    let response = stack.get("/admin").await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "not_found"
    );

    let response = stack.post("/customers", &json!({})).await;
    assert_eq!(response.status(), 405);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "method_not_allowed"
    );

    let response = stack
        .client
        .put(stack.services.gateway.url("/orders"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn publishing_the_same_event_again_changes_nothing() {
    let stack = start_stack().await;
    let first = stack.place_and_read(&order("charles@example.com", 2)).await;
    let id = first["id"].as_str().unwrap();

    #[derive(QueryableByName)]
    struct Stored {
        #[diesel(sql_type = Jsonb)]
        envelope: Value,
    }
    let mut conn = PgConnection::establish(&stack.services.database_url).unwrap();
    let stored: Stored =
        diesel::sql_query("SELECT envelope FROM outbox WHERE aggregate_id = $1::uuid")
            .bind::<Text, _>(id)
            .get_result(&mut conn)
            .unwrap();
    let publisher = TestPublisher::connect(&stack.services.amqp_url).await;
    let body = serde_json::to_vec(&stored.envelope).unwrap();
    publisher.publish_as_new_order(&body).await;
    publisher.publish_as_new_order(&body).await;

    // A later order of the same customer: events of one customer are applied in queue order,
    // so once it is readable the duplicates before it have been consumed.
    let later = stack.place_and_read(&order("charles@example.com", 5)).await;

    let customer = stack.get_eventually("/customers/charles@example.com").await;
    assert_eq!(customer["orderCount"], 2);
    assert_eq!(customer["totalQuantity"], 7);
    let orders: Vec<Value> = stack
        .get("/orders?email=charles@example.com")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(orders, [later, first]);
}

#[tokio::test]
async fn one_request_id_names_the_log_lines_of_both_services() {
    let stack = start_stack().await;
    let request_id = format!("e2e-{}", uuid::Uuid::new_v4());

    let response = stack
        .client
        .post(stack.services.gateway.url("/orders"))
        .header("x-request-id", &request_id)
        .json(&order("traced@example.com", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["x-request-id"], request_id.as_str());
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    stack.get_eventually(&format!("/orders/{id}")).await;

    let messages_of = |service: &harness::ServiceProcess| -> Vec<String> {
        service
            .log_lines()
            .into_iter()
            .filter(|line| line["requestId"] == request_id.as_str())
            .map(|line| line["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    // Each line is written after the work it names (the read model's write before its
    // "applied" line), so they are waited for.
    let deadline = Instant::now() + Duration::from_secs(10);
    let missing = loop {
        let command_lines = messages_of(&stack.services.command);
        let query_lines = messages_of(&stack.services.query);
        let missing: Vec<String> = [
            ("command-service", &command_lines, "accepted order"),
            ("command-service", &command_lines, "POST /orders 202"),
            ("query-service", &query_lines, "applied OnNewOrder"),
        ]
        .into_iter()
        .filter(|(_, lines, prefix)| !lines.iter().any(|line| line.starts_with(prefix)))
        .map(|(service, lines, prefix)| {
            format!("{service}: no line starting {prefix:?} in {lines:?}")
        })
        .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(missing.is_empty(), "{missing:#?}");
}

#[tokio::test]
async fn the_gateway_serves_the_docs_and_both_documents_but_never_the_metrics() {
    let stack = start_stack().await;

    let page = stack.get("/docs/").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    let command = stack.get_eventually("/openapi/command.json").await;
    assert!(command["paths"]["/orders"]["post"].is_object());
    let query = stack.get_eventually("/openapi/query.json").await;
    assert!(query["paths"]["/orders"]["get"].is_object());
    assert_eq!(stack.get("/metrics").await.status(), 404);
    assert_eq!(stack.get("/admin/events").await.status(), 404);

    let metrics = format!("http://127.0.0.1:{}", stack.services.command.metrics_port());
    let page = harness::scrape_metrics(&stack.client, &metrics).await;
    assert!(page.contains("outbox_pending_events"), "{page}");
}

#[tokio::test]
async fn each_service_holds_only_its_own_rabbitmq_permissions() {
    let stack = start_stack().await;
    let users = &stack.services.users;

    let publisher = lapin::Connection::connect(&users.publisher_url, Default::default())
        .await
        .unwrap();
    let channel = publisher.create_channel().await.unwrap();
    let consumed = channel
        .basic_get(
            harness::PROJECTION_QUEUE.into(),
            lapin::options::BasicGetOptions::default(),
        )
        .await;
    assert!(
        consumed.is_err(),
        "the command side's user read the projection queue"
    );

    let consumer = lapin::Connection::connect(&users.consumer_url, Default::default())
        .await
        .unwrap();
    let channel = consumer.create_channel().await.unwrap();
    let published = channel
        .basic_publish(
            shared_events::ORDER_EVENTS_EXCHANGE.into(),
            "order.placed".into(),
            lapin::options::BasicPublishOptions::default(),
            b"{}",
            lapin::BasicProperties::default(),
        )
        .await;
    let refused = match published {
        Err(_) => true,
        // The refusal closes the channel; the next operation shows it.
        Ok(_) => channel
            .basic_qos(1, lapin::options::BasicQosOptions::default())
            .await
            .is_err(),
    };
    assert!(refused, "the query side's user published an event");
}

/// The names of `pid`'s threads.
fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).unwrap())
        .map(|name| name.trim_end().to_owned())
        .collect()
}

#[tokio::test]
async fn each_service_serves_requests_on_as_many_threads_as_http_workers_says() {
    // One more than the cores, so that it cannot be the default.
    let workers = std::thread::available_parallelism().map_or(1, usize::from) + 1;
    let stack = ServiceStack::start_with(&[("APP_HTTP__WORKERS", workers.to_string())]).await;
    for service in [&stack.command, &stack.query] {
        let actix_workers = thread_names(service.pid())
            .into_iter()
            .filter(|name| name.starts_with("actix-server wo"))
            .count();
        // The metrics server has one of its own.
        assert_eq!(actix_workers, workers + 1, "{}", service.address());
    }
}
