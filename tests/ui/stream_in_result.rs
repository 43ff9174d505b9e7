use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct NotFound;

#[ferry::service]
pub trait Files {
    async fn lines(&self, path: String) -> Result<ferry::Streaming<String>, NotFound>;
}

fn main() {}
