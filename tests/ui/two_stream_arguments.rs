#[ferry::service]
pub trait Merge {
    async fn merge(&self, a: ferry::Streaming<u32>, b: ferry::Streaming<u32>) -> u64;
}

fn main() {}
