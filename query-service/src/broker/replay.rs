use lapin::options::{BasicAckOptions, BasicGetOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

use super::connection::while_connected;
use super::topology::dead_letter_queue_name;
use super::unusable::{
    copy_properties, publish_to_queue, RepublishError, ORIGINAL_ROUTING_KEY_HEADER,
};
use crate::config::BrokerSettings;

/// Moves every message parked in the dead-letter queue back to the projection's queue, with
/// its attempt count reset (the failure headers are dropped; the original routing key is kept
/// for reference). Each message is acknowledged in the dead-letter queue only after the broker
/// confirmed its copy, so a crash mid-way loses nothing, and a lost connection ends the replay
/// with an error rather than a wait. Returns how many were moved.
pub async fn replay_dead_letters(settings: &BrokerSettings) -> Result<u64, RepublishError> {
    let connection = settings.url.connect("query-service replay").await?;
    while_connected(&connection, replay_on(&connection, settings)).await
}

/// The replay on `connection`, which it closes at the end (its channel still open).
async fn replay_on(
    connection: &lapin::Connection,
    settings: &BrokerSettings,
) -> Result<u64, RepublishError> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let dead_letter_queue = dead_letter_queue_name(&settings.queue);
    let mut replayed = 0_u64;
    while let Some(message) = channel
        .basic_get(
            dead_letter_queue.as_str().into(),
            BasicGetOptions { no_ack: false },
        )
        .await?
    {
        let delivery = message.delivery;
        let mut properties = copy_properties(&delivery.properties);
        if let Some(routing_key) = delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|headers| headers.inner().get(ORIGINAL_ROUTING_KEY_HEADER).cloned())
        {
            let mut headers = FieldTable::default();
            headers.insert(ORIGINAL_ROUTING_KEY_HEADER.into(), routing_key);
            properties = properties.with_headers(headers);
        }
        publish_to_queue(&channel, &settings.queue, &delivery.data, properties).await?;
        delivery.ack(BasicAckOptions::default()).await?;
        replayed += 1;
        if replayed.is_multiple_of(100) {
            log::info!("replayed {replayed} messages so far");
        }
    }
    connection.close(200, "replay done".into()).await?;
    Ok(replayed)
}

/// How many messages the dead-letter queue holds now, read without taking any (a passive
/// declare): what a replay would move.
pub async fn count_dead_letters(settings: &BrokerSettings) -> Result<u32, lapin::Error> {
    let connection = settings.url.connect("query-service replay dry run").await?;
    let channel = connection.create_channel().await?;
    let queue = channel
        .queue_declare(
            dead_letter_queue_name(&settings.queue).as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    connection.close(200, "dry run done".into()).await?;
    Ok(queue.message_count())
}
