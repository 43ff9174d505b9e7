//! `{Trait}Client`: the typed async client, one method per trait method.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::info::info_ident;
use super::{args_span, client_ident, method_index, upload_position, ClientSignature};
use crate::parse::{is_byte_string, is_byte_vec, Method, Service};

/// In: the service. Out: the client struct, its constructors and its methods.
pub(super) fn expand_client(service: &Service) -> TokenStream {
    let client = client_ident(service);
    let definition = client_struct(service);
    let constructors = client_constructors(service);
    let methods = service
        .methods
        .iter()
        .enumerate()
        .map(|(index, method)| client_method(service, index, method));
    quote! {
        #definition

        impl #client {
            #constructors

            #(#methods)*
        }
    }
}

/// `pub struct CalcClient { client: ferry::Client }`, documented.
fn client_struct(service: &Service) -> TokenStream {
    let vis = &service.vis;
    let trait_ident = &service.ident;
    let client = client_ident(service);
    let doc = format!(
        "Typed client of the `{trait_ident}` ferry service.\n\n\
         Cheap to clone: clones share one connection, and calls made from many tasks at once \
         are in flight together on it. Every method returns `Err(ferry::Error)` when the call \
         could not be made or answered; see [`ferry::Error`](::ferry::Error)."
    );
    quote! {
        #[doc = #doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #vis struct #client {
            client: ::ferry::Client,
        }
    }
}

/// `connect`, `connect_with`, `from_stream`, `with_timeout`, `with_metadata`, `client` and
/// `from_client`.
fn client_constructors(service: &Service) -> TokenStream {
    let info = info_ident(service);
    quote! {
        /// Connects to the server at `name` with default options.
        ///
        /// `name` is a plain endpoint name like `"myapp.calc"`, a socket path, or a full
        /// pipe name; see `ferry::Name`.
        pub async fn connect(
            name: impl ::ferry::__private::ToName,
        ) -> ::core::result::Result<Self, ::ferry::Error> {
            Self::connect_with(name, &::ferry::ClientOptions::default()).await
        }

        /// Connects to the server at `name` with the given options.
        pub async fn connect_with(
            name: impl ::ferry::__private::ToName,
            options: &::ferry::ClientOptions,
        ) -> ::core::result::Result<Self, ::ferry::Error> {
            ::ferry::Client::connect(name, &#info, options)
                .await
                .map(|client| Self { client })
        }

        /// Runs the handshake on an already connected stream (for example one end of
        /// `ferry::transport::pair()`).
        pub async fn from_stream(
            stream: ::ferry::__private::Stream,
            options: &::ferry::ClientOptions,
        ) -> ::core::result::Result<Self, ::ferry::Error> {
            ::ferry::Client::from_stream(stream, &#info, options)
                .await
                .map(|client| Self { client })
        }

        /// A handle on the same connection whose calls use `timeout` as their deadline.
        ///
        /// The remaining time travels with each request, so the server stops working on a
        /// call the client no longer waits for.
        pub fn with_timeout(&self, timeout: ::core::time::Duration) -> Self {
            Self { client: self.client.with_timeout(timeout) }
        }

        /// A handle on the same connection whose calls carry `metadata` (protocol
        /// version 3; see `ferry::Client::with_metadata`).
        pub fn with_metadata(&self, metadata: ::ferry::Metadata) -> Self {
            Self { client: self.client.with_metadata(metadata) }
        }

        /// The untyped client underneath (connection state, options).
        pub fn client(&self) -> &::ferry::Client {
            &self.client
        }

        /// A typed client over `client`, an untyped client of this service (for example
        /// one with tower layers around its calls: `ferry::Client::layer`, feature
        /// `tower`). Calls through a client of another service fail unsent.
        pub fn from_client(client: ::ferry::Client) -> Self {
            Self { client }
        }
    }
}

/// In: trait method number `index`. Out: `pub async fn add(&self, a: i64, b: i64) ->
/// Result<i64, ferry::Error>`, documented, whose body is [`client_call`].
fn client_method(service: &Service, index: usize, method: &Method) -> TokenStream {
    let ClientSignature { docs, params } = ClientSignature::of(method);
    let ident = &method.ident;
    let returns = client_returns(method);
    let call_doc = format!(
        "Calls `{}::{ident}` on the server and waits for its reply.",
        service.ident
    );
    let body = client_call(service, index, method);
    quote! {
        #(#docs)*
        #[doc = ""]
        #[doc = #call_doc]
        pub async fn #ident(&self, #(#params),*)
            -> ::core::result::Result<#returns, ::ferry::Error>
        {
            #body
        }
    }
}

/// What a client method returns on success: the reply, or for a reply stream an
/// `Incoming` of its items (inside the `Result` of a `Result<Streaming<T>, E>`).
fn client_returns(method: &Method) -> TokenStream {
    match (&method.stream_output, &method.stream_error) {
        (Some(item), Some(error)) => {
            quote!(::core::result::Result<::ferry::Incoming<#item>, #error>)
        }
        (Some(item), None) => quote!(::ferry::Incoming<#item>),
        (None, _) => {
            let output = &method.output;
            quote!(#output)
        }
    }
}

/// The call through the untyped client that fits the method's shape (plain, reply stream,
/// stream result or upload), naming the method by its `MethodRef` in the service's info.
fn client_call(service: &Service, index: usize, method: &Method) -> TokenStream {
    let info = info_ident(service);
    let index = method_index(index);
    let index = quote!(::ferry::__private::method_ref(&#info, #index));
    let encoded = encoded_args(method);
    let output = &method.output;
    // Spanned at the arguments: a non-serde argument type is reported there.
    let span = args_span(method);
    match (&method.stream_output, &method.stream_error, &method.upload) {
        (Some(item), Some(error), _) => quote_spanned! {span=>
            self.client.call_streaming_result::<_, #item, #error>(#index, #encoded).await
        },
        (Some(item), None, _) => quote_spanned! {span=>
            self.client.call_streaming::<_, #item>(#index, #encoded).await
        },
        // A byte string result decodes through `Bulk` (one copy for `Vec<u8>`, none for
        // `Bytes`).
        (None, _, Some((position, item))) if is_byte_string(output) => {
            let upload = &method.args[*position].0;
            quote! {
                self.client
                    .call_upload::<_, ::ferry::__private::Bulk<#output>, #item>(
                        #index, #encoded, #upload,
                    )
                    .await
                    .map(::ferry::__private::Bulk::into_inner)
            }
        }
        (None, _, Some((position, item))) => {
            let upload = &method.args[*position].0;
            quote! {
                self.client.call_upload::<_, #output, #item>(#index, #encoded, #upload).await
            }
        }
        (None, _, None) if is_byte_string(output) => quote_spanned! {span=>
            self.client
                .call::<_, ::ferry::__private::Bulk<#output>>(#index, #encoded)
                .await
                .map(::ferry::__private::Bulk::into_inner)
        },
        (None, _, None) => quote_spanned! {span=>
            self.client.call::<_, #output>(#index, #encoded).await
        },
    }
}

/// The argument tuple a client sends: references to the arguments, `()` in place of a
/// stream argument, byte strings through `BulkRef` (a `Bytes`; a large one goes by
/// reference) or `BulkValue` (a `Vec<u8>`, turned into a `Bytes` without a copy).
fn encoded_args(method: &Method) -> TokenStream {
    if method.args.is_empty() {
        return quote!(&::ferry::__private::NoArgs);
    }
    let upload_position = upload_position(method);
    let items = method
        .args
        .iter()
        .enumerate()
        .map(|(position, (name, ty))| {
            if Some(position) == upload_position {
                quote!(&())
            } else if is_byte_vec(ty) {
                quote!(&::ferry::__private::BulkValue::new(#name))
            } else if is_byte_string(ty) {
                quote!(&::ferry::__private::BulkRef(&#name))
            } else {
                quote!(&#name)
            }
        });
    quote!(&(#(#items,)*))
}
