//! The canonical text of a schema (grammar in `docs/protocol.md`, section 10.2).
//!
//! No whitespace anywhere; names always quoted, with `"` and `\` escaped by a `\`.

use super::{Body, MethodSchema, Shape, TypeSchema};

pub(super) fn write_method(method: &MethodSchema, out: &mut String) {
    out.push('(');
    for (i, arg) in method.args.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_type(arg, out);
    }
    out.push_str(")->");
    write_type(&method.returns, out);
}

pub(super) fn write_type(ty: &TypeSchema, out: &mut String) {
    match ty {
        TypeSchema::Value(shape) => write_shape(shape, out),
        TypeSchema::Stream(shape) => {
            out.push_str("stream<");
            write_shape(shape, out);
            out.push('>');
        }
        TypeSchema::StreamResult { item, error } => {
            out.push_str("result<stream<");
            write_shape(item, out);
            out.push_str(">,");
            write_shape(error, out);
            out.push('>');
        }
    }
}

pub(super) fn write_shape(shape: &Shape, out: &mut String) {
    match shape {
        Shape::Primitive(p) => out.push_str(p.name()),
        Shape::Option(inner) => {
            out.push_str("option<");
            write_shape(inner, out);
            out.push('>');
        }
        Shape::Seq(item) => {
            out.push_str("seq<");
            write_shape(item, out);
            out.push('>');
        }
        Shape::Map(key, value) => {
            out.push_str("map<");
            write_shape(key, out);
            out.push(',');
            write_shape(value, out);
            out.push('>');
        }
        Shape::Tuple(items) => {
            out.push_str("tuple<");
            write_list(items, out);
            out.push('>');
        }
        Shape::Struct { name, body } => {
            out.push_str("struct");
            write_name(name, out);
            write_body(body, out);
        }
        Shape::Enum { name, variants } => {
            out.push_str("enum");
            write_name(name, out);
            out.push('{');
            for (i, variant) in variants.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_name(&variant.name, out);
                write_body(&variant.body, out);
            }
            out.push('}');
        }
        Shape::Ref(name) => {
            out.push_str("ref");
            write_name(name, out);
        }
    }
}

fn write_body(body: &Body, out: &mut String) {
    match body {
        Body::Unit => out.push_str("unit"),
        Body::Newtype(inner) => {
            out.push_str("newtype(");
            write_shape(inner, out);
            out.push(')');
        }
        Body::Tuple(items) => {
            out.push_str("tuple(");
            write_list(items, out);
            out.push(')');
        }
        Body::Struct(fields) => {
            out.push('{');
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_name(&field.name, out);
                out.push(':');
                write_shape(&field.shape, out);
            }
            out.push('}');
        }
    }
}

fn write_list(items: &[Shape], out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_shape(item, out);
    }
}

/// A name between double quotes, with `"` and `\` preceded by a `\`.
pub(super) fn write_name(name: &str, out: &mut String) {
    out.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}
