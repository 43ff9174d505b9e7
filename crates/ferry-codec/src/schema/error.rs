//! Why a type could not be described.

/// A type whose structure [`Shape::of`](super::Shape::of) cannot describe.
///
/// `ty` is the Rust type that was traced (as `std::any::type_name` spells it) and `at` the
/// place inside it, written `Job.state`, `State::Running.0`, `items[]`, and empty for the
/// type itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// A part of the type needs a self-describing format or a serde feature that has no
    /// structure to describe.
    #[error("cannot describe `{ty}`{}: {what}", at_suffix(at))]
    Unsupported {
        /// The traced type.
        ty: String,
        /// Where inside it.
        at: String,
        /// What it asked for.
        what: String,
    },
    /// The type's `Deserialize` impl refused the placeholder value the trace offered it
    /// (a type that validates its input, such as one parsed from a string).
    #[error(
        "cannot describe `{ty}`{}: its Deserialize impl refused a placeholder value: {message}",
        at_suffix(at)
    )]
    Rejected {
        /// The traced type.
        ty: String,
        /// Where inside it.
        at: String,
        /// What the impl reported.
        message: String,
    },
    /// A recursive type with no finite value: every way through it leads back to itself.
    #[error("cannot describe `{ty}`: `{name}` has no finite value (it always contains itself)")]
    NoFiniteValue {
        /// The traced type.
        ty: String,
        /// The serde name of the struct or enum that contains itself.
        name: String,
    },
    /// The type is nested deeper, or its description is larger, than the limits allow.
    #[error("cannot describe `{ty}`: {what}")]
    TooLarge {
        /// The traced type.
        ty: String,
        /// Which limit was exceeded.
        what: String,
    },
    /// A recursive reference whose target is hidden by another struct or enum of the same
    /// name nearer to it, so a name reference cannot express it.
    #[error("cannot describe `{ty}`: a recursive reference to `{name}` is hidden by another type named `{name}`")]
    AmbiguousRecursion {
        /// The traced type.
        ty: String,
        /// The serde name.
        name: String,
    },
    /// A schema in JSON (section 10.4 of `docs/protocol.md`) that does not follow the
    /// layout, read by [`MethodSchema::from_json`](super::MethodSchema::from_json).
    #[error("not a method schema in JSON{}: {what}", at_suffix(at))]
    Json {
        /// Where in the JSON: `args[0].fields[1].type`, empty for the whole.
        at: String,
        /// What is wrong there.
        what: String,
    },
}

fn at_suffix(at: &str) -> String {
    if at.is_empty() {
        String::new()
    } else {
        format!(" at `{at}`")
    }
}
