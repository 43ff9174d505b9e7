#[ferry::service]
pub trait Map {
    async fn map(&self, items: ferry::Streaming<u32>) -> ferry::Streaming<u32>;
}

fn main() {}
