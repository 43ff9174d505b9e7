//! Endpoints and byte streams for ferry: Unix domain sockets and Windows named pipes behind
//! one API.
//!
//! - [`Name`] names an endpoint; plain names such as `"myapp.echo"` map to a per-user
//!   socket path or pipe name (see [`Name`] for the mapping and [`RUNTIME_DIR_ENV`]).
//! - [`Listener::bind`] / [`Listener::accept`] serve a name; [`connect`] /
//!   [`connect_with`] reach it; [`pair`] gives two connected streams without a name.
//! - A [`Stream`] is `AsyncRead + AsyncWrite + Send + Unpin` and knows its peer's
//!   [`PeerCredentials`]. It carries bytes; framing is the codec's business.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferry_transport::TransportError> {
//! use ferry_transport::{connect, Listener, ListenerOptions, Name};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let name = Name::new("myapp.echo")?;
//! let listener = Listener::bind(&name, &ListenerOptions::new())?;
//! let mut client = connect(&name).await?;
//! let mut server = listener.accept().await?;
//! client.write_all(b"ping").await.ok();
//! let mut buf = [0; 4];
//! server.read_exact(&mut buf).await.ok();
//! # Ok(()) }
//! ```
//!
//! The Unix side is built on tokio's own `UnixListener` / `UnixStream`.
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    unsafe_op_in_unsafe_fn,
    rust_2018_idioms
)]

mod connector;
mod credentials;
mod error;
pub mod handles;
mod listener;
mod name;
pub mod os;
mod pair;
pub mod shm;
mod stream;
mod sys;

pub use connector::{connect, connect_with, ConnectOptions};
pub use credentials::PeerCredentials;
pub use error::TransportError;
pub use listener::{Listener, ListenerOptions, DEFAULT_MAX_INSTANCES};
pub use name::{Name, ToName, MAX_PLAIN_NAME_LEN, RUNTIME_DIR_ENV};
pub use pair::pair;
pub use stream::{ReadHalf, Stream, WriteHalf};
