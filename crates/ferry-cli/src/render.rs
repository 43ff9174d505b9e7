//! Schemas as a person reads them: Rust-like types, each struct and enum defined once.

use std::collections::HashSet;

use ferry::codec::schema::{Body, MethodSchema, Primitive, Shape, TypeSchema};

/// Renders method signatures and collects the definitions of the structs and enums they
/// use, in the order they first appear.
#[derive(Debug, Default)]
pub(crate) struct Renderer {
    /// Definitions, one per distinct structure.
    pub(crate) definitions: Vec<String>,
    /// The canonical text of every struct and enum already defined.
    seen: HashSet<String>,
}

impl Renderer {
    /// `add(i64, i64) -> i64`.
    pub(crate) fn method(&mut self, method: &MethodSchema) -> String {
        let args: Vec<String> = method.args.iter().map(|a| self.type_schema(a)).collect();
        format!(
            "{}({}) -> {}",
            method.name,
            args.join(", "),
            self.type_schema(&method.returns)
        )
    }

    fn type_schema(&mut self, ty: &TypeSchema) -> String {
        match ty {
            TypeSchema::Value(shape) => self.shape(shape),
            TypeSchema::Stream(shape) => format!("Stream<{}>", self.shape(shape)),
            TypeSchema::StreamResult { item, error } => format!(
                "Result<Stream<{}>, {}>",
                self.shape(item),
                self.shape(error)
            ),
        }
    }

    fn shape(&mut self, shape: &Shape) -> String {
        match shape {
            Shape::Primitive(Primitive::Unit) => "()".to_owned(),
            Shape::Primitive(p) => p.name().to_owned(),
            Shape::Option(inner) => format!("Option<{}>", self.shape(inner)),
            Shape::Seq(inner) => format!("Vec<{}>", self.shape(inner)),
            Shape::Map(key, value) => format!("Map<{}, {}>", self.shape(key), self.shape(value)),
            Shape::Tuple(items) => {
                let items: Vec<String> = items.iter().map(|s| self.shape(s)).collect();
                format!("({})", items.join(", "))
            }
            Shape::Struct { name, body } => {
                if self.seen.insert(shape.canonical()) {
                    let text = match body {
                        Body::Unit => format!("struct {name};"),
                        Body::Struct(_) => format!("struct {name} {}", self.body(body)),
                        _ => format!("struct {name}{};", self.body(body)),
                    };
                    self.definitions.push(text);
                }
                name.clone()
            }
            Shape::Enum { name, variants } => {
                if self.seen.insert(shape.canonical()) {
                    let variants: Vec<String> = variants
                        .iter()
                        .map(|v| match &v.body {
                            Body::Struct(_) => format!("{} {}", v.name, self.body(&v.body)),
                            body => format!("{}{}", v.name, self.body(body)),
                        })
                        .collect();
                    self.definitions
                        .push(format!("enum {name} {{ {} }}", variants.join(", ")));
                }
                name.clone()
            }
            Shape::Ref(name) => name.clone(),
            other => other.canonical(),
        }
    }

    /// A struct's or variant's contents: ``, `(u64)`, `(u8, u8)`, `{ a: u8 }`.
    fn body(&mut self, body: &Body) -> String {
        match body {
            Body::Unit => String::new(),
            Body::Newtype(inner) => format!("({})", self.shape(inner)),
            Body::Tuple(items) => {
                let items: Vec<String> = items.iter().map(|s| self.shape(s)).collect();
                format!("({})", items.join(", "))
            }
            Body::Struct(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|f| format!("{}: {}", f.name, self.shape(&f.shape)))
                    .collect();
                format!("{{ {} }}", fields.join(", "))
            }
            _ => String::from("(?)"),
        }
    }
}
