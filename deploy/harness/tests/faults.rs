//! Nothing lost, nothing doubled: the whole system under a steady stream of orders while real
//! processes are broken, one scenario at a time. The stack runs on servers owned by this test
//! (its own PostgreSQL cluster, RabbitMQ node and read store, of the kind the run tests), so
//! stopping them disturbs no other test. Each scenario is a test with a stack of its own; after
//! the fault it waits for quiet and checks every accepted order against the read model and
//! PostgreSQL, then writes its line of the report, which `deploy/test` gathers into
//! `target/fault-suite.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb, Text};
use harness::{
    eventually, metric, scrape_metrics, take_message, trace_spans, tracing_environment, Gateway,
    PrivatePostgres, PrivateRabbit, PrivateRabbitCluster, PrivateReadStore, ReadStoreKind,
    ServiceProcess, TestPublisher, PROJECTION_QUEUE,
};
use serde_json::{json, Value};

// A steady stream the read side sustains on either read store in a debug build (about 25
// orders/s), so that after each fault the backlog drains and the checks measure recovery, not
// saturation.
const CUSTOMERS_PER_SCENARIO: usize = 8;
const WORKERS: usize = 2;
const PACE: Duration = Duration::from_millis(70);
const QUIET_DEADLINE: Duration = Duration::from_secs(60);
const MAX_ATTEMPTS: u32 = 2;

/// The RabbitMQ a stack's services use.
enum Broker {
    Node(PrivateRabbit),
    /// Three clustered nodes, all named in each service's `AMQP_URL`.
    Cluster(PrivateRabbitCluster),
}

/// The services notice a silent node within 4 s and give up on one that does not answer a
/// connection within 2 s (a cluster scenario pauses nodes).
const CLUSTER_URL_OPTIONS: &str = "heartbeat=2&connection_timeout=2000";

impl Broker {
    /// The services' `AMQP_URL`: the node, or every node of the cluster.
    fn amqp_url(&self) -> String {
        match self {
            Self::Node(node) => node.amqp_url(),
            Self::Cluster(cluster) => cluster.amqp_urls(0, CLUSTER_URL_OPTIONS),
        }
    }
}

struct Stack {
    postgres: PrivatePostgres,
    /// A synchronous streaming standby, for the failover scenario.
    standby: Option<PrivatePostgres>,
    /// The command side's database URL: the primary, or both servers with a standby.
    database_url: String,
    broker: Broker,
    read_store: PrivateReadStore,
    command: ServiceProcess,
    query: ServiceProcess,
    /// The query side's environment, for replicas beside `query`.
    query_env: Vec<(&'static str, String)>,
    gateway: Gateway,
    client: reqwest::Client,
}

impl Stack {
    async fn start() -> Self {
        Self::start_on(false, Broker::Node(PrivateRabbit::start().await)).await
    }

    /// A stack whose PostgreSQL has a synchronous standby, which the command side also names
    /// in its URL (`target_session_attrs=read-write`: it writes wherever the primary is).
    async fn start_with_standby() -> Self {
        Self::start_on(true, Broker::Node(PrivateRabbit::start().await)).await
    }

    /// A stack on a three-node RabbitMQ cluster.
    async fn start_on_cluster() -> Self {
        Self::start_on(false, Broker::Cluster(PrivateRabbitCluster::start().await)).await
    }

    async fn start_on(with_standby: bool, broker: Broker) -> Self {
        let postgres = tokio::task::spawn_blocking(PrivatePostgres::start)
            .await
            .unwrap();
        let standby = if with_standby {
            Some(postgres.start_synchronous_standby().await)
        } else {
            None
        };
        let database_url = match &standby {
            Some(standby) => PrivatePostgres::url_of_pair(&postgres, standby),
            None => postgres.url(),
        };
        let read_store = PrivateReadStore::start().await;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let query_env = vec![
            ("MONGODB_URI", read_store.uri()),
            ("AMQP_URL", broker.amqp_url()),
            ("APP_MONGODB__TIMEOUT_MS", "1000".into()),
            // Deadlines short enough for the frozen read store's scenarios.
            ("APP_MONGODB__READ_TIMEOUT_MS", "1000".into()),
            ("APP_MONGODB__BATCH_TIMEOUT_MS", "2000".into()),
            ("APP_BROKER__MAX_ATTEMPTS", MAX_ATTEMPTS.to_string()),
            ("APP_BROKER__RETRY_DELAY_MS", "100".into()),
        ]
        .into_iter()
        .chain(tracing_environment("1"))
        .collect::<Vec<_>>();
        let query = ServiceProcess::start("query-service", &query_env).await;
        // The projection's queue must exist before the first event is published.
        query.wait_until_ready("rabbitmq").await;
        let command = ServiceProcess::start(
            "command-service",
            &[
                ("DATABASE_URL", database_url.clone()),
                ("AMQP_URL", broker.amqp_url()),
                ("APP_DATABASE__ACQUIRE_TIMEOUT_MS", "1000".into()),
                ("APP_OUTBOX__POLL_INTERVAL_MS", "100".into()),
                ("APP_OUTBOX__RETRY_DELAY_MS", "200".into()),
                // A killed relay's claims pass to its successor after this lease.
                ("APP_OUTBOX__CLAIM_LEASE_MS", "2000".into()),
                ("APP_OUTBOX__CONFIRM_TIMEOUT_MS", "1500".into()),
            ]
            .into_iter()
            .chain(tracing_environment("1"))
            .collect::<Vec<_>>(),
        )
        .await;
        let gateway = Gateway::start(&command.address(), &query.address()).await;
        Self {
            postgres,
            standby,
            database_url,
            broker,
            read_store,
            command,
            query,
            query_env,
            gateway,
            client,
        }
    }

    /// Another query-service on the same queue and read store.
    async fn start_query_replica(&self) -> ServiceProcess {
        let replica = ServiceProcess::start("query-service", &self.query_env).await;
        replica.wait_until_ready("rabbitmq").await;
        replica
    }

    /// The stack's own RabbitMQ node (not on a cluster stack).
    fn rabbit(&self) -> &PrivateRabbit {
        match &self.broker {
            Broker::Node(node) => node,
            Broker::Cluster(_) => panic!("a single-node scenario on a cluster stack"),
        }
    }

    fn cluster(&self) -> &PrivateRabbitCluster {
        match &self.broker {
            Broker::Cluster(cluster) => cluster,
            Broker::Node(_) => panic!("a cluster scenario on a single-node stack"),
        }
    }

    fn database(&self) -> PgConnection {
        PgConnection::establish(&self.database_url).unwrap()
    }

    async fn get_json(&self, path: &str) -> Option<Value> {
        let response = self.client.get(self.gateway.url(path)).send().await.ok()?;
        if response.status() != 200 {
            return None;
        }
        response.json().await.ok()
    }
}

/// What the load generator saw for one scenario.
#[derive(Default)]
struct Outcomes {
    /// order id → (email, quantity), for every 202.
    accepted: HashMap<String, (String, i64)>,
    /// order id → the id of the trace its 202 answered (`traceparent`).
    traces: HashMap<String, String>,
    /// Descriptions of orders a service refused with an error status: none may ever become
    /// visible.
    refused: HashSet<String>,
    /// Requests whose outcome the client cannot know: no answer at all, the gateway's
    /// `upstream_unavailable` (the service went away mid-request, perhaps after its commit) or
    /// the service's `outcome_unknown` (PostgreSQL went away during the commit). They may or
    /// may not exist; the comparison with PostgreSQL covers them.
    unanswered: usize,
    statuses: BTreeMap<u16, usize>,
    sent: usize,
}

struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    outcomes: Arc<Mutex<Outcomes>>,
}

impl Load {
    /// Starts `WORKERS` clients posting orders through the gateway for the customers of
    /// `scenario`, each pausing `PACE` between requests.
    fn start(stack: &Stack, scenario: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let counter = Arc::new(AtomicUsize::new(0));
        let workers = (0..WORKERS)
            .map(|_| {
                let (stop, outcomes, counter) = (stop.clone(), outcomes.clone(), counter.clone());
                let (client, url) = (stack.client.clone(), stack.gateway.url("/orders"));
                let scenario = scenario.to_owned();
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        let email = customer_email(&scenario, n % CUSTOMERS_PER_SCENARIO);
                        let quantity = 1 + (n % 5) as i64;
                        let description = format!("{scenario} #{n}");
                        let answer = client
                            .post(&url)
                            .json(&json!({
                                "description": description,
                                "quantity": quantity,
                                "firstName": "Load",
                                "lastName": "Generator",
                                "email": email,
                            }))
                            .send()
                            .await;
                        let answer = match answer {
                            Ok(response) => {
                                let status = response.status().as_u16();
                                let trace_id = response
                                    .headers()
                                    .get("traceparent")
                                    .and_then(|value| value.to_str().ok())
                                    .and_then(|value| value.split('-').nth(1))
                                    .map(str::to_owned);
                                let body = response.json::<Value>().await.unwrap_or_default();
                                Some((status, body, trace_id))
                            }
                            Err(_) => None,
                        };
                        {
                            let mut record = outcomes.lock().unwrap();
                            record.sent += 1;
                            match answer {
                                Some((202, body, trace_id)) => {
                                    *record.statuses.entry(202).or_default() += 1;
                                    let id = body["id"].as_str().unwrap_or_default().to_owned();
                                    if let Some(trace_id) = trace_id {
                                        record.traces.insert(id.clone(), trace_id);
                                    }
                                    record.accepted.insert(id, (email, quantity));
                                }
                                // The gateway lost the service, or the service its
                                // database, mid-commit: as unknown an outcome as no answer.
                                Some((status, body, _))
                                    if body["error"] == "upstream_unavailable"
                                        || body["error"] == "outcome_unknown" =>
                                {
                                    *record.statuses.entry(status).or_default() += 1;
                                    record.unanswered += 1;
                                }
                                Some((status, _, _)) => {
                                    *record.statuses.entry(status).or_default() += 1;
                                    record.refused.insert(description);
                                }
                                None => record.unanswered += 1,
                            }
                        }
                        tokio::time::sleep(PACE).await;
                    }
                })
            })
            .collect();
        Self {
            stop,
            workers,
            outcomes,
        }
    }
}

impl Load {
    async fn finish(self) -> Outcomes {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            worker.await.unwrap();
        }
        Arc::try_unwrap(self.outcomes)
            .ok()
            .expect("workers finished")
            .into_inner()
            .unwrap()
    }
}

fn customer_email(scenario: &str, n: usize) -> String {
    format!("{scenario}-c{n}@faults.example")
}

/// One line of the report.
struct Row {
    scenario: String,
    sent: usize,
    accepted: usize,
    refused: usize,
    unanswered: usize,
    visible: usize,
    duplicates: i64,
    lost: usize,
    recovery: Duration,
    note: String,
    /// order id → trace id, for every accepted order whose answer named its trace.
    traces: HashMap<String, String>,
}

impl Row {
    /// A scenario that publishes messages itself rather than posting orders under load.
    fn injected(scenario: &str, sent: usize, recovery: Duration, note: String) -> Self {
        Self {
            scenario: scenario.to_owned(),
            sent,
            accepted: 0,
            refused: 0,
            unanswered: 0,
            visible: 0,
            duplicates: 0,
            lost: 0,
            recovery,
            note,
            traces: HashMap::new(),
        }
    }
}

#[derive(QueryableByName)]
struct CustomerTotals {
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = BigInt)]
    orders: i64,
    #[diesel(sql_type = BigInt)]
    quantity: i64,
}

/// What the read side shows for one scenario's customers.
struct ReadSide {
    visible: HashMap<String, Value>,
    summaries: HashMap<String, (i64, i64)>,
}

async fn read_side(stack: &Stack, scenario: &str) -> ReadSide {
    let mut visible = HashMap::new();
    let mut summaries = HashMap::new();
    for n in 0..CUSTOMERS_PER_SCENARIO {
        let email = customer_email(scenario, n);
        if let Some(orders) = customer_orders(stack, &email).await {
            for order in orders {
                visible.insert(order["id"].as_str().unwrap().to_owned(), order);
            }
        }
        if let Some(customer) = stack.get_json(&format!("/customers/{email}")).await {
            summaries.insert(
                email,
                (
                    customer["orderCount"].as_i64().unwrap(),
                    customer["totalQuantity"].as_i64().unwrap(),
                ),
            );
        }
    }
    ReadSide { visible, summaries }
}

/// Every order the query side lists for `email`, page after page (a scenario that runs for
/// minutes gives a customer more than one page of 500); `None` if a page does not answer.
async fn customer_orders(stack: &Stack, email: &str) -> Option<Vec<Value>> {
    let path = format!("/orders?limit=500&email={email}");
    harness::listing_pages(&stack.client, &stack.gateway.url(""), &path)
        .await
        .ok()
        .map(|pages| pages.concat())
}

fn write_side(stack: &Stack, scenario: &str) -> HashMap<String, (i64, i64)> {
    diesel::sql_query(
        "SELECT customer_email AS email, count(*) AS orders, sum(quantity)::bigint AS quantity
           FROM orders WHERE customer_email LIKE $1 GROUP BY customer_email",
    )
    .bind::<Text, _>(format!("{scenario}-%"))
    .load::<CustomerTotals>(&mut stack.database())
    .unwrap()
    .into_iter()
    .map(|row| (row.email, (row.orders, row.quantity)))
    .collect()
}

/// Waits until every accepted order is visible and the read side agrees with PostgreSQL,
/// then checks that nothing refused became visible and nothing was counted twice.
async fn settle(
    stack: &Stack,
    scenario: &str,
    outcomes: Outcomes,
    healed: Instant,
    note: String,
) -> Row {
    let started = Instant::now();
    let (read, written) = loop {
        let read = read_side(stack, scenario).await;
        let written = write_side(stack, scenario);
        let complete = outcomes
            .accepted
            .keys()
            .all(|id| read.visible.contains_key(id));
        // An order committed without an answer may be applied between the listing and the
        // customer reads: settled means the listings and the counts agree with PostgreSQL.
        let committed: i64 = written.values().map(|(orders, _)| orders).sum();
        let consistent = read.summaries == written && read.visible.len() as i64 == committed;
        if (complete && consistent) || started.elapsed() > QUIET_DEADLINE {
            break (read, written);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let recovery = healed.elapsed();
    let lost = outcomes
        .accepted
        .keys()
        .filter(|id| !read.visible.contains_key(*id))
        .count();
    let ghosts: Vec<&str> = read
        .visible
        .values()
        .filter_map(|order| order["description"].as_str())
        .filter(|description| outcomes.refused.contains(*description))
        .collect();
    let counted: i64 = read.summaries.values().map(|(orders, _)| orders).sum();
    let duplicates = counted - read.visible.len() as i64;
    let row = Row {
        scenario: scenario.to_owned(),
        sent: outcomes.sent,
        accepted: outcomes.accepted.len(),
        refused: outcomes.refused.len(),
        unanswered: outcomes.unanswered,
        visible: read.visible.len(),
        duplicates,
        lost,
        recovery,
        note,
        traces: outcomes.traces.clone(),
    };
    assert_eq!(
        lost,
        0,
        "{scenario}: accepted orders never became visible; {}",
        diagnosis(stack).await
    );
    assert_eq!(duplicates, 0, "{scenario}: orders counted twice");
    assert!(
        ghosts.is_empty(),
        "{scenario}: refused orders are visible: {ghosts:?}"
    );
    assert_eq!(
        read.summaries, written,
        "{scenario}: customer counts and totals differ from PostgreSQL"
    );
    let committed: i64 = written.values().map(|(orders, _)| orders).sum();
    assert_eq!(
        committed,
        read.visible.len() as i64,
        "{scenario}: read model ≠ write model"
    );
    assert!(
        !outcomes.statuses.contains_key(&500),
        "{scenario}: a 500 was answered: {:?}",
        outcomes.statuses
    );
    assert!(
        !outcomes.accepted.is_empty(),
        "{scenario}: no order was accepted at all"
    );
    row
}

fn outbox_pending(stack: &Stack) -> i64 {
    diesel::sql_query("SELECT count(*) AS count FROM outbox WHERE published_at IS NULL")
        .get_result::<Count>(&mut stack.database())
        .unwrap()
        .count
}

/// Where events are stuck: the outbox backlog and what each service says of its dependencies.
async fn diagnosis(stack: &Stack) -> String {
    let mut text = format!("outbox pending: {}", outbox_pending(stack));
    for service in [&stack.command, &stack.query] {
        let url = format!("http://{}/health/ready", service.address());
        let body = match stack.client.get(&url).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(error) => error.to_string(),
        };
        let _ = write!(text, "; {url}: {body}");
    }
    text
}

/// Runs load, breaks something with `fault` part-way, and settles.
macro_rules! scenario {
    ($stack:expr, $name:expr, |$s:ident| $fault:block) => {{
        let load = Load::start(&$stack, $name);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let note: String = {
            let $s = &mut $stack;
            $fault
        };
        let healed = Instant::now();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let outcomes = load.finish().await;
        settle(&$stack, $name, outcomes, healed, note).await
    }};
}

/// A GET during an outage: 503 with a JSON body and Retry-After, within a bound.
async fn unavailable_read(stack: &Stack) -> String {
    let started = Instant::now();
    let response = stack
        .client
        .get(stack.gateway.url("/orders"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key("retry-after");
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 503, "a read while MongoDB is down: {body}");
    assert!(retry_after, "503 without Retry-After");
    let elapsed = started.elapsed();
    assert_not_ready(stack, &stack.query, "mongodb").await;
    format!(
        "GET → 503 + Retry-After in {} ms; readiness names mongodb",
        elapsed.as_millis()
    )
}

/// A sample of the query service's metrics (0 before it exists).
async fn query_metric(stack: &Stack, name: &str) -> f64 {
    let address = format!("http://127.0.0.1:{}", stack.query.metrics_port());
    metric(&scrape_metrics(&stack.client, &address).await, name).unwrap_or(0.0)
}

/// Batches the projection gave up at the read store's deadline, to try again.
async fn batches_abandoned(stack: &Stack) -> f64 {
    query_metric(stack, r#"events_retried_total{reason="store_unavailable"}"#).await
}

/// Freezes the read store (SIGSTOP) and waits until the projection gives a batch up at its
/// deadline: whichever batch was in flight at the pause, or the next one. Its writes were sent
/// and went unanswered.
async fn freeze_past_a_batch_deadline(stack: &Stack) {
    let abandoned = batches_abandoned(stack).await;
    stack.read_store.pause();
    eventually(
        "a batch abandoned while the read store is frozen",
        Duration::from_secs(10),
        || async { (batches_abandoned(stack).await > abandoned).then_some(()) },
    )
    .await;
}

/// Readiness answers 503 and names the dependency that is down.
async fn assert_not_ready(stack: &Stack, service: &ServiceProcess, dependency: &str) {
    let response = stack
        .client
        .get(format!("http://{}/health/ready", service.address()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["checks"][dependency], "down", "{body}");
}

async fn unavailable_write(stack: &Stack) -> String {
    let started = Instant::now();
    let response = stack
        .client
        .post(stack.gateway.url("/orders"))
        .json(
            &json!({"description": "during outage", "quantity": 1, "firstName": "A",
                      "lastName": "B", "email": "outage@faults.example"}),
        )
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key("retry-after");
    assert_eq!(status, 503, "a write while PostgreSQL is down");
    assert!(retry_after, "503 without Retry-After");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "503 took {elapsed:?}");
    assert_not_ready(stack, &stack.command, "postgres").await;
    format!(
        "POST → 503 + Retry-After in {} ms; readiness names postgres",
        elapsed.as_millis()
    )
}

/// Waits until a POST for one of `scenario`'s customers is accepted: the command side writes
/// again.
async fn write_accepted(stack: &Stack, scenario: &str) {
    let email = customer_email(scenario, 0);
    eventually("a POST accepted", Duration::from_secs(30), || {
        let request = stack
            .client
            .post(stack.gateway.url("/orders"))
            .json(
                &json!({"description": format!("{scenario} after the fault"), "quantity": 1,
                          "firstName": "Load", "lastName": "Generator", "email": email}),
            )
            .send();
        async move { (request.await.ok()?.status() == 202).then_some(()) }
    })
    .await;
}

/// Posts an order for one of `scenario`'s customers and waits until it is readable: the whole
/// path works again. How long that took.
async fn order_served(stack: &Stack, scenario: &str) -> Duration {
    let started = Instant::now();
    let email = customer_email(scenario, 0);
    let id = eventually("a POST accepted", QUIET_DEADLINE, || {
        let request = stack
            .client
            .post(stack.gateway.url("/orders"))
            .json(
                &json!({"description": format!("{scenario} during the fault"), "quantity": 1,
                          "firstName": "Load", "lastName": "Generator", "email": email}),
            )
            .send();
        async move {
            let response = request.await.ok().filter(|r| r.status() == 202)?;
            let body: Value = response.json().await.ok()?;
            body["id"].as_str().map(str::to_owned)
        }
    })
    .await;
    let path = format!("/orders/{id}");
    eventually("the order to be readable", QUIET_DEADLINE, || {
        stack.get_json(&path)
    })
    .await;
    started.elapsed()
}

/// The projection's quorum queues: on a whole cluster, each has a member on every node.
fn projection_queues() -> [String; 3] {
    [
        PROJECTION_QUEUE.to_owned(),
        format!("{PROJECTION_QUEUE}.retry-quorum"),
        format!("{PROJECTION_QUEUE}.dead-letter"),
    ]
}

/// The node leading the projection queue and the members online.
async fn projection_leader(cluster: &PrivateRabbitCluster) -> (String, Vec<String>) {
    eventually("the projection queue's leader", QUIET_DEADLINE, || {
        cluster.queue_leader(PROJECTION_QUEUE)
    })
    .await
}

/// Waits until a node other than `old` leads the projection queue; how long that took.
async fn new_leader(cluster: &PrivateRabbitCluster, old: &str, since: Instant) -> Duration {
    eventually(
        "another node to lead the projection queue",
        QUIET_DEADLINE,
        || async {
            let (leader, _) = cluster.queue_leader(PROJECTION_QUEUE).await?;
            (leader != old).then_some(())
        },
    )
    .await;
    since.elapsed()
}

/// Waits until the cluster is whole again (every node running, no partition, every
/// projection queue on three nodes); how long that took.
async fn cluster_whole(cluster: &PrivateRabbitCluster, since: Instant) -> f64 {
    let queues = projection_queues();
    let queues: Vec<&str> = queues.iter().map(String::as_str).collect();
    cluster.wait_until_whole(&queues).await;
    since.elapsed().as_secs_f64()
}

/// After a partition healed: waits for autoheal; if the cluster is not whole after 90 s,
/// recovers as RabbitMQ's guide tells an operator to (see
/// [`PrivateRabbitCluster::restart_unhealed_nodes`]) and waits again. How it healed, and after
/// how long.
async fn cluster_healed(cluster: &PrivateRabbitCluster, since: Instant) -> String {
    let queues = projection_queues();
    let queues: Vec<&str> = queues.iter().map(String::as_str).collect();
    match cluster.whole_within(&queues, Duration::from_secs(90)).await {
        Ok(()) => format!(
            "autoheal, whole after {:.0} s",
            since.elapsed().as_secs_f64()
        ),
        Err(seen) => {
            let restarted = cluster.restart_unhealed_nodes().await;
            assert!(
                !restarted.is_empty(),
                "not whole, nothing to restart: {seen}"
            );
            cluster.wait_until_whole(&queues).await;
            format!(
                "not whole after 90 s ({seen}); {}; whole after {:.0} s",
                restarted.join(", "),
                since.elapsed().as_secs_f64()
            )
        }
    }
}

async fn inject_duplicates_out_of_order(stack: &Stack) -> Row {
    #[derive(QueryableByName)]
    struct Stored {
        #[diesel(sql_type = Jsonb)]
        envelope: Value,
    }
    let stored: Vec<Stored> =
        diesel::sql_query("SELECT envelope FROM outbox ORDER BY id DESC LIMIT 25")
            .load(&mut stack.database())
            .unwrap();
    let publisher = TestPublisher::connect(&stack.rabbit().amqp_url()).await;
    let healed = Instant::now();
    for event in &stored {
        let body = serde_json::to_vec(&event.envelope).unwrap();
        publisher.publish_as_new_order(&body).await;
        publisher.publish_as_new_order(&body).await;
    }
    // A fresh order for each customer concerned: a customer's events are applied in queue
    // order, so once these are visible the injected copies before them were consumed.
    let emails: HashSet<String> = stored
        .iter()
        .filter_map(|event| event.envelope["payload"]["customer"]["email"].as_str())
        .map(str::to_owned)
        .collect();
    for email in &emails {
        let response = stack
            .client
            .post(stack.gateway.url("/orders"))
            .json(
                &json!({"description": "after duplicates", "quantity": 1, "firstName": "Load",
                          "lastName": "Generator", "email": email}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let id = response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/orders/{id}");
        eventually("the follow-up order to be readable", QUIET_DEADLINE, || {
            stack.get_json(&path)
        })
        .await;
    }
    let recovery = healed.elapsed();
    // Every order must still be counted once.
    let all: i64 = diesel::sql_query("SELECT count(*) AS count FROM orders")
        .get_result::<Count>(&mut stack.database())
        .unwrap()
        .count;
    let customers: Vec<Value> =
        serde_json::from_value(stack.get_json("/customers?limit=500").await.unwrap()).unwrap();
    let counted: i64 = customers
        .iter()
        .map(|c| c["orderCount"].as_i64().unwrap())
        .sum();
    assert_eq!(
        counted, all,
        "after duplicates: summaries count {counted}, PostgreSQL has {all}"
    );
    Row {
        accepted: emails.len(),
        visible: usize::try_from(counted).unwrap(),
        ..Row::injected(
            "duplicates + reordering",
            stored.len() * 2,
            recovery,
            format!(
                "{} events published twice, newest first; all {all} orders counted once",
                stored.len()
            ),
        )
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

async fn inject_poison(stack: &Stack) -> Row {
    let started = Instant::now();
    let golden: Value =
        serde_json::from_str(shared_events::fixtures::ON_NEW_ORDER_V1_JSON).unwrap();
    let variant = |field: &str, value: Value| {
        let mut event = golden.clone();
        if field == "quantity" {
            event["payload"][field] = value;
        } else {
            event[field] = value;
        }
        serde_json::to_vec(&event).unwrap()
    };
    let poison = [
        (b"{\"truncated\": ".to_vec(), "malformed-envelope"),
        (
            variant("eventType", json!("OnOrderTeleported")),
            "unknown-event-type",
        ),
        (
            variant("schemaVersion", json!(7)),
            "unsupported-schema-version",
        ),
        (variant("quantity", json!(-1)), "invalid-payload"),
    ];
    let publisher = TestPublisher::connect(&stack.rabbit().amqp_url()).await;
    for (body, _) in &poison {
        publisher.publish_as_new_order(body).await;
    }
    let dead_letters = format!("{}.dead-letter", harness::PROJECTION_QUEUE);
    let amqp_url = stack.rabbit().amqp_url();
    let mut parked = Vec::new();
    while parked.len() < poison.len() {
        parked.push(
            eventually(
                "a poison message in the dead-letter queue",
                QUIET_DEADLINE,
                || take_message(&amqp_url, &dead_letters),
            )
            .await,
        );
    }
    for (body, reason) in &poison {
        let (_, properties) = parked
            .iter()
            .find(|(parked, _)| parked == body)
            .unwrap_or_else(|| panic!("{reason} was not dead-lettered"));
        let headers = properties.headers().as_ref().unwrap().inner();
        assert_eq!(
            headers.get("x-error-reason").map(|v| format!("{v:?}")),
            Some(format!(
                "{:?}",
                lapin::types::AMQPValue::LongString((*reason).into())
            ))
        );
        assert_eq!(
            headers.get("x-attempts").map(|v| format!("{v:?}")),
            Some(format!(
                "{:?}",
                lapin::types::AMQPValue::LongLongInt(MAX_ATTEMPTS.into())
            ))
        );
    }
    Row::injected(
        "poison messages",
        poison.len(),
        started.elapsed(),
        format!(
            "all {} kinds parked after {MAX_ATTEMPTS} attempts with x-error-reason",
            poison.len()
        ),
    )
}

/// SIGTERM under load: the service must drain and exit 0 within 15 s; then it is restarted.
async fn terminate_and_restart(service: &mut ServiceProcess, name: &str) -> String {
    let status = service.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "{name} exited with {status} on SIGTERM");
    service.start_again().await;
    format!("{status} after draining")
}

/// The report's columns, which [`record`] fills.
const REPORT_HEADER: &str = "| scenario | sent | accepted | refused | unanswered | visible | duplicates | lost | recovery | note |\n\
                             | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";

/// The scenarios in the order of the report: each test writes its line to a file named after
/// its position (and the header to `header.md`), and `deploy/test` puts them together in
/// `target/fault-suite.md`.
const REPORT_ORDER: [&str; 17] = [
    "baseline",
    "rabbitmq-stop-app",
    "rabbitmq-restart",
    "rabbitmq-cluster-leader-kill",
    "rabbitmq-cluster-follower-kill",
    "rabbitmq-cluster-partition",
    "query-service-sigkill",
    "query-replica-sigkill",
    "command-service-sigkill",
    "read-store-sigkill-mid-batch",
    "read-store-frozen",
    "postgres-restart",
    "postgres-failover",
    "command-service-sigterm",
    "query-service-sigterm",
    "duplicates + reordering",
    "poison messages",
];

fn record(row: &Row) {
    let position = REPORT_ORDER
        .iter()
        .position(|scenario| *scenario == row.scenario)
        .unwrap_or_else(|| panic!("{} is not in REPORT_ORDER", row.scenario));
    // The read store's scenarios and the replicas' run on both local stores (deploy/test's two
    // passes).
    let kind = ReadStoreKind::of_this_run().name();
    let scenario = if ["read-store", "query-replica"]
        .iter()
        .any(|prefix| row.scenario.starts_with(prefix))
    {
        format!("{} ({kind})", row.scenario)
    } else {
        row.scenario.clone()
    };
    let line = format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s | {} |\n",
        scenario,
        row.sent,
        row.accepted,
        row.refused,
        row.unanswered,
        row.visible,
        row.duplicates,
        row.lost,
        row.recovery.as_secs_f64(),
        row.note
    );
    print!("{line}");
    let directory = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fault-suite");
    std::fs::create_dir_all(&directory).unwrap();
    std::fs::write(directory.join("header.md"), REPORT_HEADER).unwrap();
    std::fs::write(directory.join(format!("{position:02}-{kind}.md")), line).unwrap();
}

// Each scenario runs on a stack of its own, so that one failure hides no other and the
// scenarios can run side by side.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline() {
    let mut stack = Stack::start().await;
    record(&scenario!(stack, "baseline", |_s| { String::new() }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_stop_app() {
    let mut stack = Stack::start().await;
    record(&scenario!(stack, "rabbitmq-stop-app", |s| {
        s.rabbit().stop_app();
        tokio::time::sleep(Duration::from_secs(2)).await;
        s.rabbit().start_app().await;
        "stop_app, 2 s, start_app".to_owned()
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_restart() {
    let mut stack = Stack::start().await;
    let mut row = scenario!(stack, "rabbitmq-restart", |s| {
        s.rabbit().restart().await;
        "whole node stopped and started".to_owned()
    });
    let (complete, accepted) = complete_traces(&stack, &row).await;
    write!(
        row.note,
        "; {complete} of {accepted} accepted orders have a complete trace"
    )
    .unwrap();
    assert!(
        complete * 100 >= accepted * 99,
        "rabbitmq-restart: {complete} of {accepted} accepted orders have a complete trace"
    );
    record(&row);
}

/// How many of the accepted orders have a complete trace in Jaeger (the request, its group
/// commit, a confirmed publish, the delivery), of how many, once the spans had time to be
/// exported.
async fn complete_traces(stack: &Stack, row: &Row) -> (usize, usize) {
    let is_complete = |spans: &[harness::RecordedSpan]| {
        let has = |service: &str, name: &str| {
            spans
                .iter()
                .any(|span| span.service == service && span.name == name && !span.failed())
        };
        has("command-service", "POST /orders")
            && has("command-service", "group commit")
            && has("command-service", "publish orders.events")
            && has("query-service", "deliver")
    };
    let mut incomplete: Vec<&String> = row.traces.values().collect();
    let deadline = Instant::now() + QUIET_DEADLINE;
    while !incomplete.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for trace_id in incomplete {
            if !is_complete(&trace_spans(&stack.client, trace_id).await) {
                still.push(trace_id);
            }
        }
        incomplete = still;
        if !incomplete.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    (row.traces.len() - incomplete.len(), row.accepted)
}

/// Three scenarios on one three-node cluster (it takes about half a minute to form), one after
/// the other on the same stack: each leaves the cluster whole for the next. The services name
/// all three nodes, the first first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_cluster_failover() {
    let mut stack = Stack::start_on_cluster().await;
    record(&scenario!(stack, "rabbitmq-cluster-leader-kill", |s| {
        let cluster = s.cluster();
        let (leader, _) = projection_leader(cluster).await;
        let node = &cluster.nodes[cluster.index_of(&leader)];
        node.kill();
        let killed = Instant::now();
        let elected = new_leader(cluster, &leader, killed).await;
        let served = order_served(s, "rabbitmq-cluster-leader-kill").await;
        node.start_again().await;
        format!(
            "SIGKILL of the projection queue's leader: new leader after {} ms, an order \
             accepted and read on the two left in {} ms; node back, whole after {:.0} s",
            elected.as_millis(),
            served.as_millis(),
            cluster_whole(cluster, killed).await
        )
    }));
    record(&scenario!(stack, "rabbitmq-cluster-follower-kill", |s| {
        let cluster = s.cluster();
        let (leader, online) = projection_leader(cluster).await;
        let follower = online
            .iter()
            .find(|member| **member != leader)
            .expect("a follower");
        let node = &cluster.nodes[cluster.index_of(follower)];
        node.kill();
        let killed = Instant::now();
        let served = order_served(s, "rabbitmq-cluster-follower-kill").await;
        node.start_again().await;
        format!(
            "SIGKILL of a follower: an order accepted and read on the two left in {} ms; \
             node back, whole after {:.0} s",
            served.as_millis(),
            cluster_whole(cluster, killed).await
        )
    }));
    record(&scenario!(stack, "rabbitmq-cluster-partition", |s| {
        let cluster = s.cluster();
        let (leader, _) = projection_leader(cluster).await;
        let node = &cluster.nodes[cluster.index_of(&leader)];
        node.pause();
        let paused = Instant::now();
        let served = order_served(s, "rabbitmq-cluster-partition").await;
        let elected = new_leader(cluster, &leader, paused).await;
        // Cut off well past the distribution tick, so that both sides saw the partition.
        tokio::time::sleep(Duration::from_secs(10).saturating_sub(paused.elapsed())).await;
        node.resume();
        format!(
            "the leader SIGSTOPped for {:.0} s (net tick 4 s): an order accepted and read on \
             the two left {} ms after the pause, new leader seen after {} ms; healed by {}",
            paused.elapsed().as_secs_f64(),
            served.as_millis(),
            elected.as_millis(),
            cluster_healed(cluster, paused).await
        )
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_service_sigkill() {
    let mut stack = Stack::start().await;
    record(&scenario!(stack, "query-service-sigkill", |s| {
        s.query.kill().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        s.query.start_again().await;
        "SIGKILL mid-stream, restarted after 1 s".to_owned()
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_three_query_replicas_sigkill() {
    let mut stack = Stack::start().await;
    let mut replicas = [
        stack.start_query_replica().await,
        stack.start_query_replica().await,
    ];
    let row = scenario!(stack, "query-replica-sigkill", |_s| {
        replicas[0].kill().await;
        "one of three competing replicas SIGKILLed mid-stream, not restarted; listings walked \
         page by page on the survivors match PostgreSQL"
            .to_owned()
    });
    for survivor in [&stack.query, &replicas[1]] {
        let base = format!("http://{}", survivor.address());
        harness::assert_listings_match_postgres(&stack.client, &base, &stack.database_url, 13)
            .await;
    }
    record(&row);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_service_sigkill() {
    let mut stack = Stack::start().await;
    record(&scenario!(stack, "command-service-sigkill", |s| {
        // Hold the broker back so that committed orders wait in the outbox, then kill the
        // service between their commit and their publish.
        s.rabbit().stop_app();
        let pending = eventually(
            "committed orders waiting in the outbox",
            Duration::from_secs(10),
            || {
                let pending = outbox_pending(s);
                async move { (pending >= 5).then_some(pending) }
            },
        )
        .await;
        s.command.kill().await;
        s.rabbit().start_app().await;
        s.command.start_again().await;
        format!("SIGKILL with {pending} committed events unpublished; restarted")
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_store_sigkill_mid_batch() {
    let mut stack = Stack::start().await;
    record(&scenario!(stack, "read-store-sigkill-mid-batch", |s| {
        // Frozen first, so that the kill finds a batch's writes sent and unanswered.
        freeze_past_a_batch_deadline(s).await;
        s.read_store.kill().await;
        let read = unavailable_read(s).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        s.read_store.start_again().await;
        format!(
            "frozen until a batch's writes went unanswered past its deadline, then SIGKILL; \
             {read}; restarted 2 s later"
        )
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_store_frozen() {
    let mut stack = Stack::start().await;
    record(&scenario!(stack, "read-store-frozen", |s| {
        freeze_past_a_batch_deadline(s).await;
        let read = unavailable_read(s).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        s.read_store.resume();
        format!("SIGSTOP for 2 s past a batch's deadline; {read}; SIGCONT")
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart() {
    let mut stack = Stack::start().await;
    record(&scenario!(stack, "postgres-restart", |s| {
        s.postgres.stop();
        let write = unavailable_write(s).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        s.postgres.start_again();
        write
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failover() {
    let mut stack = Stack::start_with_standby().await;
    record(&scenario!(stack, "postgres-failover", |s| {
        s.postgres.kill();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let standby = s.standby.as_ref().expect("a standby");
        standby.promote();
        let promoted = Instant::now();
        write_accepted(s, "postgres-failover").await;
        format!(
            "primary SIGKILLed, synchronous standby promoted after 1 s; a POST accepted {} ms later",
            promoted.elapsed().as_millis()
        )
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_service_sigterm() {
    let mut stack = Stack::start().await;
    record(&scenario!(stack, "command-service-sigterm", |s| {
        terminate_and_restart(&mut s.command, "command-service").await
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_service_sigterm() {
    let mut stack = Stack::start().await;
    record(&scenario!(stack, "query-service-sigterm", |s| {
        terminate_and_restart(&mut s.query, "query-service").await
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_and_reordering() {
    let mut stack = Stack::start().await;
    // Orders whose events can be published again.
    scenario!(stack, "orders-to-duplicate", |_s| { String::new() });
    record(&inject_duplicates_out_of_order(&stack).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages() {
    let stack = Stack::start().await;
    record(&inject_poison(&stack).await);
}
