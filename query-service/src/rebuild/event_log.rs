use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use service_support::startup::CLIENT_IDLE_TIMEOUT;
use shared_events::RawEnvelope;

use super::RebuildError;
use crate::config::RebuildSettings;

/// A page of the command service's event log (`GET /admin/events`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventLogPage {
    pub events: Vec<LoggedEvent>,
    pub last_position: i64,
}

#[derive(Debug, Deserialize)]
pub struct LoggedEvent {
    pub position: i64,
    pub envelope: RawEnvelope,
}

/// Reads the write side's event log over HTTP, with the admin token; the query side holds no
/// database credentials of the write side.
pub struct EventLogClient {
    client: reqwest::Client,
    url: String,
    token: SecretString,
    page_size: u32,
}

impl EventLogClient {
    pub fn new(settings: &RebuildSettings) -> Result<Self, RebuildError> {
        Ok(Self {
            // A page requested on a connection just as command-service closes it for idleness
            // would get no answer, and a page's write to the read store can take that long.
            client: reqwest::Client::builder()
                .pool_idle_timeout(CLIENT_IDLE_TIMEOUT)
                .build()?,
            url: format!(
                "{}/admin/events",
                settings.event_log_url.trim_end_matches('/')
            ),
            token: settings.event_log_token.clone(),
            page_size: settings.page_size,
        })
    }

    /// The events after position `after`, oldest first.
    pub async fn page_after(&self, after: i64) -> Result<EventLogPage, RebuildError> {
        let response = self
            .client
            .get(&self.url)
            .query(&[
                ("after", after.to_string()),
                ("limit", self.page_size.to_string()),
            ])
            .bearer_auth(self.token.expose_secret())
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(RebuildError::EventLogRefused {
                status: status.as_u16(),
                body,
            });
        }
        Ok(response.json().await?)
    }
}
