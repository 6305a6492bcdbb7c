//! How many messages wait in the projection's three queues, for the metrics: read when
//! Prometheus scrapes, with passive declarations on a channel of the consumer's connection
//! that does nothing else (a passive declaration of a missing queue closes its channel).

use std::sync::Arc;
use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::Channel;
use tokio::sync::Mutex;

use super::topology::{dead_letter_queue_name, retry_queue_name};

/// How long a probe waits for the broker's answers. A call made as the connection dies can wait
/// for good, and the probe holds the channel (which the consumer's next session replaces) while
/// it waits.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The depth of each of the projection's queues, by the name the metric labels it with.
pub type QueueDepths = Vec<(&'static str, u32)>;

#[derive(Clone)]
pub struct QueueDepthProbe {
    queues: Arc<[(&'static str, String); 3]>,
    channel: Arc<Mutex<Option<Channel>>>,
}

impl QueueDepthProbe {
    pub fn new(queue: &str) -> Self {
        Self {
            queues: Arc::new([
                ("projection", queue.to_owned()),
                ("retry", retry_queue_name(queue)),
                ("dead_letter", dead_letter_queue_name(queue)),
            ]),
            channel: Arc::default(),
        }
    }

    /// Probes through `channel` from now on (the consumer's latest connection).
    pub async fn attach(&self, channel: Channel) {
        *self.channel.lock().await = Some(channel);
    }

    /// The depths, or `None` while there is no working channel.
    pub async fn depths(&self) -> Option<QueueDepths> {
        let probed = tokio::time::timeout(PROBE_TIMEOUT, self.probe()).await;
        probed.unwrap_or_else(|_| {
            log::warn!("no answer to the queue depth probe within {PROBE_TIMEOUT:?}");
            None
        })
    }

    async fn probe(&self) -> Option<QueueDepths> {
        let channel = self.channel.lock().await;
        let channel = channel
            .as_ref()
            .filter(|channel| channel.status().connected())?;
        let mut depths = Vec::with_capacity(self.queues.len());
        for (label, queue) in self.queues.iter() {
            let declared = channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await;
            match declared {
                Ok(queue) => depths.push((*label, queue.message_count())),
                Err(error) => {
                    log::warn!("cannot read the depth of {queue}: {error}");
                    return None;
                }
            }
        }
        Some(depths)
    }
}
