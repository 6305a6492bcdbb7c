use std::io;
use std::time::Duration;

use futures::StreamExt;
use lapin::Connection;

/// How often a session checks that its connection is still up.
const CONNECTION_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Resolves when `connection` is lost or one of its channels fails (a session needs each of
/// them): on lapin's error event, or when the connection's state is no longer connected,
/// checked every second. lapin fails the delivery stream and the pending calls too, but a call
/// made as the connection dies (the batch's acknowledgement, in the fault suite's broker stop)
/// is dropped by lapin with its promise unresolved, and waits for good; a session raced against
/// this ends instead.
pub async fn connection_lost(connection: &Connection) -> lapin::Error {
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
