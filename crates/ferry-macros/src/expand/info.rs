//! `{TRAIT}_SERVICE_INFO`: the service's wire identity (name, canonical signature, method
//! names) and the per-method schemas the handshake compares.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Type;

use super::upload_position;
use crate::parse::{Method, Service};

/// The canonical signature string hashed into the handshake (documented in docs/protocol.md):
/// `service <name> { <method>(<arg types>)-><return type>; ... }`, types with whitespace removed.
fn canonical_signature(service: &Service) -> String {
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
pub(super) fn info_ident(service: &Service) -> syn::Ident {
    format_ident!(
        "{}_SERVICE_INFO",
        upper_snake(&service.ident.to_string()),
        span = service.ident.span()
    )
}

/// `DocCalc` -> `DOC_CALC`, `HTTPApi` -> `HTTP_API`, `Calc2` -> `CALC2`.
fn upper_snake(name: &str) -> String {
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

/// In: the service. Out: `pub const CALC_SERVICE_INFO: ServiceInfo = ...`, with the
/// canonical signature and the method names, and the schemas of [`expand_schemas`].
pub(super) fn expand_info(service: &Service) -> TokenStream {
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
/// first use, into a static table (one [`method_schema`] per method).
fn expand_schemas(service: &Service) -> TokenStream {
    let methods = service
        .methods
        .iter()
        .map(|method| method_schema(&service.wire_name, method));
    quote! {
        fn __ferry_method_schemas() -> &'static ::ferry::__private::SchemaTable {
            static SCHEMAS: ::ferry::__private::SchemaCell = ::ferry::__private::SchemaCell::new();
            SCHEMAS.get_or_init(|| {
                ::core::result::Result::Ok(::core::convert::From::from([#(#methods),*]))
            })
        }
    }
}

/// In: one method. Out: `MethodSchemaBuilder::new(service, "add").arg(..)...returns(..)?`.
/// `Context` is not an argument; a `Streaming<T>` argument or return value is a stream of
/// `T`, a `Result<Streaming<T>, E>` a stream result.
fn method_schema(wire_name: &str, method: &Method) -> TokenStream {
    let name = method.ident.to_string();
    let upload_position = upload_position(method);
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
