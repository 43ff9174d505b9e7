//! The first difference between two method schemas, as a message for people.

use std::fmt;

use super::{Body, MethodSchema, Shape, TypeSchema};

/// Where two schemas of one method first differ: "here" is the local side, "on the server"
/// the peer's.
///
/// Displayed as, for example, ``method `job`: `Job` in the return value: struct `Job`
/// field 0 is `name` here and `owner` on the server``.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Difference {
    /// The method's name.
    pub method: String,
    /// Which part of the call: `argument 0`, `the return value`.
    pub part: String,
    /// The place inside it, such as `Job.state` (empty for the part itself).
    pub at: String,
    /// What differs there.
    pub detail: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "method `{}`: ", self.method)?;
        if self.at.is_empty() {
            write!(f, "{}: {}", self.part, self.detail)
        } else {
            write!(f, "`{}` in {}: {}", self.at, self.part, self.detail)
        }
    }
}

pub(super) fn diff(here: &MethodSchema, there: &MethodSchema) -> Option<Difference> {
    let found = |part: String, at: String, detail: String| Difference {
        method: here.name.clone(),
        part,
        at,
        detail,
    };
    if here.args.len() != there.args.len() {
        let detail = format!(
            "{} here and {} on the server",
            count(here.args.len(), "argument"),
            count(there.args.len(), "argument")
        );
        return Some(found("its arguments".to_owned(), String::new(), detail));
    }
    let parts = here.args.iter().zip(&there.args).enumerate();
    let parts = parts.map(|(i, pair)| (format!("argument {i}"), pair));
    let returns = (
        "the return value".to_owned(),
        (&here.returns, &there.returns),
    );
    for (part, (a, b)) in parts.chain(std::iter::once(returns)) {
        let mut path = Vec::new();
        if let Some(detail) = type_schema(a, b, &mut path) {
            return Some(found(part, path.concat(), detail));
        }
    }
    None
}

fn type_schema(a: &TypeSchema, b: &TypeSchema, path: &mut Vec<String>) -> Option<String> {
    match (a, b) {
        (TypeSchema::Value(a), TypeSchema::Value(b))
        | (TypeSchema::Stream(a), TypeSchema::Stream(b)) => shape(a, b, path),
        (
            TypeSchema::StreamResult { item, error },
            TypeSchema::StreamResult {
                item: their_item,
                error: their_error,
            },
        ) => shape(item, their_item, path).or_else(|| {
            path.push("error".to_owned());
            let found = shape(error, their_error, path);
            if found.is_none() {
                path.pop();
            }
            found
        }),
        (here, there) => Some(format!(
            "{} here and {} on the server",
            kind(here),
            kind(there)
        )),
    }
}

/// What a type is, in a sentence about a difference.
fn kind(ty: &TypeSchema) -> &'static str {
    match ty {
        TypeSchema::Value(_) => "a single value",
        TypeSchema::Stream(_) => "a stream",
        TypeSchema::StreamResult { .. } => "a stream after a result",
    }
}

fn shape(a: &Shape, b: &Shape, path: &mut Vec<String>) -> Option<String> {
    let nested = |path: &mut Vec<String>, segment: &str, a: &Shape, b: &Shape| {
        path.push(segment.to_owned());
        let found = shape(a, b, path);
        if found.is_none() {
            path.pop();
        }
        found
    };
    match (a, b) {
        (Shape::Primitive(x), Shape::Primitive(y)) if x == y => None,
        (Shape::Option(x), Shape::Option(y)) => shape(x, y, path),
        (Shape::Seq(x), Shape::Seq(y)) => nested(path, "[]", x, y),
        (Shape::Map(k1, v1), Shape::Map(k2, v2)) => {
            nested(path, "[key]", k1, k2).or_else(|| nested(path, "[]", v1, v2))
        }
        (Shape::Tuple(xs), Shape::Tuple(ys)) if xs.len() == ys.len() => xs
            .iter()
            .zip(ys)
            .enumerate()
            .find_map(|(i, (x, y))| nested(path, &format!(".{i}"), x, y)),
        (Shape::Ref(x), Shape::Ref(y)) if x == y => None,
        (Shape::Struct { name: n1, body: b1 }, Shape::Struct { name: n2, body: b2 })
            if n1 == n2 =>
        {
            let root = path.is_empty();
            if root {
                path.push(n1.clone());
            }
            let found = body(&format!("struct `{n1}`"), b1, b2, path);
            if found.is_none() && root {
                path.pop();
            }
            found
        }
        (
            Shape::Enum {
                name: n1,
                variants: v1,
            },
            Shape::Enum {
                name: n2,
                variants: v2,
            },
        ) if n1 == n2 => {
            let root = path.is_empty();
            if root {
                path.push(n1.clone());
            }
            let found = variants(n1, v1, v2, path);
            if found.is_none() && root {
                path.pop();
            }
            found
        }
        _ => Some(format!(
            "{} here and {} on the server",
            describe(a),
            describe(b)
        )),
    }
}

fn variants(
    name: &str,
    here: &[super::Variant],
    there: &[super::Variant],
    path: &mut Vec<String>,
) -> Option<String> {
    for (i, (a, b)) in here.iter().zip(there).enumerate() {
        if a.name != b.name {
            return Some(format!(
                "enum `{name}` variant {i} is `{}` here and `{}` on the server",
                a.name, b.name
            ));
        }
        path.push(format!("::{}", a.name));
        let what = format!("variant `{name}::{}`", a.name);
        if let Some(found) = body(&what, &a.body, &b.body, path) {
            return Some(found);
        }
        path.pop();
    }
    (here.len() != there.len()).then(|| {
        format!(
            "enum `{name}` has {} here and {} on the server",
            count(here.len(), "variant"),
            count(there.len(), "variant")
        )
    })
}

fn body(what: &str, a: &Body, b: &Body, path: &mut Vec<String>) -> Option<String> {
    let mismatch = || {
        Some(format!(
            "{what} is {} here and {} on the server",
            describe_body(a),
            describe_body(b)
        ))
    };
    let segment = |path: &mut Vec<String>, seg: String, x: &Shape, y: &Shape| {
        path.push(seg);
        let found = shape(x, y, path);
        if found.is_none() {
            path.pop();
        }
        found
    };
    match (a, b) {
        (Body::Unit, Body::Unit) => None,
        (Body::Newtype(x), Body::Newtype(y)) => segment(path, ".0".to_owned(), x, y),
        (Body::Tuple(xs), Body::Tuple(ys)) if xs.len() == ys.len() => xs
            .iter()
            .zip(ys)
            .enumerate()
            .find_map(|(i, (x, y))| segment(path, format!(".{i}"), x, y)),
        (Body::Struct(xs), Body::Struct(ys)) => {
            for (i, (x, y)) in xs.iter().zip(ys).enumerate() {
                if x.name != y.name {
                    return Some(format!(
                        "{what} field {i} is `{}` here and `{}` on the server",
                        x.name, y.name
                    ));
                }
                if let Some(found) = segment(path, format!(".{}", x.name), &x.shape, &y.shape) {
                    return Some(found);
                }
            }
            (xs.len() != ys.len()).then(|| {
                format!(
                    "{what} has {} here and {} on the server",
                    count(xs.len(), "field"),
                    count(ys.len(), "field")
                )
            })
        }
        _ => mismatch(),
    }
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A short description of a shape's outermost layer: `u64`, `a sequence`, `struct `Job``.
fn describe(shape: &Shape) -> String {
    match shape {
        Shape::Primitive(p) => format!("`{}`", p.name()),
        Shape::Option(_) => "an option".to_owned(),
        Shape::Seq(_) => "a sequence".to_owned(),
        Shape::Map(..) => "a map".to_owned(),
        Shape::Tuple(items) => format!("a tuple of {}", count(items.len(), "element")),
        Shape::Struct { name, .. } => format!("struct `{name}`"),
        Shape::Enum { name, .. } => format!("enum `{name}`"),
        Shape::Ref(name) => format!("a reference to the enclosing `{name}`"),
    }
}

fn describe_body(body: &Body) -> String {
    match body {
        Body::Unit => "a unit".to_owned(),
        Body::Newtype(_) => "a newtype".to_owned(),
        Body::Tuple(items) => format!("a tuple of {}", count(items.len(), "element")),
        Body::Struct(fields) => format!("a struct of {}", count(fields.len(), "field")),
    }
}
