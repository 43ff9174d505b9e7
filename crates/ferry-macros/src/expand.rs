//! Turning a [`Service`] model into the rewritten trait, its client and its server dispatch.
//!
//! One generator per emitted item, each in the module of the part it belongs to:
//!
//! | module | emits |
//! | --- | --- |
//! | `service_trait` | the trait, each method returning a `Send` future |
//! | `info` | `{TRAIT}_SERVICE_INFO` and its per-method schemas |
//! | `client` | `{Trait}Client`, its constructors and one async method per trait method |
//! | `blocking` | `{Trait}BlockingClient` and its methods, which wait on the async ones |
//! | `server` | `{Trait}Server<S>` and its `ServiceDispatch`, one match arm per method |
//! | `checks` | the spanned serde checks of every argument and return type |

mod blocking;
mod checks;
mod client;
mod info;
mod server;
mod service_trait;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Attribute, Ident};

use crate::parse::{Method, Service};

/// Emits everything `#[ferry::service]` generates for one trait.
pub(crate) fn expand(service: &Service) -> TokenStream {
    let service_trait = service_trait::expand_trait(service);
    let info = info::expand_info(service);
    let client = client::expand_client(service);
    let blocking_client = blocking::expand_blocking_client(service);
    let server = server::expand_server(service);
    let checks = checks::expand_type_checks(service);
    quote! {
        #service_trait
        #info
        #client
        #blocking_client
        #server
        #checks
    }
}

/// `{Trait}Client`: the name of the async client.
fn client_ident(service: &Service) -> Ident {
    format_ident!("{}Client", service.ident)
}

/// What the async and the blocking client methods of one trait method share: the trait
/// method's doc attributes and the parameter list (`a: i64, b: i64`, without the context).
struct ClientSignature<'a> {
    docs: Vec<&'a Attribute>,
    params: Vec<TokenStream>,
}

impl<'a> ClientSignature<'a> {
    fn of(method: &'a Method) -> Self {
        ClientSignature {
            docs: method
                .attrs
                .iter()
                .filter(|attr| attr.path().is_ident("doc"))
                .collect(),
            params: method
                .args
                .iter()
                .map(|(name, ty)| quote!(#name: #ty))
                .collect(),
        }
    }
}

/// The position of the method's stream argument, if it takes one.
fn upload_position(method: &Method) -> Option<usize> {
    method.upload.as_ref().map(|(position, _)| *position)
}

/// Where an error about the argument tuple points: the argument's type when there is one
/// (besides a stream argument), else the parameter list.
fn args_span(method: &Method) -> proc_macro2::Span {
    let upload_position = upload_position(method);
    let mut sent = method
        .args
        .iter()
        .enumerate()
        .filter(|(position, _)| Some(*position) != upload_position);
    match (sent.next(), sent.next()) {
        (Some((_, (_, ty))), None) => syn::spanned::Spanned::span(ty),
        _ => method.params_span,
    }
}

/// The method's index as the `u16` the wire carries (the parser caps the count).
fn method_index(index: usize) -> u16 {
    u16::try_from(index).unwrap_or(u16::MAX)
}
