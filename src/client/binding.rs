//! How a client's methods map onto the server's: by index as written (version 1, or a
//! service without schemas), or by name against the method table of a version 2 Welcome,
//! each method callable only when its schema hash matches the server's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ferry_codec::schema::MethodSchema;
use ferry_codec::MethodTable;

use crate::contract::ServiceInfo;
use crate::error::{Error, ErrorKind};

/// The hashes of a service's method schemas (`local`, which lives as long as the
/// process), computed on the first connect of the process and kept: each hash is taken
/// over the schema's canonical text, which is built anew each time.
fn local_hashes(local: &'static [MethodSchema]) -> Arc<[u64]> {
    /// Keyed by the address and length of the schemas.
    type Cache = Vec<((usize, usize), Arc<[u64]>)>;
    static CACHE: Mutex<Cache> = Mutex::new(Vec::new());
    let key = (local.as_ptr() as usize, local.len());
    let mut cache = CACHE.lock().unwrap_or_else(|poison| poison.into_inner());
    if let Some((_, hashes)) = cache.iter().find(|(at, _)| *at == key) {
        return Arc::clone(hashes);
    }
    let hashes: Arc<[u64]> = local.iter().map(MethodSchema::hash).collect();
    cache.push((key, Arc::clone(&hashes)));
    hashes
}

/// The server's index for each of the client's methods, or why it has none.
#[derive(Debug, Default)]
pub(crate) struct Binding {
    /// `None`: the client's indexes are the server's (checked as a whole by the signature).
    methods: Option<Vec<Bound>>,
}

#[derive(Debug)]
enum Bound {
    /// Callable: the server's index for the method.
    At(u16),
    /// The server has no method of this name.
    Missing,
    /// The server has the method with another schema: its hash, and the first difference
    /// when the server's schema could be read.
    Differs { hash: u64, detail: Option<String> },
}

impl Binding {
    /// Binds `local` (the client's schemas, in its method order) by name to `table`.
    pub(crate) fn by_name(local: &'static [MethodSchema], table: &MethodTable) -> Binding {
        let hashes = local_hashes(local);
        let methods = local
            .iter()
            .zip(hashes.iter())
            .map(|(schema, hash)| match table.find(&schema.name) {
                None => Bound::Missing,
                Some((index, entry)) if entry.hash == *hash => Bound::At(index),
                Some((_, entry)) => Bound::Differs {
                    hash: entry.hash,
                    detail: None,
                },
            })
            .collect();
        Binding {
            methods: Some(methods),
        }
    }

    /// The names of the methods whose schema differs from the server's.
    pub(crate) fn differing<'a>(&self, service: &'a ServiceInfo) -> Vec<&'a str> {
        let Some(methods) = &self.methods else {
            return Vec::new();
        };
        methods
            .iter()
            .zip(service.methods)
            .filter(|(bound, _)| matches!(bound, Bound::Differs { .. }))
            .map(|(_, name)| *name)
            .collect()
    }

    /// Fills in the first difference of each differing method from the server's schemas.
    pub(crate) fn explain(
        &mut self,
        local: &[MethodSchema],
        server: &HashMap<String, MethodSchema>,
    ) {
        let Some(methods) = &mut self.methods else {
            return;
        };
        for (bound, schema) in methods.iter_mut().zip(local) {
            if let Bound::Differs { detail, .. } = bound {
                *detail = server
                    .get(&schema.name)
                    .and_then(|theirs| schema.diff(theirs))
                    .map(|difference| {
                        if difference.at.is_empty() {
                            format!("{}: {}", difference.part, difference.detail)
                        } else {
                            format!(
                                "`{}` in {}: {}",
                                difference.at, difference.part, difference.detail
                            )
                        }
                    });
            }
        }
    }

    /// Refuses any difference between the client's methods and the server's table (the
    /// strict contract): a method missing or different on either side.
    pub(crate) fn strict(
        &self,
        service: &ServiceInfo,
        table: Option<&MethodTable>,
    ) -> Result<(), Error> {
        let (Some(methods), Some(table)) = (&self.methods, table) else {
            return Ok(());
        };
        let mut problems = Vec::new();
        for (bound, name) in methods.iter().zip(service.methods) {
            match bound {
                Bound::At(_) => {}
                Bound::Missing => {
                    problems.push(format!("method `{name}` is not on the server"));
                }
                Bound::Differs { detail, .. } => problems.push(match detail {
                    Some(detail) => format!("method `{name}` differs: {detail}"),
                    None => format!("method `{name}` has another schema on the server"),
                }),
            }
        }
        for entry in table.entries() {
            if !service.methods.contains(&entry.name.as_str()) {
                problems.push(format!(
                    "the server has `{}`, this client does not",
                    entry.name
                ));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::ServiceMismatch,
            format!(
                "service `{}` differs from the server's and the client asked for a strict contract: {}",
                service.name,
                problems.join("; ")
            ),
        ))
    }

    /// The server's index for the client's method `method`, or the error that fails the
    /// call before anything is sent.
    pub(crate) fn server_index(&self, service: &ServiceInfo, method: u16) -> Result<u16, Error> {
        let Some(methods) = &self.methods else {
            return Ok(method);
        };
        let name = service
            .methods
            .get(usize::from(method))
            .copied()
            .unwrap_or("?");
        match methods.get(usize::from(method)) {
            Some(Bound::At(index)) => Ok(*index),
            Some(Bound::Missing) => Err(Error::new(
                ErrorKind::Incompatible,
                format!(
                    "method `{name}` of service `{}` is not on the server (an older or other \
                     version of the service); the call was not sent",
                    service.name
                ),
            )),
            Some(Bound::Differs { hash, detail }) => {
                let local = service
                    .method_schema(method)
                    .map(MethodSchema::hash)
                    .unwrap_or_default();
                let why = match detail {
                    Some(detail) => format!("its schema differs from the server's: {detail}"),
                    None => format!(
                        "schema differs (hash {local:#018x} here, {hash:#018x} on the server; \
                         the server's schema could not be read)"
                    ),
                };
                Err(Error::new(
                    ErrorKind::Incompatible,
                    format!(
                        "method `{name}` of service `{}`: {why}; the call was not sent",
                        service.name
                    ),
                ))
            }
            // Not a method of the client's service (an untyped caller's index): sent as it
            // is, for the server to answer UNKNOWN_METHOD.
            None => Ok(method),
        }
    }
}
