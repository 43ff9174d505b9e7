pub struct NotSerde;

#[ferry::service]
pub trait Store {
    async fn put(&self, key: String, value: NotSerde) -> bool;
}

fn main() {}
