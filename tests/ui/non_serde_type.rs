pub struct NotSerde;

#[ferry::service]
pub trait Store {
    async fn put(&self, value: NotSerde) -> bool;
}

fn main() {}
