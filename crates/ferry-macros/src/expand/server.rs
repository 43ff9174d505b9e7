//! `{Trait}Server<S>`: routes incoming calls to an implementation `S` of the trait.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

use super::info::info_ident;
use super::{args_span, method_index, upload_position};
use crate::parse::{is_byte_string, is_byte_vec, Method, Service};

/// In: the service. Out: the server struct, its constructors, `Clone`, `Debug` and its
/// `ServiceDispatch`.
pub(super) fn expand_server(service: &Service) -> TokenStream {
    let definition = server_struct(service);
    let impls = server_impls(service);
    let dispatch = dispatch_impl(service);
    quote! {
        #definition
        #impls
        #dispatch
    }
}

/// `{Trait}Server`.
fn server_ident(service: &Service) -> syn::Ident {
    format_ident!("{}Server", service.ident)
}

/// `pub struct CalcServer<S> { service: Arc<S> }`, documented.
fn server_struct(service: &Service) -> TokenStream {
    let vis = &service.vis;
    let server = server_ident(service);
    let doc = format!(
        "Serves an implementation of the `{}` ferry service: pass it to \
         `ferry::Server::serve`.",
        service.ident
    );
    quote! {
        #[doc = #doc]
        #vis struct #server<S> {
            service: ::ferry::__private::Arc<S>,
        }
    }
}

/// `new`, `from_arc`, and `Clone` and `Debug` without bounds on `S`.
fn server_impls(service: &Service) -> TokenStream {
    let trait_ident = &service.ident;
    let server = server_ident(service);
    quote! {
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
    }
}

/// `impl ServiceDispatch for CalcServer<S>`: the info, and a `match` on the method index
/// with one [`dispatch_arm`] per method.
fn dispatch_impl(service: &Service) -> TokenStream {
    let trait_ident = &service.ident;
    let server = server_ident(service);
    let info = info_ident(service);
    let arms = service
        .methods
        .iter()
        .enumerate()
        .map(|(index, method)| dispatch_arm(service, index, method));
    quote! {
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

/// In: method number `index`. Out: `0u16 => { decode; open the upload; run the method and
/// reply }`.
fn dispatch_arm(service: &Service, index: usize, method: &Method) -> TokenStream {
    let trait_ident = &service.ident;
    let index = method_index(index);
    let ident = &method.ident;
    let names = method.args.iter().map(|(name, _)| name);
    let decode = decode_args(method);
    let upload = method.upload.as_ref().map(|(position, item)| {
        let name = &method.args[*position].0;
        quote!(let #name = call.upload::<#item>();)
    });
    let reply = reply(method);
    let context = method.context.as_ref().map(|_| quote!(call.context(),));
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
}

/// `let (a, b,) = match call.args::<(i64, i64,)>() { ... }`: the arguments decoded, or the
/// call rejected. The stream argument travels as `()` in the tuple, its items in frames of
/// their own. Byte strings decode through `Bulk` (one copy for `Vec<u8>`, none for `Bytes`).
fn decode_args(method: &Method) -> TokenStream {
    if method.args.is_empty() {
        return quote!();
    }
    let upload_position = upload_position(method);
    let patterns = method
        .args
        .iter()
        .enumerate()
        .map(|(position, (name, ty))| {
            if Some(position) == upload_position {
                quote!(_)
            } else if is_byte_string(ty) {
                quote!(::ferry::__private::Bulk(#name))
            } else {
                quote!(#name)
            }
        });
    let types = method.args.iter().enumerate().map(|(position, (_, ty))| {
        if Some(position) == upload_position {
            quote!(())
        } else if is_byte_string(ty) {
            quote!(::ferry::__private::Bulk<#ty>)
        } else {
            quote!(#ty)
        }
    });
    // Spanned at the arguments: a non-serde argument type is reported there.
    let decoded = quote_spanned!(args_span(method)=> call.args::<(#(#types,)*)>());
    quote! {
        let (#(#patterns,)*) = match #decoded {
            ::core::result::Result::Ok(args) => args,
            ::core::result::Result::Err(err) => {
                return ::ferry::contract::Handler::bad_arguments(err);
            }
        };
    }
}

/// How the handler sends `output`: one reply, a stream, or a stream result.
fn reply(method: &Method) -> TokenStream {
    match (&method.stream_output, &method.stream_error) {
        (Some(_), Some(_)) => quote!(call.reply_stream_result(output).await;),
        (Some(_), None) => quote!(call.reply_stream(output).await;),
        // A `Vec<u8>` is handed over as a `Bytes` (no copy); a large one, like a large
        // `Bytes`, goes by reference.
        (None, _) if is_byte_vec(&method.output) => {
            quote!(call.reply(&::ferry::__private::BulkValue::new(output)).await;)
        }
        (None, _) if is_byte_string(&method.output) => {
            quote!(call.reply(&::ferry::__private::BulkRef(&output)).await;)
        }
        (None, _) => quote!(call.reply(&output).await;),
    }
}
