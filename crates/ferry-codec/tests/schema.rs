//! Structural schemas: tracing, canonical text, hashes, differences, JSON.

use std::collections::{BTreeMap, HashMap};

use ferry_codec::schema::{MethodSchema, SchemaError, Shape, TypeSchema};
use serde::Deserialize;
use serde_json::json;

fn canonical<T: serde::de::DeserializeOwned>() -> String {
    Shape::of::<T>().unwrap().canonical()
}

fn method(name: &str, args: Vec<TypeSchema>, returns: TypeSchema) -> MethodSchema {
    MethodSchema::new(name, args, returns)
}

#[test]
fn primitives_and_containers() {
    assert_eq!(canonical::<u64>(), "u64");
    assert_eq!(canonical::<()>(), "unit");
    assert_eq!(
        canonical::<(bool, i8, i128, u128, f32, f64, char, String)>(),
        "tuple<bool,i8,i128,u128,f32,f64,char,string>"
    );
    assert_eq!(canonical::<Option<Vec<String>>>(), "option<seq<string>>");
    assert_eq!(canonical::<HashMap<String, i32>>(), "map<string,i32>");
    assert_eq!(canonical::<BTreeMap<u8, ()>>(), "map<u8,unit>");
    assert_eq!(canonical::<[u16; 3]>(), "tuple<u16,u16,u16>");
    assert_eq!(canonical::<Box<std::num::Wrapping<u32>>>(), "u32");
}

#[test]
fn byte_types_are_bytes() {
    assert_eq!(canonical::<bytes::Bytes>(), "bytes");
    assert_eq!(canonical::<serde_bytes::ByteBuf>(), "bytes");
    assert_eq!(canonical::<Vec<u8>>(), "bytes");
    assert_eq!(canonical::<Vec<Vec<u8>>>(), "seq<bytes>");
}

#[allow(dead_code)]
mod v1 {
    use serde::Deserialize;

    pub type Id = u64;

    #[derive(Deserialize)]
    pub struct Job {
        pub id: Id,
        pub name: String,
        pub owner: String,
        pub state: State,
    }

    #[derive(Deserialize)]
    pub enum State {
        Queued,
        Running { pid: u32 },
        Failed(String),
        Stopped(i32, String),
    }
}

#[allow(dead_code)]
mod v2 {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Job {
        pub id: u64,
        pub owner: String,
        pub name: String,
        pub state: super::v1::State,
    }

    #[derive(Deserialize)]
    pub enum State {
        Running { pid: u32 },
        Queued,
        Failed(String),
        Stopped(i32, String),
    }

    #[derive(Deserialize)]
    #[serde(rename = "Job")]
    pub struct JobSwappedState {
        pub id: u64,
        pub name: String,
        pub owner: String,
        pub state: State,
    }
}

/// The same definition in another module: paths do not matter.
#[allow(dead_code)]
mod elsewhere {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Job {
        pub id: u64,
        pub name: String,
        pub owner: String,
        pub state: State,
    }

    #[derive(Deserialize)]
    pub enum State {
        Queued,
        Running { pid: u32 },
        Failed(String),
        Stopped(i32, String),
    }
}

const JOB: &str = r#"struct"Job"{"id":u64,"name":string,"owner":string,"state":enum"State"{"Queued"unit,"Running"{"pid":u32},"Failed"newtype(string),"Stopped"tuple(i32,string)}}"#;

fn job_method<T: serde::de::DeserializeOwned>() -> MethodSchema {
    method(
        "job",
        vec![TypeSchema::of::<u64>().unwrap()],
        TypeSchema::of::<T>().unwrap(),
    )
}

#[test]
fn struct_and_enum_text() {
    assert_eq!(canonical::<v1::Job>(), JOB);
}

#[test]
fn aliases_and_paths_do_not_matter() {
    assert_eq!(canonical::<v1::Id>(), canonical::<u64>());
    assert_eq!(canonical::<elsewhere::Job>(), JOB);
    assert_eq!(
        job_method::<v1::Job>().hash(),
        job_method::<elsewhere::Job>().hash()
    );
    assert_eq!(
        job_method::<v1::Job>().diff(&job_method::<elsewhere::Job>()),
        None
    );
}

#[test]
fn swapped_fields_differ() {
    let here = job_method::<v1::Job>();
    let there = job_method::<v2::Job>();
    assert_ne!(here.hash(), there.hash());
    let diff = here.diff(&there).expect("a difference");
    assert_eq!(
        diff.to_string(),
        "method `job`: `Job` in the return value: struct `Job` field 1 is `name` here and \
         `owner` on the server"
    );
}

#[test]
fn swapped_variants_differ() {
    let here = job_method::<v1::Job>();
    let there = job_method::<v2::JobSwappedState>();
    assert_ne!(here.hash(), there.hash());
    let diff = here.diff(&there).expect("a difference");
    assert_eq!(diff.at, "Job.state");
    assert_eq!(
        diff.to_string(),
        "method `job`: `Job.state` in the return value: enum `State` variant 0 is `Queued` \
         here and `Running` on the server"
    );
}

#[test]
fn argument_differences() {
    let a = method(
        "add",
        vec![TypeSchema::of::<i64>().unwrap(); 2],
        TypeSchema::of::<i64>().unwrap(),
    );
    let b = method(
        "add",
        vec![
            TypeSchema::of::<i64>().unwrap(),
            TypeSchema::of::<i32>().unwrap(),
        ],
        TypeSchema::of::<i64>().unwrap(),
    );
    assert_eq!(
        a.diff(&b).unwrap().to_string(),
        "method `add`: argument 1: `i64` here and `i32` on the server"
    );
    let c = method(
        "add",
        vec![TypeSchema::of::<i64>().unwrap()],
        TypeSchema::of::<i64>().unwrap(),
    );
    assert_eq!(
        a.diff(&c).unwrap().to_string(),
        "method `add`: its arguments: 2 arguments here and 1 argument on the server"
    );
    let s = method(
        "add",
        vec![TypeSchema::of::<i64>().unwrap(); 2],
        TypeSchema::stream_of::<i64>().unwrap(),
    );
    assert_eq!(
        a.diff(&s).unwrap().to_string(),
        "method `add`: the return value: a single value here and a stream on the server"
    );
    assert_ne!(a.hash(), s.hash());
    // A stream after a result is not a plain stream; their errors are compared too.
    let fallible = |error| {
        method(
            "add",
            vec![TypeSchema::of::<i64>().unwrap(); 2],
            TypeSchema::StreamResult {
                item: Shape::of::<i64>().unwrap(),
                error,
            },
        )
    };
    let r = fallible(Shape::of::<String>().unwrap());
    assert_eq!(
        s.diff(&r).unwrap().to_string(),
        "method `add`: the return value: a stream here and a stream after a result on the server"
    );
    assert!(r.diff(&fallible(Shape::of::<String>().unwrap())).is_none());
    assert_eq!(
        r.diff(&fallible(Shape::of::<u8>().unwrap()))
            .unwrap()
            .to_string(),
        "method `add`: `error` in the return value: `string` here and `u8` on the server"
    );
}

#[test]
fn method_text_and_hash() {
    let add = method(
        "add",
        vec![TypeSchema::of::<i64>().unwrap(); 2],
        TypeSchema::of::<i64>().unwrap(),
    );
    assert_eq!(add.canonical(), "(i64,i64)->i64");
    assert_eq!(add.hash(), ferry_codec::signature_hash("(i64,i64)->i64"));
    let watch = method(
        "watch",
        vec![TypeSchema::of::<String>().unwrap()],
        TypeSchema::stream_of::<u32>().unwrap(),
    );
    assert_eq!(watch.canonical(), "(string)->stream<u32>");
    let tail = method(
        "tail",
        vec![TypeSchema::of::<String>().unwrap()],
        TypeSchema::stream_result_of::<String, Option<u8>>().unwrap(),
    );
    assert_eq!(
        tail.canonical(),
        "(string)->result<stream<string>,option<u8>>"
    );
    assert_ne!(tail.hash(), watch.hash());
    let reset = method("reset", vec![], TypeSchema::of::<()>().unwrap());
    assert_eq!(reset.canonical(), "()->unit");
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Node {
    value: u32,
    children: Vec<Node>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
enum List {
    Cons(u8, Box<List>),
    Nil,
}

#[allow(dead_code)]
#[derive(Deserialize)]
enum Expr {
    Lit(i64),
    Add(Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct A {
    b: Option<Box<B>>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct B {
    a: Vec<A>,
}

#[test]
fn recursive_types_terminate() {
    assert_eq!(
        canonical::<Node>(),
        r#"struct"Node"{"value":u32,"children":seq<ref"Node">}"#
    );
    assert_eq!(
        canonical::<List>(),
        r#"enum"List"{"Cons"tuple(u8,ref"List"),"Nil"unit}"#
    );
    assert_eq!(
        canonical::<Expr>(),
        r#"enum"Expr"{"Lit"newtype(i64),"Add"tuple(ref"Expr",ref"Expr"),"Neg"newtype(ref"Expr")}"#
    );
    assert_eq!(
        canonical::<A>(),
        r#"struct"A"{"b":option<struct"B"{"a":seq<ref"A">}>}"#
    );
    assert_eq!(
        canonical::<Vec<List>>(),
        r#"seq<enum"List"{"Cons"tuple(u8,ref"List"),"Nil"unit}>"#
    );
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Page<T> {
    items: Vec<T>,
    next: Option<u64>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Both {
    numbers: Page<u8>,
    names: Page<String>,
}

#[test]
fn generic_instantiations_are_told_apart() {
    assert_eq!(
        canonical::<Both>(),
        r#"struct"Both"{"numbers":struct"Page"{"items":bytes,"next":option<u64>},"names":struct"Page"{"items":seq<string>,"next":option<u64>}}"#
    );
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename = "job-spec", rename_all = "kebab-case")]
struct Renamed {
    max_retries: u8,
    #[serde(rename = "q\"uote\\")]
    odd: Id,
    #[serde(skip)]
    skipped: u8,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Id(u64);

#[allow(dead_code)]
#[derive(Deserialize)]
struct Marker;

#[allow(dead_code)]
#[derive(Deserialize)]
struct Pair(u8, String);

#[test]
fn serde_names_and_struct_kinds() {
    assert_eq!(
        canonical::<Renamed>(),
        r#"struct"job-spec"{"max-retries":u8,"q\"uote\\":struct"Id"newtype(u64)}"#
    );
    assert_eq!(canonical::<Marker>(), r#"struct"Marker"unit"#);
    assert_eq!(canonical::<Pair>(), r#"struct"Pair"tuple(u8,string)"#);
    assert_eq!(
        canonical::<std::time::Duration>(),
        r#"struct"Duration"{"secs":u64,"nanos":u32}"#
    );
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(untagged)]
enum Untagged {
    A(u8),
    B(String),
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(tag = "type")]
enum Internal {
    A { x: u8 },
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    A(u8),
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Inner {
    x: u8,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Flattened {
    a: u8,
    #[serde(flatten)]
    inner: Inner,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Holder {
    ok: u8,
    bad: Untagged,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Infinite(Box<Infinite>);

#[allow(dead_code)]
#[derive(Deserialize)]
enum Never {}

fn unsupported<T: serde::de::DeserializeOwned>() -> (String, String) {
    match Shape::of::<T>() {
        Err(SchemaError::Unsupported { ty, at, .. }) => (ty, at),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn undescribable_types_are_errors() {
    let (ty, at) = unsupported::<Untagged>();
    assert!(ty.ends_with("Untagged"), "{ty}");
    assert_eq!(at, "");
    assert!(unsupported::<Internal>().0.ends_with("Internal"));
    assert!(unsupported::<Adjacent>().0.ends_with("Adjacent"));
    assert!(unsupported::<Flattened>().0.ends_with("Flattened"));
    assert!(unsupported::<serde_json::Value>().0.contains("Value"));
    let (ty, at) = unsupported::<Holder>();
    assert!(ty.ends_with("Holder"), "{ty}");
    assert_eq!(at, "Holder.bad");
    let message = Shape::of::<Holder>().unwrap_err().to_string();
    assert!(message.contains("at `Holder.bad`"), "{message}");
    assert!(message.contains("deserialize_any"), "{message}");
    let (_, _) = unsupported::<Never>();
    match Shape::of::<Infinite>() {
        Err(SchemaError::NoFiniteValue { name, .. }) => assert_eq!(name, "Infinite"),
        other => panic!("expected NoFiniteValue, got {other:?}"),
    }
    assert!(TypeSchema::of::<Untagged>().is_err());
}

/// A type whose Deserialize refuses the placeholder value.
#[derive(Debug)]
struct Port;

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Err(serde::de::Error::custom(format!("bad port {s:?}")))
    }
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Server {
    port: Port,
}

#[test]
fn rejected_placeholder_is_an_error() {
    match Shape::of::<Server>() {
        Err(SchemaError::Rejected { at, message, .. }) => {
            assert_eq!(at, "Server.port");
            assert_eq!(message, "bad port \"\"");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[test]
fn json_rendering() {
    let m = method(
        "job",
        vec![
            TypeSchema::of::<u64>().unwrap(),
            TypeSchema::stream_of::<Pair>().unwrap(),
        ],
        TypeSchema::of::<Option<List>>().unwrap(),
    );
    assert_eq!(
        m.to_json(),
        json!({
            "name": "job",
            "args": ["u64", {"stream": {"struct": "Pair", "tuple": ["u8", "string"]}}],
            "returns": {"option": {"enum": "List", "variants": [
                {"name": "Cons", "tuple": ["u8", {"ref": "List"}]},
                {"name": "Nil", "unit": true},
            ]}},
            "hash": format!("{:#018x}", m.hash()),
        })
    );
}

#[test]
fn json_reads_back_what_it_rendered() {
    let methods = [
        method(
            "job",
            vec![
                TypeSchema::of::<u64>().unwrap(),
                TypeSchema::stream_of::<Pair>().unwrap(),
            ],
            TypeSchema::of::<Option<List>>().unwrap(),
        ),
        method(
            "all",
            vec![
                TypeSchema::of::<HashMap<String, (u8, i128, f32)>>().unwrap(),
                TypeSchema::of::<Node>().unwrap(),
                TypeSchema::of::<Expr>().unwrap(),
                TypeSchema::of::<A>().unwrap(),
                TypeSchema::of::<Renamed>().unwrap(),
                TypeSchema::of::<(Id, Marker, Vec<u8>, char, bool)>().unwrap(),
            ],
            TypeSchema::stream_of::<BTreeMap<u16, Option<String>>>().unwrap(),
        ),
        method("reset", vec![], TypeSchema::of::<()>().unwrap()),
        method(
            "tail",
            vec![TypeSchema::of::<String>().unwrap()],
            TypeSchema::stream_result_of::<Pair, Node>().unwrap(),
        ),
    ];
    for m in methods {
        let back = MethodSchema::from_json(&m.to_json()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.hash(), m.hash());
    }
}

#[test]
fn json_that_is_not_a_schema_says_where() {
    let err = |value: serde_json::Value| MethodSchema::from_json(&value).unwrap_err().to_string();
    assert_eq!(
        err(json!({"name": "m", "args": ["u65"], "returns": "unit"})),
        "not a method schema in JSON at `args[0]`: `u65` is not a primitive type"
    );
    assert_eq!(
        err(
            json!({"name": "m", "args": [], "returns": {"struct": "S", "fields": [{"name": "a"}]}})
        ),
        "not a method schema in JSON at `returns.fields[0]`: missing member `type`"
    );
    assert_eq!(
        err(json!({"name": "m", "args": [{"seq": {"stream": "u8"}}], "returns": "unit"})),
        "not a method schema in JSON at `args[0].seq`: a stream is only allowed as a whole argument or return type"
    );
    assert_eq!(
        err(json!({"name": "m", "args": [{"stream": "u8", "error": "string"}], "returns": "unit"})),
        "not a method schema in JSON at `args[0]`: a stream after a result is only allowed as a return type"
    );
    assert_eq!(
        err(json!({"name": "m", "args": [], "returns": "unit", "hash": "0x0000000000000001"})),
        "not a method schema in JSON at `hash`: 0x0000000000000001 is not the hash of the schema read (0x831d6ed80b689f6b)"
    );
    assert_eq!(
        err(json!(["m"])),
        "not a method schema in JSON: expected an object"
    );
    let mut deep = json!("u8");
    for _ in 0..1000 {
        deep = json!({ "seq": deep });
    }
    let deep = err(json!({"name": "m", "args": [deep], "returns": "unit"}));
    assert!(deep.contains("nested deeper than 128 levels"), "{deep}");
}

#[test]
fn json_values_are_checked() {
    let m = method(
        "put",
        vec![
            TypeSchema::of::<v1::Job>().unwrap(),
            TypeSchema::of::<Vec<Node>>().unwrap(),
            TypeSchema::stream_of::<u8>().unwrap(),
        ],
        TypeSchema::of::<()>().unwrap(),
    );
    let job = json!({"id": 1, "name": "a", "owner": "b", "state": {"Running": {"pid": 7}}});
    let nodes = json!([{"value": 1, "children": [{"value": 2, "children": []}]}]);
    m.check_json_args(&json!([job, nodes, null])).unwrap();
    let err = |args| m.check_json_args(&args).unwrap_err().to_string();
    assert_eq!(
        err(json!([job, nodes])),
        "`the arguments`: expected an array of 3 arguments, found an array of 2 elements"
    );
    let bad_state = json!({"id": 1, "name": "a", "owner": "b", "state": "Sleeping"});
    assert_eq!(
        err(json!([bad_state, nodes, null])),
        "`argument 0.state`: expected a variant of enum `State` (Queued, Running, Failed, \
         Stopped), found the string \"Sleeping\""
    );
    let bad_id = json!({"id": -1, "name": "a", "owner": "b", "state": "Queued"});
    assert_eq!(
        err(json!([bad_id, nodes, null])),
        "`argument 0.id`: expected `u64` (an integer in its range), found the number -1"
    );
    let bad_child = json!([{"value": 1, "children": [{"value": "x", "children": []}]}]);
    assert_eq!(
        err(json!([job, bad_child, null])),
        "`argument 1[0].children[0].value`: expected `u32` (an integer in its range), found \
         the string \"x\""
    );
    let missing = json!({"id": 1, "name": "a", "state": "Queued"});
    assert_eq!(
        err(json!([missing, nodes, null])),
        "`argument 0`: expected field `owner` of struct `Job`, found no such field"
    );
    assert_eq!(
        err(json!([job, nodes, [1]])),
        "`argument 2`: expected null (a stream's items are sent apart), found an array of 1 \
         elements"
    );
}

mod properties {
    use ferry_codec::schema::{Body, Field, MethodSchema, Primitive, Shape, TypeSchema, Variant};
    use proptest::prelude::*;

    fn primitive() -> impl Strategy<Value = Shape> {
        prop_oneof![
            Just(Shape::Primitive(Primitive::U64)),
            Just(Shape::Primitive(Primitive::String)),
            Just(Shape::Primitive(Primitive::Bool)),
            Just(Shape::Primitive(Primitive::Bytes)),
        ]
    }

    /// A struct with 2..6 fields of distinct names, and two distinct field positions.
    fn job() -> impl Strategy<Value = (Vec<Field>, usize, usize)> {
        (2usize..6)
            .prop_flat_map(|n| (proptest::collection::vec(primitive(), n), 0..n, 0..n))
            .prop_filter("two positions", |(_, i, j)| i != j)
            .prop_map(|(shapes, i, j)| {
                let fields = shapes
                    .into_iter()
                    .enumerate()
                    .map(|(k, shape)| Field {
                        name: format!("f{k}"),
                        shape,
                    })
                    .collect();
                (fields, i, j)
            })
    }

    fn returning(shape: Shape) -> MethodSchema {
        MethodSchema::new("m", vec![], TypeSchema::Value(shape))
    }

    proptest! {
        #[test]
        fn swapping_two_fields_is_seen((fields, i, j) in job()) {
            let here = Shape::Struct { name: "Job".into(), body: Body::Struct(fields.clone()) };
            let mut swapped = fields;
            swapped.swap(i, j);
            let there = Shape::Struct { name: "Job".into(), body: Body::Struct(swapped) };
            let (here, there) = (returning(here), returning(there));
            prop_assert_ne!(here.canonical(), there.canonical());
            prop_assert_ne!(here.hash(), there.hash());
            let diff = here.diff(&there).expect("a difference");
            let first = i.min(j);
            let expected = format!("field {first} is `f{first}` here");
            prop_assert!(diff.detail.contains(&expected), "{}", diff);
            prop_assert_eq!(here.diff(&here.clone()), None);
        }

        #[test]
        fn swapping_two_variants_is_seen((fields, i, j) in job()) {
            let variants: Vec<Variant> = fields
                .into_iter()
                .map(|f| Variant { name: f.name, body: Body::Newtype(Box::new(f.shape)) })
                .collect();
            let here = Shape::Enum { name: "State".into(), variants: variants.clone() };
            let mut swapped = variants;
            swapped.swap(i, j);
            let there = Shape::Enum { name: "State".into(), variants: swapped };
            let (here, there) = (returning(here), returning(there));
            prop_assert_ne!(here.hash(), there.hash());
            let diff = here.diff(&there).expect("a difference");
            let first = i.min(j);
            let expected = format!("variant {first} is `f{first}` here");
            prop_assert!(diff.detail.contains(&expected), "{}", diff);
        }
    }
}
