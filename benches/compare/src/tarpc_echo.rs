//! tarpc 0.38: `serde_transport` over Unix sockets with bincode, `bytes::Bytes` argument
//! (serialized as a byte string, not element by element).

use std::io;
use std::path::Path;

use bytes::Bytes;
use futures::{future, StreamExt};
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::{client, context, serde_transport};
use tokio::task::JoinSet;

use crate::echo::{check_len, other, Work};

/// Frames up to this size pass tarpc's length-delimited codec (the default is 8 MiB).
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// The benchmark service: returns what it is sent.
#[tarpc::service]
pub(crate) trait Echo {
    /// Returns `data` unchanged.
    async fn echo(data: Bytes) -> Bytes;
    /// Returns `data` unchanged, as a `Vec<u8>` (scenario g).
    async fn echo_vec(data: Vec<u8>) -> Vec<u8>;
}

#[derive(Clone)]
struct EchoImpl;

impl Echo for EchoImpl {
    async fn echo(self, _: context::Context, data: Bytes) -> Bytes {
        data
    }
    async fn echo_vec(self, _: context::Context, data: Vec<u8>) -> Vec<u8> {
        data
    }
}

/// Binds `path` and serves echo forever.
pub(crate) async fn serve(path: &Path) -> io::Result<()> {
    let mut listener = serde_transport::unix::listen(path, Bincode::default).await?;
    listener.config_mut().max_frame_length(MAX_FRAME);
    crate::server::ready();
    listener
        .filter_map(|accepted| future::ready(accepted.ok()))
        .for_each(|transport| {
            let channel = BaseChannel::with_defaults(transport);
            tokio::spawn(
                channel
                    .execute(EchoImpl.serve())
                    .for_each(|response| async move {
                        tokio::spawn(response);
                    }),
            );
            future::ready(())
        })
        .await;
    Ok(())
}

/// A tarpc client of the echo service.
pub(crate) struct TarpcClient(EchoClient);

impl crate::echo::Client for TarpcClient {
    async fn connect(path: &Path) -> io::Result<Self> {
        let mut connect = serde_transport::unix::connect(path, Bincode::default);
        connect.config_mut().max_frame_length(MAX_FRAME);
        let transport = connect.await?;
        Ok(TarpcClient(
            EchoClient::new(client::Config::default(), transport).spawn(),
        ))
    }

    async fn call(&mut self, data: &Bytes) -> io::Result<()> {
        let reply = self
            .0
            .echo(context::current(), data.clone())
            .await
            .map_err(|err| other("tarpc call", err))?;
        check_len(reply.len(), data.len())
    }

    async fn call_vec(&mut self, data: Vec<u8>) -> io::Result<Vec<u8>> {
        let want = data.len();
        let reply = self
            .0
            .echo_vec(context::current(), data)
            .await
            .map_err(|err| other("tarpc call", err))?;
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
                        .echo(context::current(), data.clone())
                        .await
                        .map_err(|err| other("tarpc call", err))?;
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
