//! [`Boxed`]: a type-erased tower service whose clones are boxed too; the inside of the
//! server's [`BoxCallService`](super::BoxCallService) and of the client's
//! [`BoxClientService`](super::BoxClientService).

use std::task::{Context as TaskContext, Poll};

use futures::future::BoxFuture;
use tower_service::Service;

use super::BoxError;

/// A boxed `Service<Req, Response = Resp>` with boxed errors and futures.
pub(super) struct Boxed<Req, Resp>(Box<dyn CloneService<Req, Resp>>);

trait CloneService<Req, Resp>: Send {
    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>>;
    fn call(&mut self, request: Req) -> BoxFuture<'static, Result<Resp, BoxError>>;
    fn clone_box(&self) -> Box<dyn CloneService<Req, Resp>>;
}

impl<S, Req, Resp> CloneService<Req, Resp> for S
where
    S: Service<Req, Response = Resp> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        Service::poll_ready(self, cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> BoxFuture<'static, Result<Resp, BoxError>> {
        let future = Service::call(self, request);
        Box::pin(async move { future.await.map_err(Into::into) })
    }

    fn clone_box(&self) -> Box<dyn CloneService<Req, Resp>> {
        Box::new(self.clone())
    }
}

impl<Req: 'static, Resp: 'static> Boxed<Req, Resp> {
    /// Boxes `service`.
    pub(super) fn new<S>(service: S) -> Self
    where
        S: Service<Req, Response = Resp> + Clone + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        Boxed(Box::new(service))
    }

    pub(super) fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    pub(super) fn call(&mut self, request: Req) -> BoxFuture<'static, Result<Resp, BoxError>> {
        self.0.call(request)
    }
}

impl<Req, Resp> Clone for Boxed<Req, Resp> {
    fn clone(&self) -> Self {
        Boxed(self.0.clone_box())
    }
}
