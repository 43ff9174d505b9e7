//! [`ChildOptions`]: how a child link is made.

use std::time::Duration;

/// How [`spawn_with`](crate::child::spawn_with) links a child. The defaults: an inherited
/// socket on Unix, a named endpoint on Windows, 10 s for the child to connect to a named
/// endpoint.
///
/// ```
/// use std::time::Duration;
/// let options = ferry::child::ChildOptions::new().link_timeout(Duration::from_secs(30));
/// # drop(options);
/// ```
#[derive(Clone, Debug)]
pub struct ChildOptions {
    /// Read on Unix only: elsewhere every link is named.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) named: bool,
    pub(crate) link_timeout: Duration,
}

impl Default for ChildOptions {
    fn default() -> Self {
        ChildOptions {
            named: cfg!(not(unix)),
            link_timeout: Duration::from_secs(10),
        }
    }
}

impl ChildOptions {
    /// The defaults.
    ///
    /// ```
    /// let options = ferry::child::ChildOptions::new();
    /// # drop(options);
    /// ```
    pub fn new() -> Self {
        ChildOptions::default()
    }

    /// Link through a private endpoint with a random name instead of an inherited socket.
    /// Always so on Windows; on Unix, for children that close inherited descriptors.
    /// The child must connect from the spawned process itself (not a process it starts).
    ///
    /// ```
    /// let options = ferry::child::ChildOptions::new().named_endpoint(true);
    /// # drop(options);
    /// ```
    pub fn named_endpoint(mut self, named: bool) -> Self {
        self.named = named || cfg!(not(unix));
        self
    }

    /// How long a child has to connect to a named endpoint before it is killed and the
    /// spawn fails. Unused for inherited sockets, which are connected from the start.
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = ferry::child::ChildOptions::new().link_timeout(Duration::from_secs(1));
    /// # drop(options);
    /// ```
    pub fn link_timeout(mut self, timeout: Duration) -> Self {
        self.link_timeout = timeout;
        self
    }
}
