//! The macro's expansion names everything by absolute paths: a service compiles and works
//! in a module that shadows common names.
#![allow(dead_code, non_camel_case_types)]

mod shadowing {
    pub type Result<T> = ::core::result::Result<T, ()>;
    pub struct Option;
    pub struct Box;
    pub struct Arc;
    pub struct Vec;
    pub struct String;
    pub struct Send;
    pub struct Sync;
    pub struct Future;
    pub struct Clone;
    pub struct Debug;
    pub mod std {}
    pub mod core {}
    pub mod serde {}
    pub mod tokio {}

    #[ferry::service]
    pub trait Shadowed {
        async fn double(&self, x: u32) -> u32;
        async fn nothing(&self);
    }

    pub struct Impl;
    impl Shadowed for Impl {
        async fn double(&self, x: u32) -> u32 {
            x * 2
        }
        async fn nothing(&self) {}
    }
}

#[tokio::test]
async fn a_service_in_a_shadowing_module_works() {
    use shadowing::{Impl, ShadowedClient, ShadowedServer};
    let (a, b) = ferry::transport::pair().unwrap();
    tokio::spawn(
        ferry::Server::new()
            .serve(ShadowedServer::new(Impl))
            .serve_stream(a),
    );
    let client = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        ShadowedClient::from_stream(b, &ferry::ClientOptions::default()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(client.double(21).await.unwrap(), 42);
    client.nothing().await.unwrap();
    let schemas = shadowing::SHADOWED_SERVICE_INFO.method_schemas().unwrap();
    assert_eq!(schemas[0].canonical(), "(u32)->u32");
}
