//! [`Reconnect`]: when and how fast a client dials again after its connection closes.

use std::time::Duration;

/// Makes a client reconnect by itself when its connection closes (the server crashed or
/// restarted), with bounded exponential backoff: the first attempt comes after
/// [`initial_backoff`](Reconnect::initial_backoff), each failed attempt doubles the pause,
/// up to [`max_backoff`](Reconnect::max_backoff). The client keeps trying for as long as
/// it exists. Set it with [`ClientOptions::reconnect`](crate::ClientOptions::reconnect).
///
/// What calls see:
/// - a call in flight when the connection dies fails with [`ErrorKind::Closed`]: it is never
///   sent again by itself, because the server may already have run it;
/// - a call made while no connection is up fails at once with [`ErrorKind::Connect`] (the
///   default), or with [`wait_while_down`](Reconnect::wait_while_down) waits for the next
///   connection, up to that bound and the call's own deadline. A call that fails with
///   [`ErrorKind::Connect`] was not sent, so it is safe to retry.
///
/// Defaults: 50 ms first pause, 2 s longest pause, calls fail fast while down.
///
/// ```
/// use std::time::Duration;
/// let options = ferry::ClientOptions::new().reconnect(
///     ferry::Reconnect::new()
///         .max_backoff(Duration::from_secs(1))
///         .wait_while_down(Duration::from_secs(3)),
/// );
/// # drop(options);
/// ```
///
/// [`ErrorKind::Closed`]: crate::ErrorKind::Closed
/// [`ErrorKind::Connect`]: crate::ErrorKind::Connect
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "options do nothing until they are passed on"]
pub struct Reconnect {
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) wait_while_down: Option<Duration>,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            wait_while_down: None,
        }
    }
}

impl Reconnect {
    /// The defaults.
    pub fn new() -> Self {
        Reconnect::default()
    }

    /// The pause before the first attempt after the connection closed (at least 1 ms).
    pub fn initial_backoff(mut self, pause: Duration) -> Self {
        self.initial_backoff = pause.max(Duration::from_millis(1));
        self.max_backoff = self.max_backoff.max(self.initial_backoff);
        self
    }

    /// The longest pause between two attempts; the doubling stops there.
    pub fn max_backoff(mut self, pause: Duration) -> Self {
        self.max_backoff = pause.max(self.initial_backoff);
        self
    }

    /// Calls made while no connection is up wait up to `wait` for one (and never past the
    /// call's deadline) instead of failing at once.
    pub fn wait_while_down(mut self, wait: Duration) -> Self {
        self.wait_while_down = Some(wait);
        self
    }

    /// Calls made while no connection is up fail at once with
    /// [`ErrorKind::Connect`](crate::ErrorKind::Connect) (the default).
    pub fn fail_fast(mut self) -> Self {
        self.wait_while_down = None;
        self
    }

    /// The pause after one of `pause` failed: doubled, bounded by the maximum.
    pub(crate) fn next_backoff(&self, pause: Duration) -> Duration {
        pause.saturating_mul(2).min(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_bound() {
        let policy = Reconnect::new()
            .initial_backoff(Duration::from_millis(10))
            .max_backoff(Duration::from_millis(70));
        let mut pause = policy.initial_backoff;
        let mut seen = vec![pause];
        for _ in 0..5 {
            pause = policy.next_backoff(pause);
            seen.push(pause);
        }
        let ms: Vec<u128> = seen.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [10, 20, 40, 70, 70, 70]);
    }

    #[test]
    fn bounds_stay_ordered() {
        let policy = Reconnect::new()
            .max_backoff(Duration::from_millis(5))
            .initial_backoff(Duration::from_millis(100));
        assert_eq!(policy.max_backoff, Duration::from_millis(100));
        let policy = Reconnect::new().initial_backoff(Duration::ZERO);
        assert_eq!(policy.initial_backoff, Duration::from_millis(1));
        assert_eq!(policy.wait_while_down, None);
        let policy = policy.wait_while_down(Duration::from_secs(1));
        assert_eq!(policy.wait_while_down, Some(Duration::from_secs(1)));
        assert_eq!(policy.fail_fast().wait_while_down, None);
    }
}
