//! What both services do alike with RabbitMQ: connect to one of the broker's addresses,
//! declare the order events exchange, report whether they hold a working connection, and wait
//! between reconnection attempts.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use lapin::options::ExchangeDeclareOptions;
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use shared_events::ORDER_EVENTS_EXCHANGE;

/// No connection yet: the first attempt starts with the first address.
const NONE_YET: usize = usize::MAX;

/// The heartbeat asked for when an address names none (`?heartbeat=` in seconds): a node
/// that stops answering without closing its sockets (paused, partitioned away) is noticed
/// after two missed heartbeats, instead of the server's default of 60 s.
const DEFAULT_HEARTBEAT_SECONDS: u16 = 10;

/// How long a connection attempt may take when the address names no `?connection_timeout=`
/// (in milliseconds, which lapin parses but does not apply): a node that accepts TCP
/// connections but never answers (a paused process) must not hold the next address back.
const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// The broker's addresses: one AMQP URI, or several separated by commas (the nodes of a
/// cluster), as `broker.url` or `AMQP_URL` give them; a comma inside a URI is written `%2C`.
/// A connection goes to the first address that accepts it, trying each in turn. After a
/// connection is lost, the next attempt starts with the address after the one it had, so a
/// node that died is tried last. Clones share that memory. Each address gets a heartbeat and
/// a connection timeout unless it names its own.
#[derive(Clone, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct BrokerAddresses {
    uris: Arc<[AMQPUri]>,
    last_connected: Arc<AtomicUsize>,
}

impl TryFrom<String> for BrokerAddresses {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let uris = text
            .split(',')
            .map(str::trim)
            .enumerate()
            .map(|(index, uri)| {
                let mut uri = uri.parse::<AMQPUri>().map_err(|error| {
                    format!("broker address {} is not an AMQP URI ({error})", index + 1)
                })?;
                uri.query.heartbeat.get_or_insert(DEFAULT_HEARTBEAT_SECONDS);
                Ok(uri)
            })
            .collect::<Result<Arc<[AMQPUri]>, String>>()?;
        Ok(Self {
            uris,
            last_connected: Arc::new(AtomicUsize::new(NONE_YET)),
        })
    }
}

impl BrokerAddresses {
    /// The addresses the next connection tries, in order, by index.
    fn attempt_order(&self) -> impl Iterator<Item = usize> {
        let count = self.uris.len();
        let first = match self.last_connected.load(Ordering::Relaxed) {
            NONE_YET => 0,
            last => (last + 1) % count,
        };
        (0..count).map(move |offset| (first + offset) % count)
    }

    /// Connects to the first address that accepts, as `name` (shown in the management UI);
    /// the last address's error when none does.
    pub async fn connect(&self, name: &str) -> Result<Connection, lapin::Error> {
        let mut last_error = None;
        for index in self.attempt_order() {
            let uri = self.uris[index].clone();
            let properties = ConnectionProperties::default().with_connection_name(name.into());
            let timeout = uri
                .query
                .connection_timeout
                .map_or(DEFAULT_CONNECTION_TIMEOUT, Duration::from_millis);
            let attempt = tokio::time::timeout(timeout, Connection::connect_uri(uri, properties))
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer within {} ms", timeout.as_millis()),
                    )
                    .into())
                });
            match attempt {
                Ok(connection) => {
                    self.last_connected.store(index, Ordering::Relaxed);
                    return Ok(connection);
                }
                Err(error) => {
                    if self.uris.len() > 1 {
                        log::warn!("broker {} refused ({error})", self.host_of(index));
                    }
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| {
            lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed).into()
        }))
    }

    fn host_of(&self, index: usize) -> String {
        let authority = &self.uris[index].authority;
        format!("{}:{}", authority.host, authority.port)
    }
}

/// Hosts and ports only: the URIs carry credentials.
impl fmt::Debug for BrokerAddresses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries((0..self.uris.len()).map(|index| self.host_of(index)))
            .finish()
    }
}

/// Whether the service's broker link (the relay's publisher, the projection's consumer) is
/// currently working; read by the readiness check and the metrics.
#[derive(Debug, Clone, Default)]
pub struct BrokerStatus(Arc<AtomicBool>);

impl BrokerStatus {
    pub fn set_connected(&self, connected: bool) {
        self.0.store(connected, Ordering::Relaxed);
    }

    pub fn is_connected(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Delays between reconnection attempts: exponential from 100 ms, capped at 5 s, with jitter.
pub fn reconnect_backoff() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Declares the durable topic exchange every order event is published to. Idempotent: the
/// publisher, the projection's topology and the tests each declare it before use.
pub async fn declare_order_events_exchange(channel: &Channel) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            ORDER_EVENTS_EXCHANGE.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(text: &str) -> BrokerAddresses {
        BrokerAddresses::try_from(text.to_owned()).unwrap()
    }

    #[test]
    fn several_addresses_are_read_and_shown_without_credentials() {
        let parsed = addresses("amqp://user:secret@a:5672/%2f, amqp://user:secret@b:5673/%2f");
        assert_eq!(format!("{parsed:?}"), r#"["a:5672", "b:5673"]"#);
        let refused = BrokerAddresses::try_from("amqp://a/%2f,http://b/".to_owned());
        assert!(refused.unwrap_err().contains("broker address 2"));
    }

    #[test]
    fn after_a_connection_the_next_attempt_starts_with_the_next_address() {
        let parsed = addresses("amqp://a/%2f,amqp://b/%2f,amqp://c/%2f");
        assert_eq!(parsed.attempt_order().collect::<Vec<_>>(), [0, 1, 2]);
        parsed.last_connected.store(1, Ordering::Relaxed);
        assert_eq!(
            parsed.clone().attempt_order().collect::<Vec<_>>(),
            [2, 0, 1]
        );
        parsed.last_connected.store(2, Ordering::Relaxed);
        assert_eq!(parsed.attempt_order().collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn an_address_without_a_heartbeat_gets_the_default_and_keeps_its_own() {
        let parsed = addresses("amqp://a/%2f,amqp://b/%2f?heartbeat=3");
        let heartbeats: Vec<_> = parsed.uris.iter().map(|uri| uri.query.heartbeat).collect();
        assert_eq!(heartbeats, [Some(DEFAULT_HEARTBEAT_SECONDS), Some(3)]);
    }

    #[tokio::test]
    async fn a_node_that_accepts_but_never_answers_is_left_after_the_connection_timeout() {
        // The kernel completes the TCP handshake for the listener's backlog; nothing answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let parsed = addresses(&format!(
            "amqp://127.0.0.1:{port}/%2f?connection_timeout=300"
        ));
        let started = std::time::Instant::now();
        let error = parsed.connect("test").await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3), "{error}");
        assert!(
            error.to_string().contains("no answer within 300 ms"),
            "{error}"
        );
    }
}
