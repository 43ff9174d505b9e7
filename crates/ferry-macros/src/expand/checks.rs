//! Compile-time checks that every type crossing the wire is a serde type, reported where
//! the type is written.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::Type;

use crate::parse::{Method, Service};

/// In: the service. Out: `const _: () = { fn __ferry_wire_types() { assert_wire_type::<T>();
/// ... } };`, one assertion per argument and return type, each with the span of its type so
/// a missing derive is reported where the type is written.
pub(super) fn expand_type_checks(service: &Service) -> TokenStream {
    let checks = service.methods.iter().flat_map(method_checks);
    quote! {
        const _: () = {
            #[allow(dead_code)]
            fn __ferry_wire_types() {
                #(#checks)*
            }
        };
    }
}

/// The assertions of one method: its arguments, then its return type. A `Streaming<T>`
/// sends `T`; a `Result<Streaming<T>, E>` sends `T` as items and `E` in its first reply.
fn method_checks(method: &Method) -> Vec<TokenStream> {
    let args = method.args.iter().map(|(_, ty)| streaming_or_self(ty));
    let outputs = match (&method.stream_output, &method.stream_error) {
        (Some(item), Some(error)) => vec![item.clone(), error.clone()],
        _ => vec![streaming_or_self(&method.output)],
    };
    args.chain(outputs)
        .map(|ty| assert_wire_type(&ty))
        .collect()
}

/// `assert_wire_type::<T>();` with the span of `T`.
fn assert_wire_type(ty: &Type) -> TokenStream {
    quote_spanned! {ty.span()=>
        ::ferry::__private::assert_wire_type::<#ty>();
    }
}

/// The item type of a `Streaming<T>`, or the type itself: what must be a serde type.
fn streaming_or_self(ty: &Type) -> Type {
    crate::parse::streaming_item(ty).unwrap_or_else(|| ty.clone())
}
