//! [`Context`]: what a handler may know about the call it serves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_transport::PeerCredentials;

/// Information about one call, passed to handlers that take `cx: &ferry::Context` as their
/// first argument after `&self`.
///
/// ```
/// #[ferry::service]
/// pub trait Whoami {
///     async fn pid(&self, cx: &ferry::Context) -> Option<u32>;
/// }
///
/// struct Impl;
/// impl Whoami for Impl {
///     async fn pid(&self, cx: &ferry::Context) -> Option<u32> {
///         cx.peer().pid
///     }
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Context {
    peer: Arc<PeerCredentials>,
    service: &'static str,
    method: &'static str,
    request_id: u64,
    deadline: Option<Instant>,
}

impl Context {
    pub(crate) fn new(
        peer: Arc<PeerCredentials>,
        service: &'static str,
        method: &'static str,
        request_id: u64,
        deadline: Option<Instant>,
    ) -> Self {
        Context {
            peer,
            service,
            method,
            request_id,
            deadline,
        }
    }

    /// Who is calling: process id, and user/group ids (Unix) or user SID (Windows), as the
    /// operating system reported them when the connection was accepted.
    pub fn peer(&self) -> &PeerCredentials {
        &self.peer
    }

    /// The service name of this call.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The method name of this call.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The request id the client chose for this call.
    pub fn request_id(&self) -> u64 {
        self.request_id
    }

    /// When the client stops waiting for the reply, if it set a deadline. ferry cancels the
    /// handler at that instant; a handler can use it to skip work that would come too late.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left until [`Context::deadline`], or `None` when the call has no deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }
}
