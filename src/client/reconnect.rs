//! A client connection that dials again when it closes: a swappable connection slot and
//! the task that watches it.

mod policy;

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use ferry_transport::{ConnectOptions, Name};
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, Instrument};

use crate::client::connection::{self, Connection as Shared, Owner};
use crate::client::ClientOptions;
use crate::contract::ServiceInfo;
use crate::error::{Error, ErrorKind};

pub use policy::Reconnect;

/// The connection slot of a reconnecting client, shared by its handles.
pub(crate) struct Reconnector {
    /// The newest connection (open or closed); replaced after each reconnection.
    current: watch::Sender<Arc<Shared>>,
    /// Keeps the current connection open; dropping the reconnector closes it.
    owner: Mutex<Owner>,
    /// Why the last attempt failed, for the errors of calls made while down.
    last_error: Mutex<Option<String>>,
    address: String,
    wait_while_down: Option<Duration>,
    /// Dropped with the reconnector: ends the watching task.
    _stop: oneshot::Sender<()>,
}

impl Reconnector {
    /// Wraps a fresh connection and starts the task that replaces it when it closes.
    pub(crate) fn start(
        name: Name,
        service: &'static ServiceInfo,
        options: &ClientOptions,
        policy: Reconnect,
        shared: Arc<Shared>,
        owner: Owner,
    ) -> Arc<Reconnector> {
        let (stop_tx, stop_rx) = oneshot::channel();
        let address = name.address();
        let reconnector = Arc::new(Reconnector {
            current: watch::Sender::new(Arc::clone(&shared)),
            owner: Mutex::new(owner),
            last_error: Mutex::new(None),
            address: address.clone(),
            wait_while_down: policy.wait_while_down,
            _stop: stop_tx,
        });
        let watcher = Watcher {
            reconnector: Arc::downgrade(&reconnector),
            name,
            service,
            options: options.clone(),
            policy,
        };
        let span = tracing::debug_span!("reconnect", service = service.name, %address);
        tokio::spawn(watcher.run(shared, stop_rx).instrument(span));
        reconnector
    }

    /// The newest connection, open or closed.
    pub(crate) fn current(&self) -> Arc<Shared> {
        Arc::clone(&self.current.borrow())
    }

    /// An open connection for a call with `timeout`: the current one, or (when waiting
    /// while down is on) the next one. Fails with [`ErrorKind::Connect`] when none is up.
    pub(crate) async fn connection(&self, timeout: Option<Duration>) -> Result<Arc<Shared>, Error> {
        let current = self.current();
        if !current.is_closed() {
            return Ok(current);
        }
        let Some(wait) = self.wait_while_down else {
            return Err(self.down_error());
        };
        let bound = timeout.map_or(wait, |timeout| timeout.min(wait));
        let mut next = self.current.subscribe();
        let waited = tokio::time::timeout(bound, next.wait_for(|shared| !shared.is_closed())).await;
        match waited {
            Ok(Ok(shared)) => Ok(Arc::clone(&shared)),
            Ok(Err(_)) => Err(self.down_error()),
            Err(_) => match timeout {
                Some(timeout) if timeout < wait => Err(Error::deadline(timeout)),
                _ => Err(self.down_error()),
            },
        }
    }

    fn down_error(&self) -> Error {
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone();
        let mut message = format!(
            "not connected to {}: the connection closed and the client is reconnecting; \
             the call was not sent",
            self.address
        );
        if let Some(last) = last {
            message.push_str(&format!(" (last attempt: {last})"));
        }
        Error::new(ErrorKind::Connect, message)
    }
}

/// The task that waits for the connection to close and dials again.
struct Watcher {
    reconnector: Weak<Reconnector>,
    name: Name,
    service: &'static ServiceInfo,
    options: ClientOptions,
    policy: Reconnect,
}

impl Watcher {
    async fn run(self, mut current: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
        let mut pause = self.policy.initial_backoff;
        loop {
            let opened = Instant::now();
            tokio::select! {
                _ = current.closed() => {}
                _ = &mut stop => return,
            }
            // A connection that lived long earns a fresh, short backoff; one that closed
            // at once (a server that drops us) keeps the growing one, so it cannot spin.
            if opened.elapsed() >= self.policy.max_backoff {
                pause = self.policy.initial_backoff;
            }
            debug!("connection closed; reconnecting");
            let mut attempts = 0u32;
            current = loop {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = &mut stop => return,
                }
                attempts = attempts.saturating_add(1);
                let attempt = tokio::select! {
                    attempt = self.dial() => attempt,
                    _ = &mut stop => return,
                };
                pause = self.policy.next_backoff(pause);
                match attempt {
                    Ok((shared, owner)) => {
                        let Some(reconnector) = self.reconnector.upgrade() else {
                            return;
                        };
                        info!(attempts, "reconnected");
                        *reconnector
                            .owner
                            .lock()
                            .unwrap_or_else(|poison| poison.into_inner()) = owner;
                        *reconnector
                            .last_error
                            .lock()
                            .unwrap_or_else(|poison| poison.into_inner()) = None;
                        reconnector.current.send_replace(Arc::clone(&shared));
                        break shared;
                    }
                    Err(err) => {
                        debug!(attempts, error = %crate::ErrorChain::new(&err), next = ?pause, "reconnect attempt failed");
                        let Some(reconnector) = self.reconnector.upgrade() else {
                            return;
                        };
                        *reconnector
                            .last_error
                            .lock()
                            .unwrap_or_else(|poison| poison.into_inner()) = Some(err.to_string());
                    }
                }
            };
        }
    }

    /// One connection attempt and handshake, bounded by the handshake timeout.
    async fn dial(&self) -> Result<(Arc<Shared>, Owner), Error> {
        let once = ConnectOptions::new().attempt_timeout(self.options.handshake_timeout);
        let stream = ferry_transport::connect_with(&self.name, &once)
            .await
            .map_err(Error::connect)?;
        connection::open(stream, Some(&self.name), self.service, &self.options).await
    }
}
