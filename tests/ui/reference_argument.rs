#[ferry::service]
pub trait Greeter {
    async fn hello(&self, name: &str) -> String;
}

fn main() {}
