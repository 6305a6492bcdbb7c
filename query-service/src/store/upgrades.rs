//! Upgrades of read models written by earlier releases. Each finished upgrade is recorded in
//! `readModelUpgrades`, one document per collection and upgrade, so that later starts skip
//! the scan that looks for documents still to upgrade (on FerretDB that scan takes seconds on
//! a large read model, and email filters are slow until it ends).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::Collection;

use super::{written_unless_duplicate, ReadModels, ReadStore, StoreError};

const UPGRADES_COLLECTION: &str = "readModelUpgrades";
const BACKFILL_REPORT_EVERY: Duration = Duration::from_secs(5);

impl ReadStore {
    fn upgrades(&self) -> Collection<Document> {
        self.database.collection(UPGRADES_COLLECTION)
    }

    /// Whether every order of this generation is recorded as having `customerEmail`; if so,
    /// email filters use it from now on.
    pub async fn customer_email_recorded(&self) -> Result<bool, StoreError> {
        let recorded = self
            .upgrades()
            .find_one(doc! { "_id": customer_email_record_id(&self.collections()) })
            .await?
            .is_some();
        if recorded {
            self.customer_email_complete.store(true, Ordering::Relaxed);
        }
        Ok(recorded)
    }

    /// Records that every order of this generation has `customerEmail`: all the orders this
    /// release writes do.
    pub async fn record_customer_email_complete(&self) -> Result<(), StoreError> {
        self.record_upgrade(customer_email_record_id(&self.collections()))
            .await
    }

    /// Replicas may record an upgrade concurrently; the first record stays.
    async fn record_upgrade(&self, record_id: String) -> Result<(), StoreError> {
        let record = doc! { "_id": record_id, "completedAt": DateTime::now() };
        written_unless_duplicate(self.upgrades().insert_one(record).await)?;
        Ok(())
    }

    /// Forgets the records of `models`, whose collections are being dropped.
    pub(super) async fn forget_upgrades(&self, models: &ReadModels) -> Result<(), StoreError> {
        self.upgrades()
            .delete_one(doc! { "_id": customer_email_record_id(models) })
            .await?;
        Ok(())
    }

    /// Gives `customerEmail` to every order written before it existed, one update each,
    /// records that, and then lets email filters use it. Idempotent, so replicas starting
    /// together may all run it; an order's customer never changes, so a concurrent projection
    /// cannot disagree.
    pub async fn backfill_customer_email(&self) -> Result<u64, StoreError> {
        let models = self.collections();
        let record_id = customer_email_record_id(&models);
        let orders = models.orders.clone_with_type::<Document>();
        let missing = doc! { "customerEmail": { "$exists": false } };
        let mut legacy = orders
            .find(missing.clone())
            .projection(doc! { "customer.email": 1 })
            .await?;
        let mut filled = 0_u64;
        let mut last_report = Instant::now();
        while let Some(order) = legacy.try_next().await? {
            let (Ok(id), Ok(email)) = (
                order.get_str("_id"),
                order
                    .get_document("customer")
                    .and_then(|customer| customer.get_str("email")),
            ) else {
                continue;
            };
            let mut filter = missing.clone();
            filter.insert("_id", id);
            orders
                .update_one(filter, doc! { "$set": { "customerEmail": email } })
                .await?;
            filled += 1;
            if last_report.elapsed() >= BACKFILL_REPORT_EVERY {
                log::info!("customerEmail backfill: {filled} orders so far");
                last_report = Instant::now();
            }
        }
        self.record_upgrade(record_id).await?;
        self.customer_email_complete.store(true, Ordering::Relaxed);
        Ok(filled)
    }
}

/// The record of the `customerEmail` backfill of `models`' orders.
fn customer_email_record_id(models: &ReadModels) -> String {
    format!("{}.customerEmail", models.orders.name())
}
