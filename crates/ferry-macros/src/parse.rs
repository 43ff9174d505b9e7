//! Reading a service trait into a [`Service`] model, rejecting what ferry cannot serve.

use proc_macro2::TokenStream;
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, Ident, ItemTrait, LitStr, Pat, ReturnType, Signature, TraitItem, TraitItemFn,
    Type, Visibility,
};

/// A service trait as the expansion needs it.
pub(crate) struct Service {
    /// Attributes of the trait (docs and others), kept on the rewritten trait.
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) ident: Ident,
    /// The service name sent in the handshake.
    pub(crate) wire_name: String,
    pub(crate) methods: Vec<Method>,
}

/// One `async fn` of the trait.
pub(crate) struct Method {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) ident: Ident,
    /// Whether the first argument after `&self` is `&ferry::Context`.
    pub(crate) context: Option<Ident>,
    pub(crate) args: Vec<(Ident, Type)>,
    /// The declared return type; `()` when there is none.
    pub(crate) output: Type,
    /// The item type when the method returns `ferry::Streaming<T>` or
    /// `Result<ferry::Streaming<T>, E>`.
    pub(crate) stream_output: Option<Type>,
    /// `E` when the method returns `Result<ferry::Streaming<T>, E>`: the server answers
    /// `Result<(), E>` before the first item.
    pub(crate) stream_error: Option<Type>,
    /// The position in `args` and the item type of a `ferry::Streaming<T>` argument.
    pub(crate) upload: Option<(usize, Type)>,
    /// The parenthesized parameter list, where errors about the arguments as a whole point.
    pub(crate) params_span: proc_macro2::Span,
}

/// Parses the attribute arguments and the trait.
pub(crate) fn parse(attr: TokenStream, item: TokenStream) -> syn::Result<Service> {
    let wire_name = parse_attr(attr)?;
    let item: ItemTrait = syn::parse2(item).map_err(|err| {
        syn::Error::new(
            err.span(),
            "#[ferry::service] goes on a trait: `pub trait Calc { async fn add(&self, a: i64, b: i64) -> i64; }`",
        )
    })?;
    check_trait(&item)?;
    let mut methods = Vec::new();
    for trait_item in item.items {
        match trait_item {
            TraitItem::Fn(method) => methods.push(parse_method(method)?),
            other => {
                return Err(syn::Error::new(
                    other.span(),
                    "ferry service traits may only contain `async fn` methods",
                ))
            }
        }
    }
    if methods.len() > usize::from(u16::MAX) {
        return Err(syn::Error::new(
            item.ident.span(),
            "a ferry service has at most 65535 methods",
        ));
    }
    let wire_name = wire_name.unwrap_or_else(|| item.ident.to_string());
    Ok(Service {
        attrs: item.attrs,
        vis: item.vis,
        ident: item.ident,
        wire_name,
        methods,
    })
}

/// Not generic, not `unsafe`, no supertraits.
fn check_trait(item: &ItemTrait) -> syn::Result<()> {
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            item.generics.span(),
            "ferry service traits cannot be generic: both sides must agree on one concrete signature",
        ));
    }
    if let Some(unsafety) = &item.unsafety {
        return Err(syn::Error::new(
            unsafety.span(),
            "ferry service traits cannot be `unsafe`",
        ));
    }
    if !item.supertraits.is_empty() {
        return Err(syn::Error::new(
            item.supertraits.span(),
            "ferry service traits cannot declare supertraits; the macro adds `Send + Sync + 'static`",
        ));
    }
    Ok(())
}

/// `name = "..."` or nothing.
fn parse_attr(attr: TokenStream) -> syn::Result<Option<String>> {
    if attr.is_empty() {
        return Ok(None);
    }
    let mut name = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            let lit: LitStr = meta.value()?.parse()?;
            let value = lit.value();
            if value.is_empty() || value.len() > 255 {
                return Err(syn::Error::new(
                    lit.span(),
                    "the service name must be 1 to 255 bytes long",
                ));
            }
            name = Some(value);
            Ok(())
        } else {
            Err(meta.error("unknown argument; the only one is `name = \"...\"`"))
        }
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(name)
}

/// One trait method: checked by the functions below, each rejecting one kind of mistake
/// with an error at the offending tokens.
fn parse_method(method: TraitItemFn) -> syn::Result<Method> {
    check_signature(&method)?;
    let sig = &method.sig;
    let mut inputs = sig.inputs.iter();
    check_receiver(inputs.next(), sig)?;
    let (context, args) = parse_args(inputs)?;
    let upload = find_upload(&args)?;
    let output = parse_output(&sig.output)?;
    let (stream_output, stream_error) = stream_output(&output)?;
    if let (Some(_), Some((index, _))) = (&stream_output, &upload) {
        return Err(syn::Error::new(
            args[*index].1.span(),
            "a ferry service method cannot both take and return a `ferry::Streaming`; use two methods",
        ));
    }
    let params_span = sig.paren_token.span.join();
    Ok(Method {
        attrs: method.attrs,
        ident: method.sig.ident,
        context,
        args,
        output,
        stream_output,
        stream_error,
        upload,
        params_span,
    })
}

/// `async`, no default body, not generic, not `unsafe`, not variadic.
fn check_signature(method: &TraitItemFn) -> syn::Result<()> {
    let sig = &method.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "ferry service methods must be `async fn`",
        ));
    }
    if let Some(body) = &method.default {
        return Err(syn::Error::new(
            body.span(),
            "ferry service methods cannot have a default body",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "ferry service methods cannot be generic: arguments travel as concrete serde types",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        return Err(syn::Error::new(
            unsafety.span(),
            "ferry service methods cannot be `unsafe`",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new(
            variadic.span(),
            "ferry service methods cannot be variadic",
        ));
    }
    Ok(())
}

/// The first input must be a plain `&self`.
fn check_receiver(first: Option<&FnArg>, sig: &Signature) -> syn::Result<()> {
    match first {
        Some(FnArg::Receiver(receiver))
            if receiver.reference.is_some() && receiver.mutability.is_none() =>
        {
            if let Some((_, Some(lifetime))) = &receiver.reference {
                return Err(syn::Error::new(
                    lifetime.span(),
                    "ferry service methods take a plain `&self`",
                ));
            }
            Ok(())
        }
        Some(FnArg::Receiver(receiver)) => Err(syn::Error::new(
            receiver.span(),
            "ferry service methods take `&self`: the server shares one implementation between concurrent calls",
        )),
        Some(other) => Err(syn::Error::new(
            other.span(),
            "ferry service methods take `&self` as their first argument",
        )),
        None => Err(syn::Error::new(
            sig.paren_token.span.join(),
            "ferry service methods take `&self` as their first argument",
        )),
    }
}

/// One input after `&self`: the context, or an argument that travels.
enum Input {
    Context(Ident),
    Arg(Ident, Box<Type>),
}

/// The inputs after `&self`: the context's name, if the method takes it, and the
/// arguments.
type Inputs = (Option<Ident>, Vec<(Ident, Type)>);

/// Reads the inputs after `&self`.
fn parse_args<'a>(inputs: impl Iterator<Item = &'a FnArg>) -> syn::Result<Inputs> {
    let mut context = None;
    let mut args = Vec::new();
    for (index, input) in inputs.enumerate() {
        match parse_input(index, input)? {
            Input::Context(ident) => context = Some(ident),
            Input::Arg(ident, ty) => args.push((ident, *ty)),
        }
    }
    for (_, ty) in &args {
        if streaming_item(ty).is_none() {
            if let Some(inner) = nested_streaming(ty) {
                return Err(syn::Error::new(
                    inner.span(),
                    "`ferry::Streaming` must be the whole type of an argument, not part of one",
                ));
            }
        }
    }
    Ok((context, args))
}

/// Input number `index` after `&self`: a plain name with an owned, concrete type, or
/// `&Context` in first place.
fn parse_input(index: usize, input: &FnArg) -> syn::Result<Input> {
    let FnArg::Typed(typed) = input else {
        return Err(syn::Error::new(input.span(), "unexpected `self`"));
    };
    let ident = match &*typed.pat {
        Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => pat.ident.clone(),
        other => {
            return Err(syn::Error::new(
                other.span(),
                "ferry service arguments must be plain names like `a: i64`",
            ))
        }
    };
    if let Type::Reference(reference) = &*typed.ty {
        if index == 0 && is_context(&reference.elem) && reference.mutability.is_none() {
            return Ok(Input::Context(ident));
        }
        if is_context(&reference.elem) {
            return Err(syn::Error::new(
                typed.ty.span(),
                "`&ferry::Context` must be the first argument after `&self`",
            ));
        }
        return Err(syn::Error::new(
            typed.ty.span(),
            "ferry service arguments must be owned types (they are deserialized on the server): use `String` for `&str`, `Vec<T>` for `&[T]`",
        ));
    }
    if contains_impl_trait(&typed.ty) {
        return Err(syn::Error::new(
            typed.ty.span(),
            "ferry service arguments must be concrete types, not `impl Trait`",
        ));
    }
    Ok(Input::Arg(ident, typed.ty.clone()))
}

/// The position and item type of the one `Streaming<T>` argument, if any.
fn find_upload(args: &[(Ident, Type)]) -> syn::Result<Option<(usize, Type)>> {
    let mut upload = None;
    for (index, (_, ty)) in args.iter().enumerate() {
        if let Some(item) = streaming_item(ty) {
            if upload.is_some() {
                return Err(syn::Error::new(
                    ty.span(),
                    "a ferry service method takes at most one `ferry::Streaming` argument",
                ));
            }
            upload = Some((index, item));
        }
    }
    Ok(upload)
}

/// The declared return type (`()` when there is none): owned and concrete.
fn parse_output(output: &ReturnType) -> syn::Result<Type> {
    let ReturnType::Type(_, ty) = output else {
        return Ok(syn::parse_quote!(()));
    };
    if let Type::Reference(_) = &**ty {
        return Err(syn::Error::new(
            ty.span(),
            "ferry service methods must return an owned type (it is serialized to the client)",
        ));
    }
    if contains_impl_trait(ty) {
        return Err(syn::Error::new(
            ty.span(),
            "ferry service methods must return a concrete type, not `impl Trait`",
        ));
    }
    Ok((**ty).clone())
}

/// The item type of a returned stream, and `E` of a `Result<Streaming<T>, E>`; a
/// `Streaming` anywhere else in the return type is an error.
fn stream_output(output: &Type) -> syn::Result<(Option<Type>, Option<Type>)> {
    let (stream_output, stream_error) = match (streaming_item(output), fallible_stream(output)) {
        (Some(item), _) => (Some(item), None),
        (None, Some((item, error))) => (Some(item), Some(error)),
        (None, None) => (None, None),
    };
    let misplaced = match (&stream_output, &stream_error) {
        (_, Some(error)) => streaming_item(error)
            .map(|_| error)
            .or(nested_streaming(error)),
        (None, None) => nested_streaming(output),
        (Some(_), None) => None,
    };
    if let Some(inner) = misplaced {
        return Err(syn::Error::new(
            inner.span(),
            "`ferry::Streaming` must be the whole return type or the `Ok` type of a `Result` (`Result<ferry::Streaming<T>, E>`), not part of another type; to report failures while streaming, send them as items (`ferry::Streaming<Result<T, E>>`)",
        ));
    }
    Ok((stream_output, stream_error))
}

/// `Context`, `ferry::Context` or `::ferry::Context`.
fn is_context(ty: &Type) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Context" && segment.arguments.is_none()),
        _ => false,
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    matches!(ty, Type::ImplTrait(_))
}

/// `T` of `Streaming<T>` / `ferry::Streaming<T>`.
pub(crate) fn streaming_item(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    let segment = path.path.segments.last()?;
    if segment.ident != "Streaming" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    match args.args.first() {
        Some(syn::GenericArgument::Type(item)) if args.args.len() == 1 => Some(item.clone()),
        _ => None,
    }
}

/// `(T, E)` of `Result<Streaming<T>, E>` (any path ending in `Result` with two type
/// arguments, such as `std::result::Result`).
fn fallible_stream(ty: &Type) -> Option<(Type, Type)> {
    let Type::Path(path) = ty else {
        return None;
    };
    let segment = path.path.segments.last()?;
    if segment.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    match (args.args.len(), args.args.first(), args.args.last()) {
        (2, Some(syn::GenericArgument::Type(ok)), Some(syn::GenericArgument::Type(error))) => {
            Some((streaming_item(ok)?, error.clone()))
        }
        _ => None,
    }
}

/// A `Streaming<..>` somewhere inside `ty` (in generic arguments, tuples, arrays, slices).
fn nested_streaming(ty: &Type) -> Option<&Type> {
    let inner: Vec<&Type> = match ty {
        Type::Path(path) => path
            .path
            .segments
            .iter()
            .flat_map(|segment| match &segment.arguments {
                syn::PathArguments::AngleBracketed(args) => args
                    .args
                    .iter()
                    .filter_map(|arg| match arg {
                        syn::GenericArgument::Type(ty) => Some(ty),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect(),
        Type::Tuple(tuple) => tuple.elems.iter().collect(),
        Type::Array(array) => vec![&*array.elem],
        Type::Slice(slice) => vec![&*slice.elem],
        Type::Paren(paren) => vec![&*paren.elem],
        Type::Group(group) => vec![&*group.elem],
        _ => Vec::new(),
    };
    inner.into_iter().find_map(|ty| {
        if streaming_item(ty).is_some() {
            Some(ty)
        } else {
            nested_streaming(ty)
        }
    })
}

/// Whether `ty` is spelled `Vec<u8>` (under any path): a byte string that is handed over
/// by value (as a `Bytes`, without a copy) so that a large one can be written by reference.
pub(crate) fn is_byte_vec(ty: &Type) -> bool {
    is_byte_string(ty)
        && matches!(ty, Type::Path(path) if path.path.segments.last().is_some_and(|s| s.ident == "Vec"))
}

/// Whether `ty` is spelled as a byte string the runtime moves in bulk: `Vec<u8>` or `Bytes`
/// under any path (`std::vec::Vec<u8>`, `bytes::Bytes`). The runtime checks the real type,
/// so a type of another crate with the same name only passes through unchanged.
pub(crate) fn is_byte_string(ty: &Type) -> bool {
    let Type::Path(path) = ty else {
        return false;
    };
    if path.qself.is_some() {
        return false;
    }
    let Some(segment) = path.path.segments.last() else {
        return false;
    };
    match &segment.arguments {
        syn::PathArguments::None => segment.ident == "Bytes",
        syn::PathArguments::AngleBracketed(args) if segment.ident == "Vec" => {
            matches!(
                (args.args.len(), args.args.first()),
                (1, Some(syn::GenericArgument::Type(Type::Path(item))))
                    if item.qself.is_none() && item.path.is_ident("u8")
            )
        }
        _ => false,
    }
}
