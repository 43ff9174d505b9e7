//! Structural schemas: what a method's arguments and return value look like on the wire.
//!
//! A [`Shape`] describes one serde type by its structure, recursively: primitives,
//! `Option`, sequences, maps, tuples, and named structs and enums with their field and
//! variant names in order. It is derived from the type's own `Deserialize` impl by
//! [`Shape::of`], with nothing else to write. Aliases and module paths play no part:
//! `u64` and `type Id = u64` have the same shape, and a struct is known by its serde name.
//!
//! A [`MethodSchema`] is a method's ordered argument types and its return type, each a
//! [`TypeSchema`] (a plain value or a stream of items). Its [`canonical`](MethodSchema::canonical)
//! text and [`hash`](MethodSchema::hash) are specified in `docs/protocol.md` (section 10), so
//! a peer in another language can compute them; [`MethodSchema::diff`] names the first
//! difference between two schemas, and [`MethodSchema::to_json`] renders one for display.
//!
//! What cannot be described fails with a [`SchemaError`] that names the type, never with a
//! guess: types that need a self-describing format (`deserialize_any`: untagged, internally
//! or adjacently tagged enums, `#[serde(flatten)]`, `serde_json::Value`), enums without
//! variants, and recursive types without a finite value.

use std::fmt;

mod canonical;
mod check;
mod diff;
mod error;
mod json;
mod trace;

pub use self::check::ValueMismatch;
pub use self::diff::Difference;
pub use self::error::SchemaError;

/// A type with no inner structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Primitive {
    /// `bool`.
    Bool,
    /// `i8`.
    I8,
    /// `i16`.
    I16,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `i128`.
    I128,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `u128`.
    U128,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `char`.
    Char,
    /// A UTF-8 string (`String`, `&str`, `PathBuf`, ...).
    String,
    /// A byte string (`bytes::Bytes`, `serde_bytes`, and `Vec<u8>`, which travels the same).
    Bytes,
    /// The unit value `()`.
    Unit,
}

impl Primitive {
    /// The name of this primitive in the canonical text (`"u64"`, `"string"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Primitive::Bool => "bool",
            Primitive::I8 => "i8",
            Primitive::I16 => "i16",
            Primitive::I32 => "i32",
            Primitive::I64 => "i64",
            Primitive::I128 => "i128",
            Primitive::U8 => "u8",
            Primitive::U16 => "u16",
            Primitive::U32 => "u32",
            Primitive::U64 => "u64",
            Primitive::U128 => "u128",
            Primitive::F32 => "f32",
            Primitive::F64 => "f64",
            Primitive::Char => "char",
            Primitive::String => "string",
            Primitive::Bytes => "bytes",
            Primitive::Unit => "unit",
        }
    }
}

/// The structure of one serde type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Shape {
    /// A primitive.
    Primitive(Primitive),
    /// `Option<T>`.
    Option(Box<Shape>),
    /// A sequence of any length (`Vec<T>`, `HashSet<T>`, ...).
    Seq(Box<Shape>),
    /// A map (`HashMap<K, V>`, `BTreeMap<K, V>`, ...).
    Map(Box<Shape>, Box<Shape>),
    /// A tuple or a fixed-size array: its element types in order.
    Tuple(Vec<Shape>),
    /// A named struct.
    Struct {
        /// Its serde name.
        name: String,
        /// Its fields.
        body: Body,
    },
    /// A named enum.
    Enum {
        /// Its serde name.
        name: String,
        /// Its variants in declaration order.
        variants: Vec<Variant>,
    },
    /// A reference to the nearest enclosing struct or enum of this name: how a recursive
    /// type refers to itself.
    Ref(String),
}

/// The contents of a struct or of an enum variant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Body {
    /// No contents: `struct Marker;`, `Variant`.
    Unit,
    /// One unnamed value: `struct Id(u64);`, `Variant(T)`.
    Newtype(Box<Shape>),
    /// Unnamed values in order: `struct Pair(u8, u8);`, `Variant(A, B)`.
    Tuple(Vec<Shape>),
    /// Named fields in order: `struct Job { .. }`, `Variant { .. }`.
    Struct(Vec<Field>),
}

/// A named field of a struct or struct variant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Field {
    /// Its serde name.
    pub name: String,
    /// Its type.
    pub shape: Shape,
}

/// A variant of an enum.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    /// Its serde name.
    pub name: String,
    /// Its contents.
    pub body: Body,
}

impl Shape {
    /// The shape of `T`, traced through its `Deserialize` impl.
    ///
    /// The trace runs `T::deserialize` against a recording deserializer that reports itself
    /// as not human-readable (the view of the bincode format), as often as needed to visit
    /// every enum variant. It fails with a [`SchemaError`] naming `T` and the place inside
    /// it when a part cannot be described.
    pub fn of<T: serde::de::DeserializeOwned>() -> Result<Shape, SchemaError> {
        trace::trace::<T>()
    }

    /// This shape's canonical text (section 10 of `docs/protocol.md`).
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        canonical::write_shape(self, &mut out);
        out
    }
}

/// A method argument or return value: one value, a stream of items
/// (`ferry::Streaming<T>`), or a stream after a result (`Result<ferry::Streaming<T>, E>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TypeSchema {
    /// One value of this shape.
    Value(Shape),
    /// A stream of items of this shape.
    Stream(Shape),
    /// A return value `Result<Streaming<T>, E>`: first `Result<(), E>`, then, after `Ok`,
    /// a stream of `T` (section 8.1 of `docs/protocol.md`).
    StreamResult {
        /// The shape of each item.
        item: Shape,
        /// The shape of the error.
        error: Shape,
    },
}

impl TypeSchema {
    /// One value of type `T`.
    pub fn of<T: serde::de::DeserializeOwned>() -> Result<TypeSchema, SchemaError> {
        Shape::of::<T>().map(TypeSchema::Value)
    }

    /// A stream of items of type `T`: what `ferry::Streaming<T>` carries.
    pub fn stream_of<T: serde::de::DeserializeOwned>() -> Result<TypeSchema, SchemaError> {
        Shape::of::<T>().map(TypeSchema::Stream)
    }

    /// A stream of `T` after a `Result<(), E>`: what `Result<ferry::Streaming<T>, E>`
    /// carries.
    pub fn stream_result_of<T, E>() -> Result<TypeSchema, SchemaError>
    where
        T: serde::de::DeserializeOwned,
        E: serde::de::DeserializeOwned,
    {
        Ok(TypeSchema::StreamResult {
            item: Shape::of::<T>()?,
            error: Shape::of::<E>()?,
        })
    }

    /// The shape of the value, or of each item of the stream.
    pub fn shape(&self) -> &Shape {
        match self {
            TypeSchema::Value(shape)
            | TypeSchema::Stream(shape)
            | TypeSchema::StreamResult { item: shape, .. } => shape,
        }
    }

    /// Whether this is a stream (with or without a result before it).
    pub fn is_stream(&self) -> bool {
        !matches!(self, TypeSchema::Value(_))
    }

    /// This type's canonical text (section 10 of `docs/protocol.md`).
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        canonical::write_type(self, &mut out);
        out
    }
}

/// A method's schema: its name, its argument types in order, and its return type.
///
/// The argument names are not part of it: only the order and the types of the arguments
/// reach the wire.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MethodSchema {
    /// The method's name.
    pub name: String,
    /// The argument types in order (a `&ferry::Context` parameter is not one).
    pub args: Vec<TypeSchema>,
    /// The return type (`Value(Primitive(Unit))` for a method that returns nothing).
    pub returns: TypeSchema,
}

impl MethodSchema {
    /// A method schema from its parts.
    pub fn new(name: impl Into<String>, args: Vec<TypeSchema>, returns: TypeSchema) -> Self {
        MethodSchema {
            name: name.into(),
            args,
            returns,
        }
    }

    /// The canonical text: `(<arg>,<arg>,...)-><return>`, without the method's name.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        canonical::write_method(self, &mut out);
        out
    }

    /// FNV-1a 64 of [`canonical`](Self::canonical): the hash two peers compare.
    pub fn hash(&self) -> u64 {
        crate::signature_hash(&self.canonical())
    }

    /// The first difference between this schema (`here`) and the server's, or `None`
    /// when they describe the same call.
    pub fn diff(&self, server: &MethodSchema) -> Option<Difference> {
        diff::diff(self, server)
    }

    /// This schema as JSON, for display and introspection (the layout is in
    /// `docs/protocol.md`, section 10.5).
    pub fn to_json(&self) -> serde_json::Value {
        json::method(self)
    }

    /// The schema that [`to_json`](Self::to_json) rendered as `value`: what a tool rebuilds
    /// from a server's introspection. When `value` carries a `"hash"`, it must be the hash
    /// of the schema read.
    ///
    /// # Errors
    ///
    /// [`SchemaError::Json`], naming the place, when `value` does not follow the layout of
    /// `docs/protocol.md` section 10.4 or its hash does not match.
    pub fn from_json(value: &serde_json::Value) -> Result<MethodSchema, SchemaError> {
        json::method_from(value)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl fmt::Display for MethodSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name, self.canonical())
    }
}
