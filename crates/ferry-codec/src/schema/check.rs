//! Checking a JSON value against a shape before it is sent (section 6.2 of
//! `docs/protocol.md` says how each shape looks in JSON).

use std::fmt;

use serde_json::Value;

use super::{Body, MethodSchema, Primitive, Shape, TypeSchema};

/// A JSON value that does not have the shape a method expects.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct ValueMismatch {
    /// Where: `argument 1`, `argument 0.owner`, `argument 2[3]`.
    pub at: String,
    /// What the shape allows there.
    pub expected: String,
    /// What the value holds there.
    pub found: String,
}

impl fmt::Display for ValueMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}`: expected {}, found {}",
            self.at, self.expected, self.found
        )
    }
}

impl Shape {
    /// Checks that `value` is this shape in ferry's JSON format; `at` names the value in
    /// the error (`argument 0`).
    pub fn check_json(&self, value: &Value, at: &str) -> Result<(), ValueMismatch> {
        Checker {
            path: vec![at.to_owned()],
            enclosing: Vec::new(),
        }
        .check(self, value)
    }
}

impl MethodSchema {
    /// Checks a JSON array of arguments against this method's argument types. A stream
    /// argument must be `null` (its items travel apart, section 8.1).
    pub fn check_json_args(&self, args: &Value) -> Result<(), ValueMismatch> {
        let mismatch = |found: String| ValueMismatch {
            at: "the arguments".to_owned(),
            expected: format!("an array of {} arguments", self.args.len()),
            found,
        };
        let items: &[Value] = match args {
            Value::Array(items) => items,
            Value::Null if self.args.is_empty() => &[],
            other => return Err(mismatch(found(other))),
        };
        if items.len() != self.args.len() {
            return Err(mismatch(found(args)));
        }
        for (i, (ty, value)) in self.args.iter().zip(items).enumerate() {
            let at = format!("argument {i}");
            match ty {
                TypeSchema::Value(shape) => shape.check_json(value, &at)?,
                TypeSchema::Stream(_) | TypeSchema::StreamResult { .. } if value.is_null() => {}
                TypeSchema::Stream(_) | TypeSchema::StreamResult { .. } => {
                    return Err(ValueMismatch {
                        at,
                        expected: "null (a stream's items are sent apart)".to_owned(),
                        found: found(value),
                    })
                }
            }
        }
        Ok(())
    }
}

struct Checker<'a> {
    path: Vec<String>,
    enclosing: Vec<&'a Shape>,
}

impl<'a> Checker<'a> {
    fn fail(&self, expected: impl Into<String>, value: &Value) -> ValueMismatch {
        ValueMismatch {
            at: self.path.concat(),
            expected: expected.into(),
            found: found(value),
        }
    }

    fn nested(
        &mut self,
        segment: String,
        shape: &'a Shape,
        value: &Value,
    ) -> Result<(), ValueMismatch> {
        self.path.push(segment);
        self.check(shape, value)?;
        self.path.pop();
        Ok(())
    }

    fn check(&mut self, shape: &'a Shape, value: &Value) -> Result<(), ValueMismatch> {
        match shape {
            Shape::Primitive(p) => self.primitive(*p, value),
            Shape::Option(_) if value.is_null() => Ok(()),
            Shape::Option(inner) => self.check(inner, value),
            Shape::Seq(item) => {
                let Value::Array(items) = value else {
                    return Err(self.fail("an array", value));
                };
                for (i, v) in items.iter().enumerate() {
                    self.nested(format!("[{i}]"), item, v)?;
                }
                Ok(())
            }
            Shape::Map(key, item) => {
                let Value::Object(entries) = value else {
                    return Err(self.fail("an object (a map)", value));
                };
                for (k, v) in entries {
                    self.map_key(key, k)?;
                    self.nested(format!("[{k:?}]"), item, v)?;
                }
                Ok(())
            }
            Shape::Tuple(items) => self.array(items, value),
            Shape::Struct { name, body } => {
                self.enclosing.push(shape);
                self.body(&format!("struct `{name}`"), body, value)?;
                self.enclosing.pop();
                Ok(())
            }
            Shape::Enum { name, variants } => {
                let tagged = match value {
                    Value::String(tag) => Some((tag, None)),
                    Value::Object(o) if o.len() == 1 => o.iter().next().map(|(k, v)| (k, Some(v))),
                    _ => None,
                };
                let Some((tag, content)) = tagged else {
                    let expected = format!("enum `{name}`: a variant name or {{\"Variant\": ...}}");
                    return Err(self.fail(expected, value));
                };
                let Some(variant) = variants.iter().find(|v| v.name == *tag) else {
                    let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
                    let expected = format!("a variant of enum `{name}` ({})", names.join(", "));
                    return Err(self.fail(expected, &Value::String(tag.clone())));
                };
                self.enclosing.push(shape);
                self.path.push(format!("::{tag}"));
                let what = format!("variant `{name}::{tag}`");
                match (content, &variant.body) {
                    (None, Body::Unit) => {}
                    (None, _) => return Err(self.fail(format!("{what} with its value"), value)),
                    (Some(content), body) => self.body(&what, body, content)?,
                }
                self.path.pop();
                self.enclosing.pop();
                Ok(())
            }
            Shape::Ref(name) => {
                let target = self.enclosing.iter().rev().find(|s| match s {
                    Shape::Struct { name: n, .. } | Shape::Enum { name: n, .. } => n == name,
                    _ => false,
                });
                match target {
                    Some(target) => self.check(target, value),
                    None => {
                        Err(self.fail(format!("`{name}` (a reference outside its type)"), value))
                    }
                }
            }
        }
    }

    fn body(&mut self, what: &str, body: &'a Body, value: &Value) -> Result<(), ValueMismatch> {
        match body {
            Body::Unit if value.is_null() => Ok(()),
            Body::Unit => Err(self.fail(format!("null ({what})"), value)),
            Body::Newtype(inner) => self.check(inner, value),
            Body::Tuple(items) => self.array(items, value),
            Body::Struct(fields) => {
                let Value::Object(object) = value else {
                    return Err(self.fail(format!("an object ({what})"), value));
                };
                for key in object.keys() {
                    if !fields.iter().any(|f| f.name == *key) {
                        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                        let expected = format!("only the fields of {what} ({})", names.join(", "));
                        return Err(self.fail(expected, &Value::String(key.clone())));
                    }
                }
                for field in fields {
                    match object.get(&field.name) {
                        Some(v) => self.nested(format!(".{}", field.name), &field.shape, v)?,
                        None if matches!(field.shape, Shape::Option(_)) => {}
                        None => {
                            let expected = format!("field `{}` of {what}", field.name);
                            return Err(ValueMismatch {
                                at: self.path.concat(),
                                expected,
                                found: "no such field".to_owned(),
                            });
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn array(&mut self, items: &'a [Shape], value: &Value) -> Result<(), ValueMismatch> {
        match value {
            Value::Array(values) if values.len() == items.len() => {
                for (i, (s, v)) in items.iter().zip(values).enumerate() {
                    self.nested(format!("[{i}]"), s, v)?;
                }
                Ok(())
            }
            _ => Err(self.fail(format!("an array of {} elements", items.len()), value)),
        }
    }

    fn map_key(&mut self, shape: &'a Shape, key: &str) -> Result<(), ValueMismatch> {
        let key_value = match shape {
            Shape::Primitive(p) if is_integer(*p) => match key.parse::<i128>() {
                Ok(n) => number(n),
                Err(_) => Value::String(key.to_owned()),
            },
            _ => Value::String(key.to_owned()),
        };
        self.path.push(format!("[{key:?}]"));
        self.check(shape, &key_value)?;
        self.path.pop();
        Ok(())
    }

    fn primitive(&self, p: Primitive, value: &Value) -> Result<(), ValueMismatch> {
        let ok = match p {
            Primitive::Bool => value.is_boolean(),
            Primitive::F32 | Primitive::F64 => value.is_number() || value.is_null(),
            Primitive::Char => value.as_str().is_some_and(|s| s.chars().count() == 1),
            Primitive::String => value.is_string(),
            Primitive::Unit => value.is_null(),
            Primitive::Bytes => match value {
                Value::String(_) => true,
                Value::Array(items) => items.iter().all(|b| b.as_u64().is_some_and(|b| b <= 255)),
                _ => false,
            },
            integer => in_range(integer, value),
        };
        if ok {
            return Ok(());
        }
        let expected = match p {
            Primitive::Bytes => "bytes: an array of numbers 0..=255".to_owned(),
            Primitive::Char => "a string of one character".to_owned(),
            Primitive::Unit => "null".to_owned(),
            p if is_integer(p) => format!("`{}` (an integer in its range)", p.name()),
            p => format!("`{}`", p.name()),
        };
        Err(self.fail(expected, value))
    }
}

fn is_integer(p: Primitive) -> bool {
    use Primitive::*;
    matches!(p, I8 | I16 | I32 | I64 | I128 | U8 | U16 | U32 | U64 | U128)
}

fn in_range(p: Primitive, value: &Value) -> bool {
    let n: i128 = match (value.as_i64(), value.as_u64()) {
        (Some(n), _) => n.into(),
        (None, Some(n)) => n.into(),
        _ => return false,
    };
    let (min, max): (i128, i128) = match p {
        Primitive::I8 => (i8::MIN.into(), i8::MAX.into()),
        Primitive::I16 => (i16::MIN.into(), i16::MAX.into()),
        Primitive::I32 => (i32::MIN.into(), i32::MAX.into()),
        Primitive::I64 | Primitive::I128 => (i64::MIN.into(), i128::MAX),
        Primitive::U8 => (0, u8::MAX.into()),
        Primitive::U16 => (0, u16::MAX.into()),
        Primitive::U32 => (0, u32::MAX.into()),
        _ => (0, i128::MAX),
    };
    (min..=max).contains(&n)
}

fn number(n: i128) -> Value {
    i64::try_from(n)
        .map(Value::from)
        .or_else(|_| u64::try_from(n).map(Value::from))
        .unwrap_or(Value::Null)
}

/// A short description of what a JSON value is.
fn found(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 40 => "a string".to_owned(),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(items) => format!("an array of {} elements", items.len()),
        Value::Object(o) => format!("an object with {} keys", o.len()),
    }
}
