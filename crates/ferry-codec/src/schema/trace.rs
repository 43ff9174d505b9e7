//! The recording deserializer behind [`Shape::of`](super::Shape::of).
//!
//! `T::deserialize` runs against [`De`], which hands every visitor a placeholder value and
//! records what was asked for. A visitor can be driven only once per call, so one run visits
//! one variant of each enum; the trace runs again until every variant of every enum it met
//! has been visited. Structs and enums are kept in a registry keyed by their visitor's type
//! name and serde name (distinct for two instantiations of a generic type), and the finished
//! registry is unfolded into a [`Shape`] tree, with a [`Shape::Ref`] where a type contains
//! itself.
//!
//! Where a value is needed but nothing new is to be learnt (a type met again, or a type
//! inside itself), the value is built in *shallow* mode: `None`, empty sequences and maps,
//! and for an enum the first variant not known to loop back. When a shallow value would
//! contain itself, the last enum choice on that loop is marked as looping and the run
//! restarts; a loop with no enum on it means the type has no finite value.

use std::any::type_name;
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::value::U32Deserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};

use super::{Body, Field, Primitive, SchemaError, Shape, Variant};

/// Deepest nesting of structs and enums the trace follows.
const MAX_DEPTH: usize = 256;
/// Most runs of `T::deserialize` for one trace.
const MAX_RUNS: usize = 10_000;
/// Largest number of nodes in the unfolded shape.
const MAX_NODES: usize = 100_000;

/// A struct or enum: its visitor's type name and its serde name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    visitor: &'static str,
    name: &'static str,
}

impl Key {
    fn new<V>(name: &'static str) -> Key {
        Key {
            visitor: type_name::<V>(),
            name,
        }
    }
}

/// A shape whose structs and enums are registry keys.
#[derive(Debug)]
enum Draft {
    Primitive(Primitive),
    Option(Box<Draft>),
    Seq(Box<Draft>),
    Map(Box<Draft>, Box<Draft>),
    Tuple(Vec<Draft>),
    Named(Key),
}

#[derive(Debug)]
enum DraftBody {
    Unit,
    Newtype(Box<Draft>),
    Tuple(Vec<Draft>),
    Struct(Vec<(&'static str, Draft)>),
}

#[derive(Debug)]
enum Entry {
    Struct(DraftBody),
    Enum {
        names: &'static [&'static str],
        bodies: Vec<Option<DraftBody>>,
    },
}

/// The trace's error, which serde's visitors create through [`de::Error::custom`].
#[derive(Debug)]
enum TraceError {
    /// A shallow value looped; the run starts again with that choice marked.
    Restart,
    Unsupported(String, Option<String>),
    Custom(String, Option<String>),
    NoFiniteValue(&'static str),
    TooLarge(String),
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Restart => f.write_str("trace restarted"),
            TraceError::Unsupported(what, _) | TraceError::Custom(what, _) => f.write_str(what),
            TraceError::NoFiniteValue(name) => write!(f, "`{name}` has no finite value"),
            TraceError::TooLarge(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for TraceError {}

impl de::Error for TraceError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TraceError::Custom(msg.to_string(), None)
    }
}

impl TraceError {
    fn unsupported(what: impl Into<String>) -> Self {
        TraceError::Unsupported(what.into(), None)
    }

    fn into_schema(self, ty: &str) -> SchemaError {
        let ty = ty.to_owned();
        match self {
            TraceError::Unsupported(what, at) => SchemaError::Unsupported {
                ty,
                at: at.unwrap_or_default(),
                what,
            },
            TraceError::Custom(message, at) => SchemaError::Rejected {
                ty,
                at: at.unwrap_or_default(),
                message,
            },
            TraceError::NoFiniteValue(name) => SchemaError::NoFiniteValue {
                ty,
                name: name.to_owned(),
            },
            TraceError::TooLarge(what) => SchemaError::TooLarge { ty, what },
            TraceError::Restart => SchemaError::TooLarge {
                ty,
                what: "the trace kept restarting".to_owned(),
            },
        }
    }
}

#[derive(Default)]
struct Tracer {
    registry: HashMap<Key, Entry>,
    /// Structs and enums being traced in this run, outermost first.
    stack: Vec<Key>,
    /// Structs and enums whose shallow value is being built, with the variant chosen.
    shallow: Vec<(Key, Option<usize>)>,
    /// Enum variants whose shallow value loops back.
    looping: HashSet<(Key, usize)>,
    /// Where the trace is, for error messages: `Job.state::Running.0`.
    path: Vec<String>,
    /// Whether this run learnt something new.
    progress: bool,
}

pub(super) fn trace<T: DeserializeOwned>() -> Result<Shape, SchemaError> {
    let ty = type_name::<T>();
    let mut tracer = Tracer::default();
    for _ in 0..MAX_RUNS {
        tracer.stack.clear();
        tracer.shallow.clear();
        tracer.path.clear();
        tracer.progress = false;
        let mut root = None;
        let de = De {
            t: &mut tracer,
            out: &mut root,
            shallow: false,
        };
        match T::deserialize(de) {
            Ok(_) => {}
            Err(TraceError::Restart) => continue,
            Err(e) => return Err(e.into_schema(ty)),
        }
        let Some(incomplete) = tracer.incomplete_enum() else {
            let root = root.ok_or_else(|| {
                TraceError::unsupported("its Deserialize impl reads nothing").into_schema(ty)
            })?;
            return tracer.unfold(ty, &root);
        };
        if !tracer.progress {
            let what = format!("variants of enum `{incomplete}` cannot be reached");
            return Err(TraceError::unsupported(what).into_schema(ty));
        }
    }
    Err(TraceError::TooLarge(format!("more than {MAX_RUNS} trace runs")).into_schema(ty))
}

impl Tracer {
    fn locate(&self, e: TraceError) -> TraceError {
        let here = || Some(self.path.concat());
        match e {
            TraceError::Unsupported(what, None) => TraceError::Unsupported(what, here()),
            TraceError::Custom(what, None) => TraceError::Custom(what, here()),
            e => e,
        }
    }

    fn incomplete_enum(&self) -> Option<&'static str> {
        self.registry.iter().find_map(|(key, entry)| match entry {
            Entry::Enum { bodies, .. } if bodies.iter().any(Option::is_none) => Some(key.name),
            _ => None,
        })
    }

    /// Whether an enum with unvisited variants can be reached from `draft`.
    fn reaches_incomplete(&self, draft: &Draft, seen: &mut HashSet<Key>) -> bool {
        match draft {
            Draft::Primitive(_) => false,
            Draft::Option(d) | Draft::Seq(d) => self.reaches_incomplete(d, seen),
            Draft::Map(k, v) => {
                self.reaches_incomplete(k, seen) || self.reaches_incomplete(v, seen)
            }
            Draft::Tuple(ds) => ds.iter().any(|d| self.reaches_incomplete(d, seen)),
            Draft::Named(key) => {
                if !seen.insert(*key) {
                    return false;
                }
                match self.registry.get(key) {
                    None => true,
                    Some(Entry::Struct(body)) => self.body_reaches_incomplete(body, seen),
                    Some(Entry::Enum { bodies, .. }) => bodies.iter().any(|b| match b {
                        None => true,
                        Some(body) => self.body_reaches_incomplete(body, seen),
                    }),
                }
            }
        }
    }

    fn body_reaches_incomplete(&self, body: &DraftBody, seen: &mut HashSet<Key>) -> bool {
        match body {
            DraftBody::Unit => false,
            DraftBody::Newtype(d) => self.reaches_incomplete(d, seen),
            DraftBody::Tuple(ds) => ds.iter().any(|d| self.reaches_incomplete(d, seen)),
            DraftBody::Struct(fs) => fs.iter().any(|(_, d)| self.reaches_incomplete(d, seen)),
        }
    }

    /// Whether a struct met in tracing mode is to be traced (else: a shallow value).
    fn traces_struct(&self, key: &Key) -> bool {
        if self.stack.contains(key) {
            return false;
        }
        match self.registry.get(key) {
            None => true,
            Some(_) => self.reaches_incomplete(&Draft::Named(*key), &mut HashSet::new()),
        }
    }

    /// The variant of an enum met in tracing mode to trace, if any.
    fn variant_to_trace(&self, key: &Key) -> Option<usize> {
        if self.stack.contains(key) {
            return None;
        }
        let Some(Entry::Enum { bodies, .. }) = self.registry.get(key) else {
            return None;
        };
        bodies.iter().position(Option::is_none).or_else(|| {
            bodies.iter().position(|b| {
                b.as_ref()
                    .is_some_and(|b| self.body_reaches_incomplete(b, &mut HashSet::new()))
            })
        })
    }

    fn check_depth(&self) -> Result<(), TraceError> {
        if self.stack.len() + self.shallow.len() >= MAX_DEPTH {
            let what = format!("structs and enums nested deeper than {MAX_DEPTH}");
            return Err(TraceError::TooLarge(what));
        }
        Ok(())
    }

    fn enter(&mut self, key: Key) -> Result<(), TraceError> {
        self.check_depth()?;
        if self.path.is_empty() {
            self.path.push(key.name.to_owned());
        }
        self.stack.push(key);
        Ok(())
    }

    fn exit(&mut self) {
        self.stack.pop();
    }

    /// Starts the shallow value of `key`; a loop marks its last enum choice and restarts.
    fn shallow_enter(&mut self, key: Key, choice: Option<usize>) -> Result<(), TraceError> {
        self.check_depth()?;
        if let Some(start) = self.shallow.iter().position(|(k, _)| *k == key) {
            let last_choice = self.shallow[start..]
                .iter()
                .rev()
                .find_map(|(k, c)| c.map(|c| (*k, c)));
            return match last_choice {
                Some(choice) => {
                    self.looping.insert(choice);
                    Err(TraceError::Restart)
                }
                None => Err(TraceError::NoFiniteValue(key.name)),
            };
        }
        self.shallow.push((key, choice));
        Ok(())
    }

    fn shallow_exit(&mut self) {
        self.shallow.pop();
    }

    /// The first variant of an enum whose shallow value is not known to loop.
    fn shallow_variant(&self, key: Key, count: usize) -> Result<usize, TraceError> {
        (0..count)
            .find(|i| !self.looping.contains(&(key, *i)))
            .ok_or(TraceError::NoFiniteValue(key.name))
    }

    fn unfold(&self, ty: &str, root: &Draft) -> Result<Shape, SchemaError> {
        let mut unfold = Unfold {
            tracer: self,
            ty,
            stack: Vec::new(),
            nodes: 0,
        };
        unfold.shape(root)
    }
}

/// Turns the registry into a shape tree, rooted at one draft.
struct Unfold<'a> {
    tracer: &'a Tracer,
    ty: &'a str,
    stack: Vec<Key>,
    nodes: usize,
}

impl Unfold<'_> {
    fn shape(&mut self, draft: &Draft) -> Result<Shape, SchemaError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(SchemaError::TooLarge {
                ty: self.ty.to_owned(),
                what: format!("its description has more than {MAX_NODES} parts"),
            });
        }
        Ok(match draft {
            Draft::Primitive(p) => Shape::Primitive(*p),
            Draft::Option(d) => Shape::Option(Box::new(self.shape(d)?)),
            Draft::Seq(d) => match self.shape(d)? {
                Shape::Primitive(Primitive::U8) => Shape::Primitive(Primitive::Bytes),
                item => Shape::Seq(Box::new(item)),
            },
            Draft::Map(k, v) => Shape::Map(Box::new(self.shape(k)?), Box::new(self.shape(v)?)),
            Draft::Tuple(ds) => Shape::Tuple(self.shapes(ds)?),
            Draft::Named(key) => return self.named(*key),
        })
    }

    fn shapes(&mut self, drafts: &[Draft]) -> Result<Vec<Shape>, SchemaError> {
        drafts.iter().map(|d| self.shape(d)).collect()
    }

    fn named(&mut self, key: Key) -> Result<Shape, SchemaError> {
        if let Some(at) = self.stack.iter().rposition(|k| *k == key) {
            if self.stack[at + 1..].iter().any(|k| k.name == key.name) {
                return Err(SchemaError::AmbiguousRecursion {
                    ty: self.ty.to_owned(),
                    name: key.name.to_owned(),
                });
            }
            return Ok(Shape::Ref(key.name.to_owned()));
        }
        let entry = self.tracer.registry.get(&key).ok_or_else(|| {
            TraceError::unsupported(format!("`{}` was never traced", key.name)).into_schema(self.ty)
        })?;
        self.stack.push(key);
        let shape = match entry {
            Entry::Struct(body) => Shape::Struct {
                name: key.name.to_owned(),
                body: self.body(body)?,
            },
            Entry::Enum { names, bodies } => {
                let mut variants = Vec::with_capacity(bodies.len());
                for (name, body) in names.iter().zip(bodies) {
                    let body = body.as_ref().ok_or_else(|| {
                        let what = format!("variant `{}::{name}` was never reached", key.name);
                        TraceError::unsupported(what).into_schema(self.ty)
                    })?;
                    variants.push(Variant {
                        name: (*name).to_owned(),
                        body: self.body(body)?,
                    });
                }
                Shape::Enum {
                    name: key.name.to_owned(),
                    variants,
                }
            }
        };
        self.stack.pop();
        Ok(shape)
    }

    fn body(&mut self, body: &DraftBody) -> Result<Body, SchemaError> {
        Ok(match body {
            DraftBody::Unit => Body::Unit,
            DraftBody::Newtype(d) => Body::Newtype(Box::new(self.shape(d)?)),
            DraftBody::Tuple(ds) => Body::Tuple(self.shapes(ds)?),
            DraftBody::Struct(fs) => Body::Struct(
                fs.iter()
                    .map(|(name, d)| {
                        Ok(Field {
                            name: (*name).to_owned(),
                            shape: self.shape(d)?,
                        })
                    })
                    .collect::<Result<_, SchemaError>>()?,
            ),
        })
    }
}

/// The recording deserializer: records the shape it is asked for into `out` (unless
/// `shallow`) and gives the visitor a placeholder value.
struct De<'a> {
    t: &'a mut Tracer,
    out: &'a mut Option<Draft>,
    shallow: bool,
}

/// How a struct's contents are read.
#[derive(Clone, Copy)]
enum StructKind {
    Unit,
    Newtype,
    Tuple(usize),
    Fields(&'static [&'static str]),
}

impl De<'_> {
    fn record(&mut self, draft: Draft) {
        if !self.shallow {
            *self.out = Some(draft);
        }
    }

    fn named<'de, V: Visitor<'de>>(
        mut self,
        name: &'static str,
        kind: StructKind,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let key = Key::new::<V>(name);
        self.record(Draft::Named(key));
        let t = self.t;
        if self.shallow || !t.traces_struct(&key) {
            t.shallow_enter(key, None)?;
            let (value, _) = read_struct(t, kind, visitor, true)?;
            t.shallow_exit();
            return Ok(value);
        }
        t.enter(key)?;
        let (value, body) = read_struct(t, kind, visitor, false)?;
        t.exit();
        if t.registry.insert(key, Entry::Struct(body)).is_none() {
            t.progress = true;
        }
        Ok(value)
    }

    fn enumeration<'de, V: Visitor<'de>>(
        mut self,
        name: &'static str,
        names: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let key = Key::new::<V>(name);
        self.record(Draft::Named(key));
        let t = self.t;
        if names.is_empty() {
            let what = format!("enum `{name}` has no variants");
            return Err(t.locate(TraceError::unsupported(what)));
        }
        if !self.shallow {
            match t.registry.get(&key) {
                None => {
                    let bodies = names.iter().map(|_| None).collect();
                    t.registry.insert(key, Entry::Enum { names, bodies });
                }
                Some(Entry::Enum { .. }) => {}
                Some(Entry::Struct(_)) => {
                    let what = format!("`{name}` is read both as a struct and as an enum");
                    return Err(t.locate(TraceError::unsupported(what)));
                }
            }
        }
        let traced = if self.shallow {
            None
        } else {
            t.variant_to_trace(&key)
        };
        let Some(index) = traced else {
            let index = t.shallow_variant(key, names.len())?;
            t.shallow_enter(key, Some(index))?;
            let access = Enum {
                t: &mut *t,
                index,
                body: &mut None,
                shallow: true,
            };
            let value = visitor.visit_enum(access).map_err(|e| t.locate(e))?;
            t.shallow_exit();
            return Ok(value);
        };
        t.enter(key)?;
        let depth = t.path.len();
        t.path.push(format!("::{}", names[index]));
        let mut body = None;
        let access = Enum {
            t: &mut *t,
            index,
            body: &mut body,
            shallow: false,
        };
        let value = visitor.visit_enum(access).map_err(|e| t.locate(e))?;
        t.path.truncate(depth);
        t.exit();
        let body = body.ok_or_else(|| {
            let what = format!("variant `{name}::{}` was not read", names[index]);
            t.locate(TraceError::unsupported(what))
        })?;
        if let Some(Entry::Enum { bodies, .. }) = t.registry.get_mut(&key) {
            if bodies[index].replace(body).is_none() {
                t.progress = true;
            }
        }
        Ok(value)
    }

    fn unsupported<T>(self, what: &str) -> Result<T, TraceError> {
        let what = format!(
            "{what}, which needs a self-describing format (untagged, internally or adjacently \
             tagged enums, #[serde(flatten)] and free-form values cannot be described)"
        );
        Err(self.t.locate(TraceError::unsupported(what)))
    }
}

/// Reads a struct's contents: the visitor's value and, unless shallow, the body's draft.
fn read_struct<'de, V: Visitor<'de>>(
    t: &mut Tracer,
    kind: StructKind,
    visitor: V,
    shallow: bool,
) -> Result<(V::Value, DraftBody), TraceError> {
    let result = match kind {
        StructKind::Unit => visitor.visit_unit().map(|v| (v, DraftBody::Unit)),
        StructKind::Newtype => {
            let mut slot = None;
            let depth = t.path.len();
            t.path.push(".0".to_owned());
            let de = De {
                t: &mut *t,
                out: &mut slot,
                shallow,
            };
            let value = visitor.visit_newtype_struct(de).map_err(|e| t.locate(e))?;
            t.path.truncate(depth);
            let inner = take(t, slot, shallow, "its inner value")?;
            Ok((value, DraftBody::Newtype(Box::new(inner))))
        }
        StructKind::Tuple(len) => {
            let mut drafts = Vec::new();
            let value =
                visitor.visit_seq(Fields::new(t, Label::Index, len, &mut drafts, shallow))?;
            Ok((value, DraftBody::Tuple(drafts)))
        }
        StructKind::Fields(names) => {
            let mut drafts = Vec::new();
            let fields = Fields::new(t, Label::Name(names), names.len(), &mut drafts, shallow);
            let value = visitor.visit_seq(fields)?;
            let fields = names.iter().copied().zip(drafts).collect();
            Ok((value, DraftBody::Struct(fields)))
        }
    };
    result.map_err(|e| t.locate(e))
}

/// The recorded draft of a part that was read, or a placeholder in shallow mode.
fn take(t: &Tracer, slot: Option<Draft>, shallow: bool, what: &str) -> Result<Draft, TraceError> {
    if shallow {
        return Ok(Draft::Primitive(Primitive::Unit));
    }
    slot.ok_or_else(|| t.locate(TraceError::unsupported(format!("{what} was never read"))))
}

macro_rules! primitive {
    ($($method:ident => $prim:ident, $visit:ident($($value:expr)?);)*) => {$(
        fn $method<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, TraceError> {
            self.record(Draft::Primitive(Primitive::$prim));
            let t = self.t;
            visitor.$visit($($value)?).map_err(|e| t.locate(e))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = TraceError;

    primitive! {
        deserialize_bool => Bool, visit_bool(false);
        deserialize_i8 => I8, visit_i8(1);
        deserialize_i16 => I16, visit_i16(1);
        deserialize_i32 => I32, visit_i32(1);
        deserialize_i64 => I64, visit_i64(1);
        deserialize_i128 => I128, visit_i128(1);
        deserialize_u8 => U8, visit_u8(1);
        deserialize_u16 => U16, visit_u16(1);
        deserialize_u32 => U32, visit_u32(1);
        deserialize_u64 => U64, visit_u64(1);
        deserialize_u128 => U128, visit_u128(1);
        deserialize_f32 => F32, visit_f32(0.0);
        deserialize_f64 => F64, visit_f64(0.0);
        deserialize_char => Char, visit_char('a');
        deserialize_str => String, visit_str("");
        deserialize_string => String, visit_string(String::new());
        deserialize_bytes => Bytes, visit_bytes(&[]);
        deserialize_byte_buf => Bytes, visit_byte_buf(Vec::new());
        deserialize_unit => Unit, visit_unit();
    }

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        self.unsupported("it asks for any value (deserialize_any)")
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        self.unsupported("it asks for an identifier (deserialize_identifier)")
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        self.unsupported("it skips a value (deserialize_ignored_any)")
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let t = self.t;
        if self.shallow {
            return visitor.visit_none().map_err(|e| t.locate(e));
        }
        let mut slot = None;
        let de = De {
            t: &mut *t,
            out: &mut slot,
            shallow: false,
        };
        let value = visitor.visit_some(de).map_err(|e| t.locate(e))?;
        let inner = take(t, slot, false, "the value inside the option")?;
        *self.out = Some(Draft::Option(Box::new(inner)));
        Ok(value)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let (t, shallow) = (self.t, self.shallow);
        let mut drafts = Vec::new();
        let len = usize::from(!shallow);
        let elements = Fields::new(t, Label::Element, len, &mut drafts, shallow);
        let value = visitor.visit_seq(elements).map_err(|e| t.locate(e))?;
        if !shallow {
            let item = take(t, drafts.pop(), false, "an element of the sequence")?;
            *self.out = Some(Draft::Seq(Box::new(item)));
        }
        Ok(value)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let (t, shallow) = (self.t, self.shallow);
        let mut drafts = Vec::new();
        let elements = Fields::new(t, Label::Index, len, &mut drafts, shallow);
        let value = visitor.visit_seq(elements).map_err(|e| t.locate(e))?;
        if !shallow {
            *self.out = Some(Draft::Tuple(drafts));
        }
        Ok(value)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let (t, shallow) = (self.t, self.shallow);
        let mut key = None;
        let mut value = None;
        let entry = Entry1 {
            t: &mut *t,
            key: &mut key,
            value: &mut value,
            state: if shallow { 2 } else { 0 },
        };
        let result = visitor.visit_map(entry).map_err(|e| t.locate(e))?;
        if !shallow {
            let key = take(t, key, false, "a key of the map")?;
            let value = take(t, value, false, "a value of the map")?;
            *self.out = Some(Draft::Map(Box::new(key), Box::new(value)));
        }
        Ok(result)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.named(name, StructKind::Unit, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.named(name, StructKind::Newtype, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.named(name, StructKind::Tuple(len), visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.named(name, StructKind::Fields(fields), visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.enumeration(name, variants, visitor)
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// How an element appears in the path of an error message.
#[derive(Clone, Copy)]
enum Label {
    /// `.name`: a struct field.
    Name(&'static [&'static str]),
    /// `.0`: a tuple element.
    Index,
    /// `[]`: an element of a sequence.
    Element,
}

/// The elements of a tuple, sequence, tuple struct or struct: `len` of them, each recorded.
struct Fields<'a> {
    t: &'a mut Tracer,
    label: Label,
    len: usize,
    drafts: &'a mut Vec<Draft>,
    next: usize,
    shallow: bool,
}

impl<'a> Fields<'a> {
    fn new(
        t: &'a mut Tracer,
        label: Label,
        len: usize,
        drafts: &'a mut Vec<Draft>,
        shallow: bool,
    ) -> Self {
        Fields {
            t,
            label,
            len,
            drafts,
            next: 0,
            shallow,
        }
    }
}

impl<'de> de::SeqAccess<'de> for Fields<'_> {
    type Error = TraceError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, TraceError> {
        if self.next >= self.len {
            return Ok(None);
        }
        let index = self.next;
        self.next += 1;
        let depth = self.t.path.len();
        self.t.path.push(match self.label {
            Label::Name(names) => format!(".{}", names[index]),
            Label::Index => format!(".{index}"),
            Label::Element => "[]".to_owned(),
        });
        let mut slot = None;
        let de = De {
            t: &mut *self.t,
            out: &mut slot,
            shallow: self.shallow,
        };
        let value = seed.deserialize(de).map_err(|e| self.t.locate(e))?;
        if !self.shallow {
            let what = format!("element {index}");
            self.drafts.push(take(self.t, slot, false, &what)?);
        }
        self.t.path.truncate(depth);
        Ok(Some(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.len - self.next)
    }
}

/// One map entry (state 0: key next, 1: value next, 2: done).
struct Entry1<'a> {
    t: &'a mut Tracer,
    key: &'a mut Option<Draft>,
    value: &'a mut Option<Draft>,
    state: u8,
}

impl<'de> de::MapAccess<'de> for Entry1<'_> {
    type Error = TraceError;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, TraceError> {
        if self.state != 0 {
            return Ok(None);
        }
        self.state = 1;
        let depth = self.t.path.len();
        self.t.path.push("[key]".to_owned());
        let de = De {
            t: &mut *self.t,
            out: &mut *self.key,
            shallow: false,
        };
        let key = seed.deserialize(de).map_err(|e| self.t.locate(e))?;
        self.t.path.truncate(depth);
        Ok(Some(key))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, TraceError> {
        self.state = 2;
        let depth = self.t.path.len();
        self.t.path.push("[]".to_owned());
        let de = De {
            t: &mut *self.t,
            out: &mut *self.value,
            shallow: false,
        };
        let value = seed.deserialize(de).map_err(|e| self.t.locate(e))?;
        self.t.path.truncate(depth);
        Ok(value)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(usize::from(self.state == 0))
    }
}

/// An enum value of the chosen variant.
struct Enum<'a> {
    t: &'a mut Tracer,
    index: usize,
    body: &'a mut Option<DraftBody>,
    shallow: bool,
}

impl<'de, 'a> de::EnumAccess<'de> for Enum<'a> {
    type Error = TraceError;
    type Variant = Enum<'a>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Enum<'a>), TraceError> {
        let index = u32::try_from(self.index)
            .map_err(|_| TraceError::unsupported("an enum with more than 2^32 variants"))?;
        let tag = seed.deserialize(U32Deserializer::<TraceError>::new(index))?;
        Ok((tag, self))
    }
}

impl<'de> de::VariantAccess<'de> for Enum<'_> {
    type Error = TraceError;

    fn unit_variant(self) -> Result<(), TraceError> {
        *self.body = Some(DraftBody::Unit);
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, TraceError> {
        let (t, shallow) = (self.t, self.shallow);
        let depth = t.path.len();
        t.path.push(".0".to_owned());
        let mut slot = None;
        let de = De {
            t: &mut *t,
            out: &mut slot,
            shallow,
        };
        let value = seed.deserialize(de).map_err(|e| t.locate(e))?;
        t.path.truncate(depth);
        let inner = take(t, slot, shallow, "the variant's value")?;
        *self.body = Some(DraftBody::Newtype(Box::new(inner)));
        Ok(value)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let body = self.body;
        let (value, drafted) = read_struct(self.t, StructKind::Tuple(len), visitor, self.shallow)?;
        *body = Some(drafted);
        Ok(value)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let body = self.body;
        let (value, drafted) =
            read_struct(self.t, StructKind::Fields(fields), visitor, self.shallow)?;
        *body = Some(drafted);
        Ok(value)
    }
}
