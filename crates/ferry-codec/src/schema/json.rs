//! Schemas as JSON (layout in `docs/protocol.md`, section 10.5).

use serde_json::{json, Map, Value};

use super::{Body, Field, MethodSchema, Primitive, SchemaError, Shape, TypeSchema, Variant};

pub(super) fn method(method: &MethodSchema) -> Value {
    json!({
        "name": method.name,
        "args": method.args.iter().map(type_schema).collect::<Vec<_>>(),
        "returns": type_schema(&method.returns),
        "hash": format!("{:#018x}", method.hash()),
    })
}

fn type_schema(ty: &TypeSchema) -> Value {
    match ty {
        TypeSchema::Value(s) => shape(s),
        TypeSchema::Stream(s) => json!({ "stream": shape(s) }),
        TypeSchema::StreamResult { item, error } => {
            json!({ "stream": shape(item), "error": shape(error) })
        }
    }
}

pub(super) fn shape(shape_: &Shape) -> Value {
    match shape_ {
        Shape::Primitive(p) => Value::from(p.name()),
        Shape::Option(s) => json!({ "option": shape(s) }),
        Shape::Seq(s) => json!({ "seq": shape(s) }),
        Shape::Map(k, v) => json!({ "map": [shape(k), shape(v)] }),
        Shape::Tuple(items) => json!({ "tuple": items.iter().map(shape).collect::<Vec<_>>() }),
        Shape::Struct { name, body: b } => {
            let mut object = Map::new();
            object.insert("struct".to_owned(), Value::from(name.as_str()));
            body(b, &mut object);
            Value::Object(object)
        }
        Shape::Enum { name, variants } => {
            let variants: Vec<Value> = variants
                .iter()
                .map(|v| {
                    let mut object = Map::new();
                    object.insert("name".to_owned(), Value::from(v.name.as_str()));
                    body(&v.body, &mut object);
                    Value::Object(object)
                })
                .collect();
            json!({ "enum": name, "variants": variants })
        }
        Shape::Ref(name) => json!({ "ref": name }),
    }
}

fn body(b: &Body, object: &mut Map<String, Value>) {
    let (key, value) = match b {
        Body::Unit => ("unit", Value::Bool(true)),
        Body::Newtype(s) => ("newtype", shape(s)),
        Body::Tuple(items) => ("tuple", items.iter().map(shape).collect()),
        Body::Struct(fields) => (
            "fields",
            fields
                .iter()
                .map(|f| json!({ "name": f.name, "type": shape(&f.shape) }))
                .collect(),
        ),
    };
    object.insert(key.to_owned(), value);
}

/// Deepest nesting [`method_from`] follows, so a hostile document cannot exhaust the stack.
const MAX_DEPTH: usize = 128;

const PRIMITIVES: [Primitive; 17] = [
    Primitive::Bool,
    Primitive::I8,
    Primitive::I16,
    Primitive::I32,
    Primitive::I64,
    Primitive::I128,
    Primitive::U8,
    Primitive::U16,
    Primitive::U32,
    Primitive::U64,
    Primitive::U128,
    Primitive::F32,
    Primitive::F64,
    Primitive::Char,
    Primitive::String,
    Primitive::Bytes,
    Primitive::Unit,
];

/// Reads the JSON of a method schema back (the inverse of [`method`]).
pub(super) fn method_from(value: &Value) -> Result<MethodSchema, SchemaError> {
    let reader = Reader;
    let object = reader.object(value, "")?;
    let name = reader.string(reader.member(object, "name", "")?, "name")?;
    let args = reader.array(reader.member(object, "args", "")?, "args")?;
    let args = args
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let at = format!("args[{i}]");
            match reader.type_schema(a, &at)? {
                TypeSchema::StreamResult { .. } => Err(fail(
                    &at,
                    "a stream after a result is only allowed as a return type",
                )),
                arg => Ok(arg),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let returns = reader.type_schema(reader.member(object, "returns", "")?, "returns")?;
    let schema = MethodSchema::new(name, args, returns);
    if let Some(hash) = object.get("hash") {
        let text = reader.string(hash, "hash")?;
        let expected = format!("{:#018x}", schema.hash());
        if text != expected {
            return Err(fail(
                "hash",
                format!("{text} is not the hash of the schema read ({expected})"),
            ));
        }
    }
    Ok(schema)
}

fn fail(at: &str, what: impl Into<String>) -> SchemaError {
    SchemaError::Json {
        at: at.to_owned(),
        what: what.into(),
    }
}

struct Reader;

impl Reader {
    fn object<'v>(
        &self,
        value: &'v Value,
        at: &str,
    ) -> Result<&'v Map<String, Value>, SchemaError> {
        value
            .as_object()
            .ok_or_else(|| fail(at, "expected an object"))
    }

    fn member<'v>(
        &self,
        object: &'v Map<String, Value>,
        key: &str,
        at: &str,
    ) -> Result<&'v Value, SchemaError> {
        object
            .get(key)
            .ok_or_else(|| fail(at, format!("missing member `{key}`")))
    }

    fn string<'v>(&self, value: &'v Value, at: &str) -> Result<&'v str, SchemaError> {
        value.as_str().ok_or_else(|| fail(at, "expected a string"))
    }

    fn array<'v>(&self, value: &'v Value, at: &str) -> Result<&'v [Value], SchemaError> {
        value
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| fail(at, "expected an array"))
    }

    fn type_schema(&self, value: &Value, at: &str) -> Result<TypeSchema, SchemaError> {
        let Some(object) = value.as_object() else {
            return Ok(TypeSchema::Value(self.shape(value, at, 0)?));
        };
        match (object.get("stream"), object.get("error"), object.len()) {
            (Some(item), None, 1) => Ok(TypeSchema::Stream(self.shape(
                item,
                &format!("{at}.stream"),
                0,
            )?)),
            (Some(item), Some(error), 2) => Ok(TypeSchema::StreamResult {
                item: self.shape(item, &format!("{at}.stream"), 0)?,
                error: self.shape(error, &format!("{at}.error"), 0)?,
            }),
            _ => Ok(TypeSchema::Value(self.shape(value, at, 0)?)),
        }
    }

    fn shape(&self, value: &Value, at: &str, depth: usize) -> Result<Shape, SchemaError> {
        if depth > MAX_DEPTH {
            return Err(fail(at, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let depth = depth + 1;
        if let Some(name) = value.as_str() {
            return PRIMITIVES
                .iter()
                .find(|p| p.name() == name)
                .map(|p| Shape::Primitive(*p))
                .ok_or_else(|| fail(at, format!("`{name}` is not a primitive type")));
        }
        let object = self.object(value, at)?;
        let inner = |key: &str| -> Result<Box<Shape>, SchemaError> {
            let value = self.member(object, key, at)?;
            Ok(Box::new(self.shape(
                value,
                &format!("{at}.{key}"),
                depth,
            )?))
        };
        let shapes = |key: &str| -> Result<Vec<Shape>, SchemaError> {
            let items = self.array(self.member(object, key, at)?, &format!("{at}.{key}"))?;
            items
                .iter()
                .enumerate()
                .map(|(i, s)| self.shape(s, &format!("{at}.{key}[{i}]"), depth))
                .collect()
        };
        if object.contains_key("option") {
            Ok(Shape::Option(inner("option")?))
        } else if object.contains_key("seq") {
            Ok(Shape::Seq(inner("seq")?))
        } else if object.contains_key("map") {
            let mut pair = shapes("map")?.into_iter();
            match (pair.next(), pair.next(), pair.next()) {
                (Some(k), Some(v), None) => Ok(Shape::Map(Box::new(k), Box::new(v))),
                _ => Err(fail(&format!("{at}.map"), "expected [key, value]")),
            }
        } else if let Some(name) = object.get("struct") {
            let name = self.string(name, &format!("{at}.struct"))?.to_owned();
            let body = self.body(object, at, depth)?;
            Ok(Shape::Struct { name, body })
        } else if let Some(name) = object.get("enum") {
            let name = self.string(name, &format!("{at}.enum"))?.to_owned();
            let at_variants = format!("{at}.variants");
            let variants = self.array(self.member(object, "variants", at)?, &at_variants)?;
            let variants = variants
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let at = format!("{at_variants}[{i}]");
                    let object = self.object(v, &at)?;
                    let name = self.string(self.member(object, "name", &at)?, &at)?;
                    Ok(Variant {
                        name: name.to_owned(),
                        body: self.body(object, &at, depth)?,
                    })
                })
                .collect::<Result<Vec<_>, SchemaError>>()?;
            Ok(Shape::Enum { name, variants })
        } else if object.contains_key("tuple") {
            Ok(Shape::Tuple(shapes("tuple")?))
        } else if let Some(name) = object.get("ref") {
            Ok(Shape::Ref(
                self.string(name, &format!("{at}.ref"))?.to_owned(),
            ))
        } else if object.contains_key("stream") {
            Err(fail(
                at,
                "a stream is only allowed as a whole argument or return type",
            ))
        } else {
            Err(fail(at, "not a type: expected a primitive name or an object with option, seq, map, tuple, struct, enum or ref"))
        }
    }

    /// The body member of a struct or variant object.
    fn body(
        &self,
        object: &Map<String, Value>,
        at: &str,
        depth: usize,
    ) -> Result<Body, SchemaError> {
        if object.get("unit").is_some_and(|u| u == &Value::Bool(true)) {
            return Ok(Body::Unit);
        }
        if let Some(inner) = object.get("newtype") {
            return Ok(Body::Newtype(Box::new(self.shape(
                inner,
                &format!("{at}.newtype"),
                depth,
            )?)));
        }
        if let Some(items) = object.get("tuple") {
            let at = format!("{at}.tuple");
            let items = self.array(items, &at)?;
            return items
                .iter()
                .enumerate()
                .map(|(i, s)| self.shape(s, &format!("{at}[{i}]"), depth))
                .collect::<Result<Vec<_>, _>>()
                .map(Body::Tuple);
        }
        if let Some(fields) = object.get("fields") {
            let at = format!("{at}.fields");
            let fields = self.array(fields, &at)?;
            return fields
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let at = format!("{at}[{i}]");
                    let object = self.object(f, &at)?;
                    let name = self.string(self.member(object, "name", &at)?, &at)?;
                    let shape = self.shape(
                        self.member(object, "type", &at)?,
                        &format!("{at}.type"),
                        depth,
                    )?;
                    Ok(Field {
                        name: name.to_owned(),
                        shape,
                    })
                })
                .collect::<Result<Vec<_>, SchemaError>>()
                .map(Body::Struct);
        }
        Err(fail(
            at,
            "missing the body: one of unit, newtype, tuple or fields",
        ))
    }
}
