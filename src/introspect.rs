//! The introspection service every ferry server hosts: what the server is and what it
//! serves, for tools such as the `ferry` command and for clients in other languages.
//!
//! Every [`Server`](crate::Server) (bound or on [`serve_stream`](crate::Server::serve_stream))
//! answers the service [`SERVICE_NAME`] (`ferry.introspect`) beside its own services, with
//! one method, `describe`, whose reply is a [`ServerDescription`]. Service names that start
//! with `ferry.` are reserved for ferry's own services. The layout of the reply, and the
//! handshake a client in another language sends for it, are in `docs/protocol.md`
//! (section 11).
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferry::Error> {
//! let server = ferry::introspect::IntrospectClient::connect("myapp.calc").await?;
//! let description = server.describe().await?;
//! for service in &description.services {
//!     println!("{} ({} methods)", service.name, service.methods.len());
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use ferry_codec::schema::{MethodSchema, SchemaError};
use serde::{Deserialize, Serialize};

use crate::contract::ServiceDispatch;

/// The name the introspection service is hosted under on every server.
pub const SERVICE_NAME: &str = "ferry.introspect";

/// The prefix of the service names reserved for ferry's own services.
pub const RESERVED_PREFIX: &str = "ferry.";

/// What a server is and what it hosts: the reply of `describe`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServerDescription {
    /// The highest protocol version the server speaks.
    pub protocol: u16,
    /// The version of ferry the server was built with (`0.1.0`).
    pub ferry: String,
    /// The server's process id.
    pub pid: u32,
    /// Every service the endpoint hosts, this one included, sorted by name.
    pub services: Vec<ServiceDescription>,
}

/// One service of a server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServiceDescription {
    /// The service name a client sends in its handshake.
    pub name: String,
    /// The signature hash the handshake compares, as `0x` and 16 hex digits.
    pub signature: String,
    /// The canonical signature text the hash is computed from (section 7 of
    /// `docs/protocol.md`).
    pub canonical: String,
    /// The methods, by index.
    pub methods: Vec<MethodDescription>,
}

/// One method of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MethodDescription {
    /// The method's name.
    pub name: String,
    /// Its index: the `aux` of a REQUEST for it.
    pub index: u16,
    /// The hash of its schema (section 10.3), as `0x` and 16 hex digits, when the service
    /// describes its methods' schemas (every service made with `#[ferry::service]` does,
    /// unless a type cannot be described).
    pub hash: Option<String>,
    /// Its full schema as JSON text (section 10.4), when the service describes it. Text,
    /// not a nested value, so the reply has one shape in both payload formats.
    pub schema: Option<String>,
}

impl ServerDescription {
    /// The service called `name`, if the server hosts it.
    pub fn service(&self, name: &str) -> Option<&ServiceDescription> {
        self.services.iter().find(|s| s.name == name)
    }
}

impl MethodDescription {
    /// The method's schema, read back from [`schema`](Self::schema); `None` when the
    /// service does not describe it.
    ///
    /// # Errors
    ///
    /// When the text is not a method schema in JSON.
    pub fn method_schema(&self) -> Option<Result<MethodSchema, SchemaError>> {
        let text = self.schema.as_deref()?;
        Some(
            serde_json::from_str::<serde_json::Value>(text)
                .map_err(|err| SchemaError::Json {
                    at: String::new(),
                    what: format!("not JSON: {err}"),
                })
                .and_then(|value| MethodSchema::from_json(&value)),
        )
    }
}

impl ServiceDescription {
    /// The method called `name`, if the service has it.
    pub fn method(&self, name: &str) -> Option<&MethodDescription> {
        self.methods.iter().find(|m| m.name == name)
    }

    /// The signature hash as a number, when [`signature`](Self::signature) is well formed.
    pub fn signature_hash(&self) -> Option<u64> {
        parse_hash(&self.signature)
    }
}

/// `0x` + hex digits to a number.
pub(crate) fn parse_hash(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("0x")?;
    u64::from_str_radix(digits, 16).ok()
}

/// The introspection service.
#[crate::service(name = "ferry.introspect")]
pub trait Introspect {
    /// What the server is and what it hosts.
    async fn describe(&self) -> ServerDescription;
}

/// The server side: a description made once, when the server is built.
pub(crate) struct Describer {
    description: ServerDescription,
}

impl Introspect for Describer {
    async fn describe(&self) -> ServerDescription {
        self.description.clone()
    }
}

/// The introspection service for a server hosting `services` (the service itself is
/// added to the description).
pub(crate) fn service(
    services: &HashMap<&'static str, Arc<dyn ServiceDispatch>>,
) -> IntrospectServer<Describer> {
    let mut described: Vec<ServiceDescription> = services
        .values()
        .map(|s| describe_service(s.info()))
        .collect();
    if !services.contains_key(SERVICE_NAME) {
        described.push(describe_service(&INTROSPECT_SERVICE_INFO));
    }
    described.sort_by(|a, b| a.name.cmp(&b.name));
    IntrospectServer::new(Describer {
        description: ServerDescription {
            protocol: ferry_codec::PROTOCOL_VERSION,
            ferry: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            services: described,
        },
    })
}

fn describe_service(info: &crate::contract::ServiceInfo) -> ServiceDescription {
    let methods = info
        .methods
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let index = u16::try_from(index).unwrap_or(u16::MAX);
            let schema = info.method_schema(index);
            MethodDescription {
                name: (*name).to_owned(),
                index,
                hash: schema.map(|s| format!("{:#018x}", s.hash())),
                schema: schema.map(|s| s.to_json().to_string()),
            }
        })
        .collect();
    ServiceDescription {
        name: info.name.to_owned(),
        signature: format!("{:#018x}", info.signature),
        canonical: info.canonical.to_owned(),
        methods,
    }
}
