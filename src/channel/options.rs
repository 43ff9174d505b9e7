//! [`ChannelOptions`]: queue size and how the two ends connect.

use std::time::Duration;

use crate::client::ClientOptions;
use crate::server::ServerOptions;

/// How a channel is bound or connected. The defaults: a queue of 64 items, senders fail at
/// once when no receiver is bound, and the default [`ServerOptions`] / [`ClientOptions`]
/// (owner-only endpoint, bincode payloads).
///
/// ```
/// use std::time::Duration;
/// let options = ferry::channel::ChannelOptions::new()
///     .capacity(256)
///     .wait_for_receiver(Duration::from_secs(2));
/// # drop(options);
/// ```
#[derive(Clone, Debug)]
#[must_use = "options do nothing until they are passed on"]
pub struct ChannelOptions {
    pub(crate) capacity: usize,
    pub(crate) server: ServerOptions,
    pub(crate) client: ClientOptions,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            capacity: 64,
            server: ServerOptions::default(),
            client: ClientOptions::default(),
        }
    }
}

impl ChannelOptions {
    /// The defaults.
    pub fn new() -> Self {
        ChannelOptions::default()
    }

    /// Items the receiver's queue holds before senders wait (at least 1). Only the binding
    /// side uses it.
    ///
    /// Besides the queue, each sender connection may have up to
    /// [`ServerOptions::max_in_flight`] sends waiting for room, each holding its decoded
    /// item, so the receiver's memory is bounded by
    /// `capacity + connections * max_in_flight` items.
    ///
    /// ```
    /// let options = ferry::channel::ChannelOptions::new().capacity(8);
    /// # drop(options);
    /// ```
    pub fn capacity(mut self, items: usize) -> Self {
        self.capacity = items.max(1);
        self
    }

    /// The queue size set by [`ChannelOptions::capacity`].
    #[deprecated(
        note = "options are write-only, like ferry's other option builders: read the queue size from `Receiver::capacity`"
    )]
    #[doc(hidden)]
    pub fn get_capacity(&self) -> usize {
        self.capacity
    }

    /// Senders keep trying for up to `wait` while no receiver is bound yet.
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = ferry::channel::ChannelOptions::new().wait_for_receiver(Duration::from_secs(1));
    /// # drop(options);
    /// ```
    pub fn wait_for_receiver(mut self, wait: Duration) -> Self {
        self.client = self.client.wait_for_server(wait);
        self
    }

    /// Options of the receiver's endpoint (limits, permissions); see [`ServerOptions`].
    ///
    /// ```
    /// let server = ferry::ServerOptions::new().max_connections(16);
    /// let options = ferry::channel::ChannelOptions::new().server_options(server);
    /// # drop(options);
    /// ```
    pub fn server_options(mut self, options: ServerOptions) -> Self {
        self.server = options;
        self
    }

    /// Options of a sender's connection (payload format, connect wait, deadline of each
    /// send); see [`ClientOptions`]. Replaces what
    /// [`wait_for_receiver`](ChannelOptions::wait_for_receiver) set.
    ///
    /// ```
    /// let client = ferry::ClientOptions::new().format(ferry::FormatId::Json);
    /// let options = ferry::channel::ChannelOptions::new().client_options(client);
    /// # drop(options);
    /// ```
    pub fn client_options(mut self, options: ClientOptions) -> Self {
        self.client = options;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::ChannelOptions;

    #[test]
    fn capacity_defaults_to_64_and_is_at_least_1() {
        assert_eq!(ChannelOptions::new().capacity, 64);
        assert_eq!(ChannelOptions::new().capacity(0).capacity, 1);
        assert_eq!(ChannelOptions::new().capacity(8).capacity, 8);
    }
}
