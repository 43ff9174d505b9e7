//! The trait as the user wrote it, each method returning a `Send` future.

use proc_macro2::TokenStream;
use quote::quote;

use super::upload_position;
use crate::parse::{Method, Service};

/// In: the trait's model. Out: `trait Calc: Send + Sync + 'static { ... }` with every
/// method rewritten by [`trait_method`].
pub(super) fn expand_trait(service: &Service) -> TokenStream {
    let Service {
        attrs, vis, ident, ..
    } = service;
    let methods = service.methods.iter().map(trait_method);
    quote! {
        #(#attrs)*
        #vis trait #ident: ::core::marker::Send + ::core::marker::Sync + 'static {
            #(#methods)*
        }
    }
}

/// In: `async fn add(&self, a: i64) -> i64`. Out: `fn add(&self, a: i64) -> impl Future<Output
/// = i64> + Send;`, with the context typed as `&Context` and a stream argument received as
/// an `Incoming` of its items.
fn trait_method(method: &Method) -> TokenStream {
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
    let upload_position = upload_position(method);
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
}
