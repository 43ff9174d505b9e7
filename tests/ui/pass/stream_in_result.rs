//! A method may return `Result<ferry::Streaming<T>, E>`: the client gets `E` or the stream.
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct NotFound;

#[ferry::service]
pub trait Files {
    async fn lines(&self, path: String) -> Result<ferry::Streaming<String>, NotFound>;
}

struct Impl;

impl Files for Impl {
    async fn lines(&self, path: String) -> Result<ferry::Streaming<String>, NotFound> {
        if path.is_empty() {
            return Err(NotFound);
        }
        Ok(ferry::Streaming::from_iter([path]))
    }
}

async fn first_line(
    client: FilesClient,
) -> Result<Result<ferry::Incoming<String>, NotFound>, ferry::Error> {
    client.lines("/etc/hostname".to_owned()).await
}

fn blocking_lines(
    client: FilesBlockingClient,
) -> Result<Result<ferry::blocking::BlockingStream<String>, NotFound>, ferry::Error> {
    client.lines("/etc/hostname".to_owned())
}

fn main() {
    let _ = (first_line, blocking_lines, FilesServer::new(Impl));
}
