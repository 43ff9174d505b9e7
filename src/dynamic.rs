//! An untyped client for tools: call any service's methods by name with JSON values,
//! without its Rust definition.
//!
//! [`DynamicClient::connect`] asks the endpoint's [introspection](crate::introspect)
//! service for the service's signature and methods, then connects to it with the JSON
//! payload format. Arguments are one JSON array (one element per argument, section 4.1 of
//! `docs/protocol.md`); replies come back as [`serde_json::Value`]s, a reply stream as an
//! [`Incoming`] of them. Failures are the usual typed [`Error`]s. The values are not checked
//! against the method's types here: a wrong shape is refused by the server with
//! `BAD_ARGUMENTS`; `ferry_codec::schema::MethodSchema::check_json_args` checks them first
//! and says where they differ.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferry::Error> {
//! use ferry::dynamic::DynamicClient;
//!
//! let calc = DynamicClient::connect("myapp.calc", "Calc", &ferry::ClientOptions::new()).await?;
//! let add = calc.method("add").expect("Calc has add");
//! let sum = calc.call(add, &serde_json::json!([1, 2])).await?;
//! assert_eq!(sum, serde_json::json!(3));
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use ferry_codec::FormatId;
use ferry_transport::ToName;
use serde_json::Value;

use crate::client::{Client, ClientOptions};
use crate::contract::{MethodRef, ServiceInfo};
use crate::error::{Error, ErrorKind};
use crate::introspect::{IntrospectClient, ServiceDescription};
use crate::streaming::Incoming;

/// A connection to one service, whose methods are called by name with JSON values.
///
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct DynamicClient {
    client: Client,
    service: ServiceDescription,
    /// The identity the connection was made with, whose methods `method` hands out.
    info: &'static ServiceInfo,
}

impl fmt::Debug for DynamicClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicClient")
            .field("service", &self.service.name)
            .field("client", &self.client)
            .finish()
    }
}

impl DynamicClient {
    /// Connects to service `service` at `name`: first to the endpoint's introspection
    /// service, to learn the service's signature and methods, then to the service itself,
    /// with the JSON payload format (whatever `options` says).
    ///
    /// Fails with [`ErrorKind::ServiceMismatch`] when the endpoint does not host
    /// `service`, and as [`Client::connect`] does otherwise.
    pub async fn connect(
        name: impl ToName,
        service: &str,
        options: &ClientOptions,
    ) -> Result<DynamicClient, Error> {
        let name = name
            .to_name()
            .map_err(|err| Error::transport(ErrorKind::Connect, "cannot connect", err))?;
        let server = IntrospectClient::connect_with(&name, options).await?;
        let description = server.describe().await?;
        drop(server);
        let Some(found) = description.service(service) else {
            let hosted: Vec<&str> = description
                .services
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            return Err(Error::new(
                ErrorKind::ServiceMismatch,
                format!(
                    "no service `{service}` at {}; it hosts {hosted:?}",
                    name.address()
                ),
            ));
        };
        DynamicClient::connect_described(&name, found, options).await
    }

    /// Connects to the service that `service` (from the endpoint's introspection)
    /// describes, at `name`, with the JSON payload format.
    pub async fn connect_described(
        name: impl ToName,
        service: &ServiceDescription,
        options: &ClientOptions,
    ) -> Result<DynamicClient, Error> {
        let info = service_info(service)?;
        let options = options.clone().format(FormatId::Json);
        let client = Client::connect(name, info, &options).await?;
        Ok(DynamicClient {
            client,
            service: service.clone(),
            info,
        })
    }

    /// The service as the server described it.
    pub fn service(&self) -> &ServiceDescription {
        &self.service
    }

    /// The untyped client underneath (its deadline, [`Client::ping`], ...).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The method called `name`, to pass to [`call`](Self::call) and its siblings; `None`
    /// when the service has none.
    pub fn method(&self, name: &str) -> Option<MethodRef> {
        self.info.method(name)
    }

    /// Calls `method` with `args` (a JSON array, one element per argument) and
    /// returns its reply.
    pub async fn call(&self, method: MethodRef, args: &Value) -> Result<Value, Error> {
        self.client.call::<Value, Value>(method, args).await
    }

    /// Calls `method`, whose reply is a stream, with `args`; its items arrive as
    /// JSON values. Dropping the stream cancels the call.
    pub async fn call_streaming(
        &self,
        method: MethodRef,
        args: &Value,
    ) -> Result<Incoming<Value>, Error> {
        self.client
            .call_streaming::<Value, Value>(method, args)
            .await
    }

    /// Calls `method`, whose reply is `Result<Streaming<T>, E>`, with `args`: the
    /// server's error `E`, or the stream, its items as JSON values.
    pub async fn call_streaming_result(
        &self,
        method: MethodRef,
        args: &Value,
    ) -> Result<Result<Incoming<Value>, Value>, Error> {
        self.client
            .call_streaming_result::<Value, Value, Value>(method, args)
            .await
    }
}

/// The wire identity of a described service, made once per distinct description and kept
/// for the life of the process ([`ServiceInfo`] holds `&'static` data): a bounded cost of
/// a few small allocations per service a process talks to.
fn service_info(service: &ServiceDescription) -> Result<&'static ServiceInfo, Error> {
    // The methods' names and schemas are part of the key: two versions of a service may
    // share their signature text and differ in a type's structure.
    type Key = (String, String, Vec<(String, Option<String>)>);
    static TABLE: OnceLock<Mutex<HashMap<Key, &'static ServiceInfo>>> = OnceLock::new();
    let wanted = service.signature_hash();
    let methods: Vec<(String, Option<String>)> = service
        .methods
        .iter()
        .map(|m| (m.name.clone(), m.schema.clone()))
        .collect();
    let key = (service.name.clone(), service.canonical.clone(), methods);
    let mut table = TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let info = *table
        .entry(key)
        .or_insert_with_key(|(name, canonical, methods)| {
            let leak = |text: &str| -> &'static str { Box::leak(text.to_owned().into_boxed_str()) };
            let names: Vec<&'static str> = methods.iter().map(|(m, _)| leak(m)).collect();
            let info = ServiceInfo::new(
                leak(name),
                leak(canonical),
                Box::leak(names.into_boxed_slice()),
            );
            // The methods' schemas, when the server described every one of them.
            let schemas: Option<Vec<_>> = service
                .methods
                .iter()
                .map(|m| m.method_schema().and_then(Result::ok))
                .collect();
            let info = match schemas {
                Some(schemas) => info.with_schema_table(Box::leak(Box::new(Ok(schemas)))),
                None => info,
            };
            &*Box::leak(Box::new(info))
        });
    if wanted != Some(info.signature) {
        return Err(Error::new(
            ErrorKind::Protocol,
            format!(
                "the server described service `{}` with signature {} but canonical text `{}` (hash {:#018x})",
                service.name, service.signature, service.canonical, info.signature
            ),
        ));
    }
    Ok(info)
}
