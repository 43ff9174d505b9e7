//! What the accept loop does when accepting fails: keep serving what it has, back off, log
//! the cause once per burst, and at the file-descriptor limit still tell new clients why
//! they are not served instead of leaving them waiting in the backlog.

use std::time::Duration;

use ferry_transport::{Stream, TransportError};
use tracing::{info, warn};

/// The first pause after a failed accept; it doubles while failures go on.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause between two accepts while they keep failing.
const LONGEST_PAUSE: Duration = Duration::from_millis(500);

/// The state of a run of failed accepts.
#[derive(Debug, Default)]
pub(crate) struct AcceptFailures {
    /// Failures since the last successful accept.
    count: u64,
    pause: Duration,
}

impl AcceptFailures {
    /// Records a failed accept on `address`: logs it when it starts a burst and returns how
    /// long to pause before the next accept.
    pub(crate) fn failed(&mut self, address: &str, err: &TransportError) -> Duration {
        self.count += 1;
        if self.count == 1 {
            let os_error = os_error(err);
            warn!(
                %address,
                error = %crate::ErrorChain::new(err),
                os_error,
                "accept failed; serving the connections already open and retrying with back-off (logged once until an accept succeeds)"
            );
            self.pause = FIRST_PAUSE;
        } else {
            self.pause = (self.pause * 2).min(LONGEST_PAUSE);
        }
        self.pause
    }

    /// Records a successful accept, closing a burst of failures.
    pub(crate) fn succeeded(&mut self, address: &str) {
        if self.count > 0 {
            info!(%address, failures = self.count, "accepting again");
            self.count = 0;
        }
    }
}

/// The operating system's error number behind `err`, if any.
pub(crate) fn os_error(err: &TransportError) -> Option<i32> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return io.raw_os_error();
        }
        source = cause.source();
    }
    None
}

/// Whether `err` says this process (or the system) has no file descriptor left.
pub(crate) fn out_of_descriptors(err: &TransportError) -> bool {
    #[cfg(unix)]
    {
        matches!(os_error(err), Some(libc::EMFILE | libc::ENFILE))
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        false
    }
}

/// One file descriptor held back for the moment the process runs out: giving it up lets the
/// server accept the waiting client just long enough to refuse it clearly.
#[derive(Debug)]
pub(crate) struct Reserve(Option<std::fs::File>);

impl Reserve {
    pub(crate) fn new() -> Self {
        Reserve(open_reserve())
    }

    /// Frees the reserved descriptor; `false` when there was none to free.
    pub(crate) fn release(&mut self) -> bool {
        self.0.take().is_some()
    }

    /// Takes a descriptor back into reserve, if one is free again.
    pub(crate) fn refill(&mut self) {
        if self.0.is_none() {
            self.0 = open_reserve();
        }
    }
}

fn open_reserve() -> Option<std::fs::File> {
    #[cfg(unix)]
    {
        std::fs::File::open("/dev/null").ok()
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Writes `refusal` to `stream` if the socket takes it at once, then closes it.
pub(crate) async fn refuse_now(mut stream: Stream, refusal: &[u8]) {
    use tokio::io::AsyncWriteExt;
    let _ = tokio::time::timeout(Duration::ZERO, stream.write_all(refusal)).await;
}
