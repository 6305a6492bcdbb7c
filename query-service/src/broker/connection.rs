use std::future::Future;
use std::io;
use std::time::Duration;

use futures::StreamExt;
use lapin::Connection;

/// How often a session checks that its connection is still up.
const CONNECTION_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// `session` on `connection`, or the error that lost the connection if that comes first,
/// whatever the session is waiting for at that moment. lapin fails the delivery stream and the
/// pending calls when a connection dies, but a call made as it dies (the batch's
/// acknowledgement, in the fault suite's broker stop) is dropped by lapin with its promise
/// unresolved, and would wait for good.
pub async fn while_connected<T, E: From<lapin::Error>>(
    connection: &Connection,
    session: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::select! {
        biased;
        ended = session => ended,
        lost = connection_lost(connection) => Err(lost.into()),
    }
}

/// Resolves when `connection` is lost or one of its channels fails (a session needs each of
/// them): on lapin's error event, or when the connection's state is no longer connected,
/// checked every second.
async fn connection_lost(connection: &Connection) -> lapin::Error {
    let mut events = connection.events_listener();
    let mut check = tokio::time::interval(CONNECTION_CHECK_INTERVAL);
    loop {
        tokio::select! {
            Some(event) = events.next() => {
                if let lapin::Event::Error(error) = event {
                    return error;
                }
            }
            _ = check.tick() => {
                if !connection.status().connected() {
                    let closed = "the connection to the broker is no longer open";
                    return io::Error::new(io::ErrorKind::ConnectionAborted, closed).into();
                }
            }
        }
    }
}
