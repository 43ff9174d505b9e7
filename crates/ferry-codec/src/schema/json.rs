//! Schemas as JSON (layout in `docs/protocol.md`, section 10.5).

use serde_json::{json, Map, Value};

use super::{Body, MethodSchema, Shape, TypeSchema};

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
