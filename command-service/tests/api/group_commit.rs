use command_service::config::Settings;
use command_service::domain::IdempotencyKey;
use command_service::store::{OrderPlacement, PlaceOrderError, Placement, Store};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use futures::future::join_all;
use harness::{metric, scrape_metrics};
use serde_json::{json, Value};
use shared_events::{OnNewOrder, OrderEvent};

use crate::helpers::{new_order, order_body, spawn_app, spawn_app_owning, test_settings, TestApp};

/// One committer that waits up to a second for others to join a group, so that orders posted
/// together are committed together.
fn gathering(settings: &mut Settings) {
    settings.group_commit.committers = 1;
    settings.group_commit.max_wait_ms = 1000;
}

/// (groups committed, orders in them, groups split), as the metrics count them.
async fn groups(app: &TestApp) -> (f64, f64, f64) {
    let page = scrape_metrics(&app.client, &app.metrics_address).await;
    let read = |name: &str| metric(&page, name).unwrap_or_else(|| panic!("no {name}"));
    (
        read("order_group_commit_size_count"),
        read("order_group_commit_size_sum"),
        read("order_group_commit_splits_total"),
    )
}

fn store_of(app: &TestApp) -> Store {
    Store::new(&test_settings(&app.database_url, &app.amqp_url).database)
}

/// The `OnNewOrder` events in the outbox, in outbox order.
fn new_order_events(app: &TestApp) -> Vec<OnNewOrder> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        aggregate_id: String,
    }
    let ids: Vec<Row> =
        diesel::sql_query("SELECT aggregate_id::text AS aggregate_id FROM outbox ORDER BY id")
            .load(&mut app.database())
            .unwrap();
    ids.iter()
        .flat_map(|row| app.events_of(&row.aggregate_id))
        .map(|event| match event.payload {
            OrderEvent::OnNewOrder(placed) => placed,
            other => panic!("unexpected event {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn orders_posted_together_share_a_commit_and_each_event_carries_its_own_summary() {
    let app = spawn_app_owning(gathering).await;
    let bodies: Vec<Value> = (1..=8)
        .map(|quantity| {
            let mut body = order_body("ada@example.com");
            body["quantity"] = json!(quantity);
            body
        })
        .collect();

    let answers = join_all(bodies.iter().map(|body| app.post_order(body))).await;

    assert!(answers.iter().all(|answer| answer.status() == 202));
    let (committed_groups, orders, splits) = groups(&app).await;
    assert_eq!((orders, splits), (8.0, 0.0));
    assert!(committed_groups < 8.0, "no two orders shared a commit");
    let mut events = new_order_events(&app);
    assert_eq!(events.len(), 8);
    events.sort_by_key(|event| event.customer_summary.as_ref().unwrap().version);
    let mut placed_quantity = 0;
    for (version, event) in (1..).zip(&events) {
        let summary = event.customer_summary.as_ref().unwrap();
        placed_quantity += u64::from(event.order.quantity);
        assert_eq!(summary.version, version);
        assert_eq!(summary.placed_order_count, version);
        assert_eq!(summary.placed_quantity, placed_quantity);
        assert_eq!(summary.last_order_at, event.order.created_at);
    }
    assert_eq!(placed_quantity, (1..=8).sum::<u64>());
}

#[tokio::test]
async fn one_key_posted_several_times_in_one_group_places_one_order() {
    let app = spawn_app_owning(gathering).await;
    let body = order_body("ada@example.com");
    let post = || {
        app.client
            .post(format!("{}/orders", app.address))
            .header("idempotency-key", "together")
            .json(&body)
            .send()
    };

    let answers = join_all((0..4).map(|_| post())).await;

    let mut ids = Vec::new();
    let mut replayed = 0;
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status(), 202);
        replayed += usize::from(answer.headers().get("idempotent-replayed").is_some());
        ids.push(answer.json::<Value>().await.unwrap()["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(replayed, 3);
    assert_eq!(new_order_events(&app).len(), 1);
    assert_eq!(groups(&app).await.2, 0.0, "the group was split");
}

#[tokio::test]
async fn within_a_group_a_key_answers_as_it_would_in_turn() {
    let app = spawn_app().await;
    let keyed = |quantity: i64, name: &str| {
        OrderPlacement::new(
            new_order("ada@example.com", "Lovelace", quantity),
            String::new(),
            Some(IdempotencyKey::parse(name).unwrap()),
            "test".into(),
        )
    };
    let earlier = keyed(1, "earlier");
    let earlier_id = earlier.id;
    store_of(&app).place_orders(vec![earlier]).await;
    let first = keyed(2, "k");
    let first_id = first.id;

    let group = store_of(&app)
        .place_orders(vec![
            first,
            keyed(2, "k"),
            keyed(3, "k"),
            keyed(1, "earlier"),
            keyed(3, "earlier"),
        ])
        .await;

    assert!(!group.split);
    let outcomes: Vec<_> = group
        .outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(placement) => Ok(placement),
            Err(PlaceOrderError::KeyReused) => Err("key reused"),
            Err(other) => panic!("{other}"),
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            Ok(Placement::Placed(first_id)),
            Ok(Placement::Replayed(first_id)),
            Err("key reused"),
            Ok(Placement::Replayed(earlier_id)),
            Err("key reused"),
        ]
    );
    assert_eq!(new_order_events(&app).len(), 2);
}

#[tokio::test]
async fn orders_and_new_customers_take_the_next_list_positions_and_a_cancellation_carries_them() {
    let app = spawn_app().await;
    let store = store_of(&app);
    let placement = |email: &str| {
        OrderPlacement::new(
            new_order(email, "Lovelace", 1),
            String::new(),
            None,
            "test".into(),
        )
    };
    store
        .place_orders(vec![
            placement("ada@example.com"),
            placement("bob@example.com"),
        ])
        .await;
    let group = store
        .place_orders(vec![
            placement("cy@example.com"),
            placement("ada@example.com"),
            placement("ada@example.com"),
        ])
        .await;
    assert!(group.outcomes.iter().all(Result::is_ok));

    let positions: Vec<(String, u64, u64, u64)> = new_order_events(&app)
        .into_iter()
        .map(|event| {
            let positions = event.list_positions.expect("carried");
            (
                event.order.customer.email,
                positions.order,
                positions.customer,
                positions.customer_order,
            )
        })
        .collect();
    let mut by_order = positions.clone();
    by_order.sort_by_key(|(_, order, _, _)| *order);
    let orders: Vec<u64> = by_order.iter().map(|(_, order, _, _)| *order).collect();
    assert_eq!(orders, [1, 2, 3, 4, 5], "one position per order, no gap");
    let of = |email: &str| -> Vec<(u64, u64)> {
        by_order
            .iter()
            .filter(|(e, _, _, _)| e == email)
            .map(|(_, _, customer, customer_order)| (*customer, *customer_order))
            .collect()
    };
    assert_eq!(of("ada@example.com"), [(1, 1), (1, 2), (1, 3)]);
    assert_eq!(of("bob@example.com"), [(2, 1)]);
    assert_eq!(
        of("cy@example.com"),
        [(3, 1)],
        "returning customers burn no position"
    );

    let ada_first = positions
        .iter()
        .find(|(email, _, _, customer_order)| email == "ada@example.com" && *customer_order == 1)
        .unwrap();
    let id = app.place_order("ada@example.com").await;
    let response = app
        .client
        .post(format!("{}/orders/{id}/cancel", app.address))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let cancelled = app.events_of(&id).pop().unwrap();
    let OrderEvent::OrderCancelled(cancelled) = cancelled.payload else {
        panic!("not a cancellation");
    };
    assert_eq!(
        cancelled
            .list_positions
            .map(|p| (p.order, p.customer, p.customer_order)),
        Some((6, ada_first.2, 4))
    );
}

#[tokio::test]
async fn each_subject_numbers_its_own_orders_and_customers_and_one_email_is_a_customer_per_owner() {
    let app = spawn_app().await;
    let store = store_of(&app);
    let placement = |owner: &str, email: &str, last_name: &str| {
        OrderPlacement::new(
            new_order(email, last_name, 1),
            owner.to_owned(),
            None,
            "test".into(),
        )
    };
    store
        .place_orders(vec![
            placement("alice", "ada@example.com", "Lovelace"),
            placement("bob", "ada@example.com", "Byron"),
            placement("alice", "cy@example.com", "Young"),
        ])
        .await;
    let group = store
        .place_orders(vec![
            placement("bob", "zed@example.com", "Zed"),
            placement("alice", "ada@example.com", "Lovelace"),
            placement("bob", "ada@example.com", "Byron"),
            placement("", "ada@example.com", "King"),
        ])
        .await;
    assert!(group.outcomes.iter().all(Result::is_ok));

    let mut seen: Vec<(String, String, String, u64, u64, u64)> = Vec::new();
    for event in new_order_events(&app) {
        let list = event.list_positions.expect("carried");
        let owner = event.owner_positions.expect("carried");
        if event.owner.is_empty() {
            assert_eq!(
                (owner.order, owner.customer),
                (list.order, list.customer),
                "the anonymous owner's positions are the list positions"
            );
        }
        seen.push((
            event.owner,
            event.order.customer.email,
            event.order.customer.last_name,
            list.customer_order,
            owner.order,
            owner.customer,
        ));
    }
    seen.retain(|(owner, ..)| !owner.is_empty());
    seen.sort_by_key(|(owner, _, _, _, owner_order, _)| (owner.clone(), *owner_order));
    let seen: Vec<_> = seen
        .iter()
        .map(|(owner, email, name, customer_order, order, customer)| {
            (
                owner.as_str(),
                email.as_str(),
                name.as_str(),
                *customer_order,
                *order,
                *customer,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("alice", "ada@example.com", "Lovelace", 1, 1, 1),
            ("alice", "cy@example.com", "Young", 1, 2, 2),
            ("alice", "ada@example.com", "Lovelace", 2, 3, 1),
            ("bob", "ada@example.com", "Byron", 1, 1, 1),
            ("bob", "ada@example.com", "Byron", 2, 2, 1),
            ("bob", "zed@example.com", "Zed", 1, 3, 2),
        ],
        "each subject counts its orders and customers from 1, in its own order"
    );

    // Bob's order cannot rename Alice's customer, nor can Alice cancel Bob's order.
    let names: Vec<(String, String)> = diesel::sql_query(
        "SELECT owner AS a, last_name AS b FROM customers \
          WHERE email = 'ada@example.com' ORDER BY owner",
    )
    .load::<Pair>(&mut app.database())
    .unwrap()
    .into_iter()
    .map(|pair| (pair.a, pair.b))
    .collect();
    assert_eq!(
        names,
        [
            (String::new(), "King".to_owned()),
            ("alice".to_owned(), "Lovelace".to_owned()),
            ("bob".to_owned(), "Byron".to_owned()),
        ]
    );
}

#[derive(QueryableByName)]
struct Pair {
    #[diesel(sql_type = Text)]
    a: String,
    #[diesel(sql_type = Text)]
    b: String,
}

#[tokio::test]
async fn an_order_the_database_refuses_fails_alone_and_the_others_of_its_group_commit() {
    let app = spawn_app().await;
    let store = store_of(&app);
    let placement = |email: &str, last_name: &str| {
        OrderPlacement::new(
            new_order(email, last_name, 2),
            String::new(),
            None,
            "test".into(),
        )
    };
    let first = placement("ada@example.com", "Lovelace");
    let first_id = first.id;
    assert_eq!(
        store
            .place_orders(vec![first])
            .await
            .outcomes
            .remove(0)
            .unwrap(),
        Placement::Placed(first_id)
    );
    // The same order id again: its insert fails, and with it the rename and the event written
    // for it in the same statements as the others'.
    let mut clash = placement("ada@example.com", "King");
    clash.id = first_id;

    let group = store
        .place_orders(vec![
            placement("ada@example.com", "Byron"),
            clash,
            placement("grace@example.com", "Hopper"),
        ])
        .await;

    assert!(group.split);
    let outcomes = group.outcomes;
    assert!(matches!(outcomes[0], Ok(Placement::Placed(_))));
    assert!(
        matches!(&outcomes[1], Err(PlaceOrderError::Store(error)) if error.is_constraint_violation()),
        "{:?}",
        outcomes[1]
    );
    assert!(matches!(outcomes[2], Ok(Placement::Placed(_))));
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        events: i64,
        #[diesel(sql_type = Text)]
        last_name: String,
        #[diesel(sql_type = BigInt)]
        summary_version: i64,
    }
    let ada: Row = diesel::sql_query(
        "SELECT (SELECT count(*) FROM outbox) AS events, last_name, summary_version \
         FROM customers WHERE email = 'ada@example.com'",
    )
    .get_result(&mut app.database())
    .unwrap();
    assert_eq!(ada.events, 3);
    assert_eq!(ada.last_name, "Byron");
    assert_eq!(ada.summary_version, 2);
}

#[tokio::test]
async fn a_post_refused_by_a_constraint_gets_a_500_and_the_others_posted_with_it_are_accepted() {
    let app = spawn_app_owning(gathering).await;
    diesel::sql_query(
        "ALTER TABLE orders ADD CONSTRAINT test_no_poison CHECK (description <> 'poison')",
    )
    .execute(&mut app.database())
    .unwrap();
    let mut bodies: Vec<Value> = (0..5)
        .map(|n| order_body(&format!("c{n}@example.com")))
        .collect();
    bodies[2]["description"] = json!("poison");

    let answers = join_all(bodies.iter().map(|body| app.post_order(body))).await;

    let statuses: Vec<u16> = answers.iter().map(|a| a.status().as_u16()).collect();
    assert_eq!(statuses, [202, 202, 500, 202, 202]);
    assert_eq!(new_order_events(&app).len(), 4);
}

#[tokio::test]
async fn with_group_commit_off_every_order_commits_alone() {
    let app = spawn_app_owning(|settings| settings.group_commit.enabled = false).await;

    let bodies: Vec<Value> = (0..4)
        .map(|n| order_body(&format!("c{n}@example.com")))
        .collect();

    let answers = join_all(bodies.iter().map(|body| app.post_order(body))).await;

    assert!(answers.iter().all(|answer| answer.status() == 202));
    assert_eq!(groups(&app).await, (0.0, 0.0, 0.0));
    assert_eq!(new_order_events(&app).len(), 4);
}
