//! Turning a [`Service`] model into the rewritten trait, its client and its server dispatch.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::Type;

use crate::parse::{Method, Service};

/// Emits everything `#[ferry::service]` generates for one trait.
pub(crate) fn expand(service: &Service) -> TokenStream {
    let service_trait = expand_trait(service);
    let info = expand_info(service);
    let client = expand_client(service);
    let blocking_client = expand_blocking_client(service);
    let server = expand_server(service);
    let checks = expand_type_checks(service);
    quote! {
        #service_trait
        #info
        #client
        #blocking_client
        #server
        #checks
    }
}

/// The canonical signature string hashed into the handshake (documented in docs/protocol.md):
/// `service <name> { <method>(<arg types>)-><return type>; ... }`, types with whitespace removed.
pub(crate) fn canonical_signature(service: &Service) -> String {
    let mut out = format!("service {} {{", service.wire_name);
    for method in &service.methods {
        let args: Vec<String> = method.args.iter().map(|(_, ty)| type_text(ty)).collect();
        out.push_str(&format!(
            " {}({})->{};",
            method.ident,
            args.join(","),
            type_text(&method.output)
        ));
    }
    out.push_str(" }");
    out
}

fn type_text(ty: &Type) -> String {
    quote!(#ty)
        .to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// `{TRAIT}_SERVICE_INFO`: the public constant that holds the service's wire identity.
fn info_ident(service: &Service) -> syn::Ident {
    format_ident!(
        "{}_SERVICE_INFO",
        upper_snake(&service.ident.to_string()),
        span = service.ident.span()
    )
}

/// `DocCalc` -> `DOC_CALC`, `HTTPApi` -> `HTTP_API`, `Calc2` -> `CALC2`.
pub(crate) fn upper_snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (index, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && index > 0 {
            let previous = chars[index - 1];
            let next_is_lower = chars.get(index + 1).is_some_and(|n| n.is_lowercase());
            if previous.is_lowercase()
                || previous.is_ascii_digit()
                || (previous.is_uppercase() && next_is_lower)
            {
                out.push('_');
            }
        }
        out.extend(c.to_uppercase());
    }
    out
}

fn expand_trait(service: &Service) -> TokenStream {
    let Service {
        attrs, vis, ident, ..
    } = service;
    let methods = service.methods.iter().map(|method| {
        let Method {
            attrs,
            ident,
            context,
            args,
            output,
            ..
        } = method;
        let context = context
            .as_ref()
            .map(|cx| quote!(#cx: &::ferry::__private::Context,));
        // The server receives a stream argument: an `Incoming` of its items.
        let upload_position = method.upload.as_ref().map(|(position, _)| *position);
        let args = args.iter().enumerate().map(|(position, (name, ty))| {
            match (&method.upload, upload_position == Some(position)) {
                (Some((_, item)), true) => quote!(#name: ::ferry::Incoming<#item>),
                _ => quote!(#name: #ty),
            }
        });
        quote! {
            #(#attrs)*
            fn #ident(&self, #context #(#args),*)
                -> impl ::core::future::Future<Output = #output> + ::core::marker::Send;
        }
    });
    quote! {
        #(#attrs)*
        #vis trait #ident: ::core::marker::Send + ::core::marker::Sync + 'static {
            #(#methods)*
        }
    }
}

fn expand_info(service: &Service) -> TokenStream {
    let info = info_ident(service);
    let wire_name = &service.wire_name;
    let canonical = canonical_signature(service);
    let method_names = service.methods.iter().map(|m| m.ident.to_string());
    let vis = &service.vis;
    let doc = format!(
        "Wire identity of the `{}` ferry service: its name, signature hash and method \
         names, as the handshake checks them (see `ferry::contract`).",
        service.ident
    );
    let schemas = expand_schemas(service);
    quote! {
        #[doc = #doc]
        #vis const #info: ::ferry::contract::ServiceInfo = {
            #schemas
            ::ferry::contract::ServiceInfo::new(#wire_name, #canonical, &[#(#method_names),*])
                .with_schemas(__ferry_method_schemas)
        };
    }
}

/// `fn __ferry_method_schemas()`: traces each method's argument and return types once, on
/// first use, into a static table. `Context` is not an argument; a `Streaming<T>` argument
/// or return value is a stream of `T`.
fn expand_schemas(service: &Service) -> TokenStream {
    let wire_name = &service.wire_name;
    let methods = service.methods.iter().map(|method| {
        let name = method.ident.to_string();
        let upload_position = method.upload.as_ref().map(|(position, _)| *position);
        let args = method.args.iter().enumerate().map(|(position, (_, ty))| {
            match (&method.upload, upload_position == Some(position)) {
                (Some((_, item)), true) => {
                    quote!(.arg(::ferry::__private::TypeSchema::stream_of::<#item>()))
                }
                _ => quote!(.arg(::ferry::__private::TypeSchema::of::<#ty>())),
            }
        });
        let returns = match (&method.stream_output, &method.stream_error) {
            (Some(item), Some(error)) => quote!(
                ::ferry::__private::TypeSchema::stream_result_of::<#item, #error>()
            ),
            (Some(item), None) => quote!(::ferry::__private::TypeSchema::stream_of::<#item>()),
            (None, _) => {
                let output = &method.output;
                quote!(::ferry::__private::TypeSchema::of::<#output>())
            }
        };
        quote! {
            ::ferry::__private::MethodSchemaBuilder::new(#wire_name, #name)
                #(#args)*
                .returns(#returns)?
        }
    });
    quote! {
        fn __ferry_method_schemas() -> &'static ::ferry::__private::SchemaTable {
            static SCHEMAS: ::ferry::__private::SchemaCell = ::ferry::__private::SchemaCell::new();
            SCHEMAS.get_or_init(|| {
                ::core::result::Result::Ok(::core::convert::From::from([#(#methods),*]))
            })
        }
    }
}

fn expand_client(service: &Service) -> TokenStream {
    let vis = &service.vis;
    let trait_ident = &service.ident;
    let client = format_ident!("{}Client", service.ident);
    let info = info_ident(service);
    let doc = format!(
        "Typed client of the `{trait_ident}` ferry service.\n\n\
         Cheap to clone: clones share one connection, and calls made from many tasks at once \
         are in flight together on it. Every method returns `Err(ferry::Error)` when the call \
         could not be made or answered; see [`ferry::Error`](::ferry::Error)."
    );
    let methods = service.methods.iter().enumerate().map(|(index, method)| {
        let index = u16::try_from(index).unwrap_or(u16::MAX);
        let Method {
            attrs,
            ident,
            args,
            output,
            ..
        } = method;
        let docs = attrs.iter().filter(|attr| attr.path().is_ident("doc"));
        let params = args.iter().map(|(name, ty)| quote!(#name: #ty));
        let encoded = encoded_args(method);
        // The client receives a reply stream: an `Incoming` of its items.
        let returns = match (&method.stream_output, &method.stream_error) {
            (Some(item), Some(error)) => {
                quote!(::core::result::Result<::ferry::Incoming<#item>, #error>)
            }
            (Some(item), None) => quote!(::ferry::Incoming<#item>),
            (None, _) => quote!(#output),
        };
        let call_doc =
            format!("Calls `{trait_ident}::{ident}` on the server and waits for its reply.");
        let body = match (&method.stream_output, &method.stream_error, &method.upload) {
            (Some(item), Some(error), _) => quote! {
                self.client.call_streaming_result::<_, #item, #error>(#index, #encoded).await
            },
            (Some(item), None, _) => quote! {
                self.client.call_streaming::<_, #item>(#index, #encoded).await
            },
            (None, _, Some((position, item))) => {
                let upload = &args[*position].0;
                quote! {
                    self.client.call_upload::<_, #output, #item>(#index, #encoded, #upload).await
                }
            }
            (None, _, None) => quote! {
                self.client.call::<_, #output>(#index, #encoded).await
            },
        };
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
    });
    quote! {
        #[doc = #doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #vis struct #client {
            client: ::ferry::Client,
        }

        impl #client {
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

            /// The untyped client underneath (connection state, options).
            pub fn client(&self) -> &::ferry::Client {
                &self.client
            }

            #(#methods)*
        }
    }
}

fn expand_blocking_client(service: &Service) -> TokenStream {
    let vis = &service.vis;
    let trait_ident = &service.ident;
    let client = format_ident!("{}Client", service.ident);
    let blocking = format_ident!("{}BlockingClient", service.ident);
    let doc = format!(
        "Blocking client of the `{trait_ident}` ferry service, for code without an async \
         runtime (plain threads, `main` without `#[tokio::main]`).\n\n\
         Each call parks the calling thread until the reply arrives; the work runs on one \
         small runtime thread shared by all blocking clients of the process (see \
         `ferry::blocking`). Calling it from inside an async runtime fails with \
         `ErrorKind::Usage`: use [`{client}`] there. Cheap to clone; clones share one \
         connection and may be used from many threads at once."
    );
    let methods = service.methods.iter().map(|method| {
        let Method {
            attrs,
            ident,
            args,
            output,
            ..
        } = method;
        let docs = attrs.iter().filter(|attr| attr.path().is_ident("doc"));
        let names = args.iter().map(|(name, _)| name);
        let params = args.iter().map(|(name, ty)| quote!(#name: #ty));
        match (&method.stream_output, &method.stream_error) {
            (Some(item), Some(error)) => quote! {
                #(#docs)*
                pub fn #ident(&self, #(#params),*)
                    -> ::core::result::Result<
                        ::core::result::Result<::ferry::blocking::BlockingStream<#item>, #error>,
                        ::ferry::Error,
                    >
                {
                    ::ferry::blocking::block_on(self.client.#ident(#(#names),*))
                        .map(|reply| reply.map(::ferry::blocking::BlockingStream::new))
                }
            },
            (Some(item), None) => quote! {
                #(#docs)*
                pub fn #ident(&self, #(#params),*)
                    -> ::core::result::Result<::ferry::blocking::BlockingStream<#item>, ::ferry::Error>
                {
                    ::ferry::blocking::block_on(self.client.#ident(#(#names),*))
                        .map(::ferry::blocking::BlockingStream::new)
                }
            },
            (None, _) => quote! {
                #(#docs)*
                pub fn #ident(&self, #(#params),*)
                    -> ::core::result::Result<#output, ::ferry::Error>
                {
                    ::ferry::blocking::block_on(self.client.#ident(#(#names),*))
                }
            },
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #vis struct #blocking {
            client: #client,
        }

        impl #blocking {
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

            /// The async client on the same connection.
            pub fn into_async(self) -> #client {
                self.client
            }

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

fn expand_server(service: &Service) -> TokenStream {
    let vis = &service.vis;
    let trait_ident = &service.ident;
    let server = format_ident!("{}Server", service.ident);
    let info = info_ident(service);
    let doc = format!(
        "Serves an implementation of the `{trait_ident}` ferry service: pass it to \
         `ferry::Server::serve`."
    );
    let arms = service.methods.iter().enumerate().map(|(index, method)| {
        let index = u16::try_from(index).unwrap_or(u16::MAX);
        let Method {
            ident,
            context,
            args,
            ..
        } = method;
        let names: Vec<_> = args.iter().map(|(name, _)| name).collect();
        let upload_position = method.upload.as_ref().map(|(position, _)| *position);
        // The stream argument travels as `()` in the tuple, its items in frames of their own.
        let patterns = names.iter().enumerate().map(|(position, name)| {
            if Some(position) == upload_position {
                quote!(_)
            } else {
                quote!(#name)
            }
        });
        let types = args.iter().enumerate().map(|(position, (_, ty))| {
            if Some(position) == upload_position {
                quote!(())
            } else {
                quote!(#ty)
            }
        });
        let decode = if names.is_empty() {
            quote!()
        } else {
            quote! {
                let (#(#patterns,)*) = match call.args::<(#(#types,)*)>() {
                    ::core::result::Result::Ok(args) => args,
                    ::core::result::Result::Err(err) => {
                        return ::ferry::contract::Handler::bad_arguments(err);
                    }
                };
            }
        };
        let upload = method.upload.as_ref().map(|(position, item)| {
            let name = &args[*position].0;
            quote!(let #name = call.upload::<#item>();)
        });
        let reply = match (&method.stream_output, &method.stream_error) {
            (Some(_), Some(_)) => quote!(call.reply_stream_result(output).await;),
            (Some(_), None) => quote!(call.reply_stream(output).await;),
            (None, _) => quote!(call.reply(&output).await;),
        };
        let context = context.as_ref().map(|_| quote!(call.context(),));
        quote! {
            #index => {
                #decode
                #upload
                let service = ::ferry::__private::Arc::clone(&self.service);
                ::ferry::contract::Handler::run(async move {
                    let output = <S as #trait_ident>::#ident(&*service, #context #(#names),*).await;
                    #reply
                })
            }
        }
    });
    quote! {
        #[doc = #doc]
        #vis struct #server<S> {
            service: ::ferry::__private::Arc<S>,
        }

        impl<S: #trait_ident> #server<S> {
            /// Wraps an implementation of the service.
            pub fn new(service: S) -> Self {
                Self { service: ::ferry::__private::Arc::new(service) }
            }

            /// Wraps an implementation that is shared with other code.
            pub fn from_arc(service: ::ferry::__private::Arc<S>) -> Self {
                Self { service }
            }
        }

        impl<S> ::core::clone::Clone for #server<S> {
            fn clone(&self) -> Self {
                Self { service: ::ferry::__private::Arc::clone(&self.service) }
            }
        }

        impl<S> ::core::fmt::Debug for #server<S> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(::core::stringify!(#server)).finish_non_exhaustive()
            }
        }

        impl<S: #trait_ident> ::ferry::contract::ServiceDispatch for #server<S> {
            fn info(&self) -> &'static ::ferry::contract::ServiceInfo {
                &#info
            }

            fn dispatch(
                &self,
                method: u16,
                call: ::ferry::contract::Call,
            ) -> ::ferry::contract::Handler {
                match method {
                    #(#arms)*
                    _ => ::ferry::contract::Handler::unknown_method(method),
                }
            }
        }
    }
}

/// Asserts, with the span of each type, that arguments and return types are serde types, so a
/// missing derive is reported where the type is written.
fn expand_type_checks(service: &Service) -> TokenStream {
    let checks = service.methods.iter().flat_map(|method| {
        let args = method.args.iter().map(|(_, ty)| {
            let ty = streaming_or_self(ty);
            quote_spanned! {ty.span()=>
                ::ferry::__private::assert_wire_type::<#ty>();
            }
        });
        // A `Result<Streaming<T>, E>` sends `T` as items and `E` in its first reply.
        let outputs = match (&method.stream_output, &method.stream_error) {
            (Some(item), Some(error)) => vec![item.clone(), error.clone()],
            _ => vec![streaming_or_self(&method.output)],
        };
        let outputs = outputs.into_iter().map(|output| {
            quote_spanned! {output.span()=>
                ::ferry::__private::assert_wire_type::<#output>();
            }
        });
        args.chain(outputs).collect::<Vec<_>>()
    });
    quote! {
        const _: () = {
            #[allow(dead_code)]
            fn __ferry_wire_types() {
                #(#checks)*
            }
        };
    }
}

/// The item type of a `Streaming<T>`, or the type itself: what must be a serde type.
fn streaming_or_self(ty: &Type) -> Type {
    crate::parse::streaming_item(ty).unwrap_or_else(|| ty.clone())
}

/// The argument tuple a client sends: references to the arguments, `()` in place of a
/// stream argument.
fn encoded_args(method: &Method) -> TokenStream {
    if method.args.is_empty() {
        return quote!(&::ferry::__private::NoArgs);
    }
    let upload_position = method.upload.as_ref().map(|(position, _)| *position);
    let items = method.args.iter().enumerate().map(|(position, (name, _))| {
        if Some(position) == upload_position {
            quote!(&())
        } else {
            quote!(&#name)
        }
    });
    quote!(&(#(#items,)*))
}

#[cfg(test)]
mod tests {
    use super::upper_snake;

    #[test]
    fn constant_names() {
        assert_eq!(upper_snake("Calc"), "CALC");
        assert_eq!(upper_snake("DocCalc"), "DOC_CALC");
        assert_eq!(upper_snake("HTTPApi"), "HTTP_API");
        assert_eq!(upper_snake("Calc2Fast"), "CALC2_FAST");
        assert_eq!(upper_snake("calc_v0"), "CALC_V0");
    }
}
