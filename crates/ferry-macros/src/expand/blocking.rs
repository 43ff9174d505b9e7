//! `{Trait}BlockingClient`: the client for threads without an async runtime, each method
//! waiting on the async client's.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{client_ident, ClientSignature};
use crate::parse::{Method, Service};

/// In: the service. Out: the blocking client, its constructors, its methods and
/// `{Trait}Client::blocking`.
pub(super) fn expand_blocking_client(service: &Service) -> TokenStream {
    let client = client_ident(service);
    let blocking = blocking_ident(service);
    let definition = blocking_struct(service);
    let constructors = blocking_constructors(service);
    let methods = service.methods.iter().map(blocking_method);
    quote! {
        #definition

        impl #blocking {
            #constructors

            #(#methods)*
        }

        impl #client {
            /// A blocking client on the same connection, for threads without a runtime.
            pub fn blocking(&self) -> #blocking {
                #blocking { client: ::core::clone::Clone::clone(self) }
            }
        }
    }
}

/// `{Trait}BlockingClient`.
fn blocking_ident(service: &Service) -> syn::Ident {
    format_ident!("{}BlockingClient", service.ident)
}

/// `pub struct CalcBlockingClient { client: CalcClient }`, documented.
fn blocking_struct(service: &Service) -> TokenStream {
    let vis = &service.vis;
    let trait_ident = &service.ident;
    let client = client_ident(service);
    let blocking = blocking_ident(service);
    let doc = format!(
        "Blocking client of the `{trait_ident}` ferry service, for code without an async \
         runtime (plain threads, `main` without `#[tokio::main]`).\n\n\
         Each call parks the calling thread until the reply arrives; the work runs on one \
         small runtime thread shared by all blocking clients of the process (see \
         `ferry::blocking`). Calling it from inside an async runtime fails with \
         `ErrorKind::Usage`: use [`{client}`] there. Cheap to clone; clones share one \
         connection and may be used from many threads at once."
    );
    quote! {
        #[doc = #doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #vis struct #blocking {
            client: #client,
        }
    }
}

/// `connect`, `connect_with`, `with_timeout` and `into_async`.
fn blocking_constructors(service: &Service) -> TokenStream {
    let client = client_ident(service);
    quote! {
        /// Connects to the server at `name` with default options, blocking.
        pub fn connect(
            name: impl ::ferry::__private::ToName,
        ) -> ::core::result::Result<Self, ::ferry::Error> {
            Self::connect_with(name, &::ferry::ClientOptions::default())
        }

        /// Connects to the server at `name` with the given options, blocking.
        pub fn connect_with(
            name: impl ::ferry::__private::ToName,
            options: &::ferry::ClientOptions,
        ) -> ::core::result::Result<Self, ::ferry::Error> {
            ::ferry::blocking::block_on(#client::connect_with(name, options))
                .map(|client| Self { client })
        }

        /// A handle on the same connection whose calls use `timeout` as their deadline, as
        /// the async client's `with_timeout`.
        ///
        /// The remaining time travels with each request, so the server stops working on a
        /// call the client no longer waits for.
        pub fn with_timeout(&self, timeout: ::core::time::Duration) -> Self {
            Self { client: self.client.with_timeout(timeout) }
        }

        /// The async client on the same connection.
        pub fn into_async(self) -> #client {
            self.client
        }
    }
}

/// In: one trait method. Out: `pub fn add(&self, a: i64, b: i64) -> Result<i64,
/// ferry::Error>` that blocks on the async client's method; a reply stream becomes a
/// `BlockingStream`.
fn blocking_method(method: &Method) -> TokenStream {
    let ClientSignature { docs, params } = ClientSignature::of(method);
    let ident = &method.ident;
    let names = method.args.iter().map(|(name, _)| name);
    let call = quote!(::ferry::blocking::block_on(self.client.#ident(#(#names),*)));
    let (returns, body) = match (&method.stream_output, &method.stream_error) {
        (Some(item), Some(error)) => (
            quote! {
                ::core::result::Result<
                    ::core::result::Result<::ferry::blocking::BlockingStream<#item>, #error>,
                    ::ferry::Error,
                >
            },
            quote!(#call.map(|reply| reply.map(::ferry::blocking::BlockingStream::new))),
        ),
        (Some(item), None) => (
            quote!(::core::result::Result<::ferry::blocking::BlockingStream<#item>, ::ferry::Error>),
            quote!(#call.map(::ferry::blocking::BlockingStream::new)),
        ),
        (None, _) => {
            let output = &method.output;
            (
                quote!(::core::result::Result<#output, ::ferry::Error>),
                call,
            )
        }
    };
    quote! {
        #(#docs)*
        pub fn #ident(&self, #(#params),*) -> #returns {
            #body
        }
    }
}
