//! Per-method schemas that `#[ferry::service]` emits: what each method's arguments and
//! return value look like, and a clear error for a type that cannot be described.

use ferry::codec::schema::TypeSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct Job {
    pub name: String,
    pub owner: String,
}

/// Needs a self-describing format: its shape cannot be traced.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Loose {
    Number(u64),
    Text(String),
}

#[ferry::service]
pub trait Jobs {
    async fn get(&self, cx: &ferry::Context, id: u64, verbose: bool) -> Option<Job>;
    async fn watch(&self, id: u64) -> ferry::Streaming<Job>;
    async fn upload(&self, name: String, jobs: ferry::Streaming<Job>) -> u32;
    async fn nothing(&self);
}

#[ferry::service]
pub trait Undescribable {
    async fn fine(&self) -> u8;
    async fn loose(&self, value: Loose) -> u8;
}

#[test]
fn each_method_has_its_schema_in_method_order() {
    let schemas = JOBS_SERVICE_INFO.method_schemas().unwrap();
    let names: Vec<&str> = schemas.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, JOBS_SERVICE_INFO.methods);
    let job = TypeSchema::of::<Job>().unwrap();
    let get = &schemas[0];
    assert_eq!(
        get.args,
        vec![
            TypeSchema::of::<u64>().unwrap(),
            TypeSchema::of::<bool>().unwrap()
        ],
        "the Context is not an argument"
    );
    assert_eq!(get.returns, TypeSchema::of::<Option<Job>>().unwrap());
    assert_eq!(schemas[1].returns, TypeSchema::Stream(job.shape().clone()));
    assert_eq!(
        schemas[2].args,
        vec![
            TypeSchema::of::<String>().unwrap(),
            TypeSchema::Stream(job.shape().clone())
        ]
    );
    assert_eq!(schemas[3].canonical(), "()->unit");
    assert!(std::ptr::eq(
        schemas,
        JOBS_SERVICE_INFO.method_schemas().unwrap()
    ));
}

#[test]
fn an_undescribable_type_names_service_method_and_type() {
    let err = UNDESCRIBABLE_SERVICE_INFO.method_schemas().unwrap_err();
    assert_eq!(err.service(), "Undescribable");
    assert_eq!(err.method(), "loose");
    let message = ferry::ErrorChain::new(&err).to_string();
    assert!(message.contains("`Undescribable`"), "{message}");
    assert!(message.contains("`loose`"), "{message}");
    assert!(message.contains("argument 0"), "{message}");
    assert!(message.contains("Loose"), "{message}");
    assert!(err.schema_error().is_some());
}
