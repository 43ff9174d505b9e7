//! [`Client`]: one connection to a service, shared by any number of concurrent calls.

mod connection;
mod options;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ferry_transport::{Stream, ToName};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, ErrorKind};
use crate::service::ServiceInfo;

use connection::Shared;
pub use options::ClientOptions;

/// An untyped client: the connection under every generated `{Trait}Client`.
///
/// Cheap to clone; clones share the connection. When the last clone is dropped the
/// connection closes. Users normally hold the generated typed client instead.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    /// Closes the connection when the last clone goes.
    _owner: Arc<connection::Owner>,
    /// The deadline of each call made through this handle.
    timeout: Option<Duration>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("service", &self.shared.service.name)
            .field("address", &self.shared.address)
            .field("timeout", &self.timeout)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Client {
    /// Connects to `name` and runs the handshake for `service`.
    pub async fn connect(
        name: impl ToName,
        service: &'static ServiceInfo,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let name = name
            .to_name()
            .map_err(|err| Error::transport(ErrorKind::Connect, "invalid endpoint name", err))?;
        let stream = ferry_transport::connect_with(&name, &options.connect)
            .await
            .map_err(|err| Error::transport(ErrorKind::Connect, "cannot connect", err))?;
        Client::start(stream, name.address(), service, options).await
    }

    /// Runs the handshake for `service` on an already connected stream.
    pub async fn from_stream(
        stream: Stream,
        service: &'static ServiceInfo,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        Client::start(stream, "(stream)".to_owned(), service, options).await
    }

    async fn start(
        stream: Stream,
        address: String,
        service: &'static ServiceInfo,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let (shared, owner) = connection::open(stream, address, service, options).await?;
        Ok(Client {
            shared,
            _owner: Arc::new(owner),
            timeout: options.timeout,
        })
    }

    /// A handle on the same connection whose calls have `timeout` as their deadline.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client {
            timeout: Some(timeout),
            ..self.clone()
        }
    }

    /// The deadline applied to each call made through this handle, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Whether the connection is closed; every further call fails with
    /// [`ErrorKind::Closed`].
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// The largest frame body the server accepts, as it said in the handshake.
    pub fn server_max_frame(&self) -> u32 {
        self.shared.server_max_frame
    }

    /// Calls method `method` with `args` (a tuple) and decodes the reply as `R`.
    ///
    /// Dropping the returned future before it completes cancels the call on the server.
    pub async fn call<A, R>(&self, method: u16, args: &A) -> Result<R, Error>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.shared.call(method, args, self.timeout).await
    }
}
