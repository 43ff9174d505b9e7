#[ferry::service]
pub trait Files {
    async fn lines(&self, path: String) -> Option<ferry::Streaming<String>>;
}

fn main() {}
