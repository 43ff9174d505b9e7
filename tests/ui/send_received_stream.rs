#[ferry::service]
pub trait Relay {
    async fn echo_back(&self, items: ferry::Streaming<u32>) -> u32;
    async fn count(&self, n: u32) -> ferry::Streaming<u32>;
}

struct Impl;

impl Relay for Impl {
    async fn echo_back(&self, _items: ferry::Incoming<u32>) -> u32 {
        0
    }
    async fn count(&self, n: u32) -> ferry::Streaming<u32> {
        ferry::Streaming::from_iter(0..n)
    }
}

async fn forward(client: RelayClient) -> Result<u32, ferry::Error> {
    // A received stream is not a stream to send: this does not compile.
    let received = client.count(3).await?;
    client.echo_back(received).await
}

fn main() {
    let _ = forward;
}
