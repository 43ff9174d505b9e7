use std::rc::Rc;

#[ferry::service]
pub trait Counter {
    async fn next(&self) -> u64;
}

struct Impl;

impl Counter for Impl {
    async fn next(&self) -> u64 {
        let not_send = Rc::new(1u64);
        tokio::task::yield_now().await;
        *not_send
    }
}

fn main() {}
