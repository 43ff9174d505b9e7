//! ferry: the echo service over the Unix transport, bincode payloads, `bytes::Bytes`.

use std::io;
use std::path::Path;

use bytes::Bytes;
use tokio::task::JoinSet;

use crate::echo::{check_len, other, Work};

/// The benchmark service: returns what it is sent.
#[ferry::service]
pub trait Echo {
    /// Returns `data` unchanged.
    async fn echo(&self, data: Bytes) -> Bytes;
    /// Returns `data` unchanged, as a `Vec<u8>` (scenario g).
    async fn echo_vec(&self, data: Vec<u8>) -> Vec<u8>;
}

struct EchoImpl;

impl Echo for EchoImpl {
    async fn echo(&self, data: Bytes) -> Bytes {
        data
    }
    async fn echo_vec(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }
}

/// Binds `path` and serves echo forever.
pub(crate) async fn serve(path: &Path) -> io::Result<()> {
    let server = ferry::Server::new()
        .serve(EchoServer::new(EchoImpl))
        .serve(crate::shared::SharedEchoServer::new(
            crate::shared::SharedEchoImpl,
        ))
        .bind(path)
        .await
        .map_err(|err| other("ferry bind", err))?;
    crate::server::ready();
    server.run().await.map_err(|err| other("ferry server", err))
}

/// A ferry client of the echo service.
pub(crate) struct FerryClient(EchoClient);

impl crate::echo::Client for FerryClient {
    async fn connect(path: &Path) -> io::Result<Self> {
        // The first call travels right behind the hello (protocol version 3).
        let options = ferry::ClientOptions::new().early_requests(true);
        EchoClient::connect_with(path, &options)
            .await
            .map(FerryClient)
            .map_err(|err| other("ferry connect", err))
    }

    async fn call(&mut self, data: &Bytes) -> io::Result<()> {
        let reply = self
            .0
            .echo(data.clone())
            .await
            .map_err(|err| other("ferry call", err))?;
        check_len(reply.len(), data.len())
    }

    async fn call_vec(&mut self, data: Vec<u8>) -> io::Result<Vec<u8>> {
        let want = data.len();
        let reply = self
            .0
            .echo_vec(data)
            .await
            .map_err(|err| other("ferry call", err))?;
        check_len(reply.len(), want)?;
        Ok(reply)
    }

    async fn in_flight(&mut self, data: &Bytes, window: usize, work: Work) -> io::Result<u64> {
        let mut tasks = JoinSet::new();
        for _ in 0..window {
            let client = self.0.clone();
            let data = data.clone();
            let work = work.clone();
            tasks.spawn(async move {
                let mut counted = 0u64;
                while work.start() {
                    let reply = client
                        .echo(data.clone())
                        .await
                        .map_err(|err| other("ferry call", err))?;
                    check_len(reply.len(), data.len())?;
                    if work.counts() {
                        counted += 1;
                    }
                }
                Ok::<u64, io::Error>(counted)
            });
        }
        let mut total = 0;
        while let Some(done) = tasks.join_next().await {
            total += done.map_err(|err| other("task", err))??;
        }
        Ok(total)
    }
}
