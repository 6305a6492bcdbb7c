//! Why the local stack runs secantusd-rs with `--sync-on-commit`: without it, writes the server
//! acknowledged are gone after a SIGKILL and a restart; with it, none are. The projection
//! acknowledges a delivery to RabbitMQ once the read store acknowledged its writes, so a lost
//! write would be an order missing from the read model for good.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use harness::{Durability, PrivateReadStore, ReadStoreKind};
use mongodb::bson::{doc, Document};
use mongodb::Client;

/// The projection's batch size, and enough batches for the log to hold several at the kill.
const BATCH: i64 = 64;
const BATCHES: i64 = 100;
/// Rounds in which the server's default must lose something at least once: the writes it holds
/// unsynced at the kill depend on when its log thread last wrote.
const ROUNDS: usize = 3;

/// Inserts `BATCHES` acknowledged batches into a fresh secantusd-rs, SIGKILLs it right after the
/// last acknowledgement, starts it again on the same data and counts what is missing.
async fn acknowledged_writes_lost_to_a_sigkill(durability: Durability) -> i64 {
    let mut store = PrivateReadStore::start_kind(ReadStoreKind::Secantusd, durability).await;
    let orders = |client: &Client| {
        client
            .database("durability")
            .collection::<Document>("orders")
    };
    let client = Client::with_uri_str(store.uri()).await.unwrap();
    for batch in 0..BATCHES {
        orders(&client)
            .insert_many((batch * BATCH..(batch + 1) * BATCH).map(|id| doc! { "_id": id }))
            .await
            .expect("an acknowledged batch");
    }
    store.kill().await;
    store.start_again().await;
    let client = Client::with_uri_str(store.uri()).await.unwrap();
    let kept = orders(&client).count_documents(doc! {}).await.unwrap();
    BATCH * BATCHES - i64::try_from(kept).unwrap()
}

#[tokio::test]
async fn secantusd_keeps_every_acknowledged_write_through_a_sigkill_only_with_sync_on_commit() {
    let mut lost_by_default = Vec::new();
    for _ in 0..ROUNDS {
        let lost = acknowledged_writes_lost_to_a_sigkill(Durability::ServerDefault).await;
        lost_by_default.push(lost);
        if lost > 0 {
            break;
        }
    }
    println!("acknowledged writes lost without --sync-on-commit, by round: {lost_by_default:?}");
    assert!(
        lost_by_default.iter().any(|lost| *lost > 0),
        "the server's default lost nothing in {ROUNDS} rounds: is --sync-on-commit still needed?"
    );
    for _ in 0..ROUNDS {
        assert_eq!(
            acknowledged_writes_lost_to_a_sigkill(Durability::SyncOnCommit).await,
            0,
            "acknowledged writes lost with --sync-on-commit"
        );
    }
}
