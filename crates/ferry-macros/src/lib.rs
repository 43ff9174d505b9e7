//! The `#[ferry::service]` attribute macro.
//!
//! Users do not depend on this crate directly: they write `#[ferry::service]`, which the
//! `ferry` crate re-exports. The macro reads a trait whose methods are `async fn(&self, ...)`
//! and emits, next to the trait:
//!
//! - `{Trait}Client`: a cheap-to-clone typed client whose methods send calls over one connection;
//! - `{Trait}Server<S>`: the dispatch that routes incoming calls to an implementation `S`;
//! - `{TRAIT}_SERVICE_INFO`: a public constant with the service's wire identity;
//! - the trait itself, rewritten so that every method returns a `Send` future.
//!
//! The work is split in two: `parse` turns the trait into a small model (and rejects what
//! ferry cannot serve, with an error pointing at the offending tokens), and `expand` turns
//! the model into code. Generated code names items only through `::ferry::contract` (the
//! documented contract between service code and the runtime) and `::ferry::__private`, so a
//! user needs nothing else in scope.
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    unsafe_op_in_unsafe_fn,
    rust_2018_idioms
)]

mod expand;
mod parse;

use proc_macro::TokenStream;

/// Turns a trait into a ferry service: a typed client, a server dispatch and a signature hash.
///
/// See the `ferry` crate documentation for the full description and an example.
///
/// Arguments: `#[ferry::service]` uses the trait's name as the service name on the wire;
/// `#[ferry::service(name = "myapp.calc")]` chooses another one.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    match parse::parse(attr.into(), item.into()) {
        Ok(model) => expand::expand(&model).into(),
        Err(err) => err.to_compile_error().into(),
    }
}
