//! Two streams connected to each other, without a name.

use crate::error::TransportError;
use crate::stream::Stream;
use crate::sys;

/// Two connected streams: what one writes, the other reads.
///
/// A `socketpair` on Unix. Must be called inside a tokio runtime. Each stream's
/// [`peer_credentials`](Stream::peer_credentials) name this process.
pub fn pair() -> Result<(Stream, Stream), TransportError> {
    let ((a, a_cred), (b, b_cred)) = sys::pair()?;
    Ok((Stream::new(a, a_cred), Stream::new(b, b_cred)))
}
