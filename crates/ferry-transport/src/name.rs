//! Endpoint names and how they map to platform addresses.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::TransportError;
use crate::sys;

/// Longest plain name, in bytes.
pub const MAX_PLAIN_NAME_LEN: usize = 100;

/// Environment variable that, when set and non-empty, replaces the directory that holds the
/// sockets of plain names on Unix (tests point it at a private temporary directory).
pub const RUNTIME_DIR_ENV: &str = "FERRY_RUNTIME_DIR";

/// An endpoint name.
///
/// - A *plain* name such as `"myapp.echo"` (1 to 100 bytes of `[A-Za-z0-9._-]`, not starting
///   with `.`) maps to a per-user location: on Linux `$XDG_RUNTIME_DIR/ferry/<name>.sock`, or
///   `/tmp/ferry-<uid>/<name>.sock` when `XDG_RUNTIME_DIR` is unset or empty; on other Unix
///   systems `$TMPDIR/ferry-<uid>/<name>.sock` (`/tmp` without `TMPDIR`); on Windows the pipe
///   `\\.\pipe\<name>`. The environment variable [`FERRY_RUNTIME_DIR`](RUNTIME_DIR_ENV)
///   replaces the Unix directory when set. The mapping is read when the name is used.
/// - On Unix a string that starts with `/`, `./` or `../` is an explicit socket path (see
///   also [`Name::path`]). Any other string containing `/` is refused, so a plain name with
///   a typo never silently becomes a path relative to the working directory: write
///   `./run/app.sock` for a relative path.
/// - On Linux `"@foo"` is the abstract socket `foo` (see [`Name::abstract_name`]).
/// - On Windows `\\.\pipe\...` is a full pipe name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name {
    kind: NameKind,
}

/// What a [`Name`] holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum NameKind {
    /// A portable name, mapped to a per-user address.
    Plain(String),
    /// An explicit socket path.
    Path(PathBuf),
    /// A Linux abstract socket name, without the leading NUL.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    Abstract(Vec<u8>),
    /// A full Windows pipe name.
    Pipe(String),
}

impl Name {
    /// Parses an endpoint name; see the type documentation for the accepted forms.
    pub fn new(s: &str) -> Result<Name, TransportError> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(rest) = s.strip_prefix('@') {
            return Name::abstract_name(rest).map_err(|err| match err {
                TransportError::InvalidName { reason, .. } => invalid(s, reason),
                other => other,
            });
        }
        if is_pipe_prefix(s) {
            return pipe_name(s);
        }
        if is_path(s) {
            return if cfg!(unix) {
                Ok(Name::path(s))
            } else {
                Err(invalid(s, "socket paths are only supported on unix"))
            };
        }
        if s.contains('/') {
            return Err(invalid(
                s,
                format!(
                    "a plain name cannot contain '/'; a socket path starts with '/', './' or \
                     '../' (write \"./{s}\" for a path relative to the working directory)"
                ),
            ));
        }
        validate_plain(s)?;
        Ok(Name {
            kind: NameKind::Plain(s.to_owned()),
        })
    }

    /// An explicit Unix socket path, used as is (no validation; binding reports problems).
    pub fn path(p: impl Into<PathBuf>) -> Name {
        Name {
            kind: NameKind::Path(p.into()),
        }
    }

    /// A Linux abstract socket name (no file in the file system): 1 to 107 bytes, no NUL.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn abstract_name(n: &str) -> Result<Name, TransportError> {
        if n.is_empty() {
            return Err(invalid(n, "abstract names must not be empty"));
        }
        if n.len() > MAX_ABSTRACT_LEN {
            return Err(invalid(
                n,
                format!(
                    "abstract name is {} bytes, the limit is {MAX_ABSTRACT_LEN}",
                    n.len()
                ),
            ));
        }
        if n.contains('\0') {
            return Err(invalid(n, "abstract names must not contain NUL"));
        }
        Ok(Name {
            kind: NameKind::Abstract(n.as_bytes().to_vec()),
        })
    }

    /// The platform address: a socket path, `@name` for an abstract socket, or `\\.\pipe\name`.
    pub fn address(&self) -> String {
        match &self.kind {
            NameKind::Plain(plain) => sys::plain_address(plain),
            // One allocation of the right size (`display().to_string()` grows a string).
            NameKind::Path(path) => path.to_string_lossy().into_owned(),
            NameKind::Abstract(bytes) => format!("@{}", String::from_utf8_lossy(bytes)),
            NameKind::Pipe(pipe) => pipe.clone(),
        }
    }

    /// The directory where the endpoints of plain names live, for tools that list them:
    /// on Unix the runtime directory of this process's environment and user (its entries
    /// are `<name>.sock`), on Windows `\\.\pipe\` (its entries are every pipe of the
    /// machine, not only ferry's: pipe names carry no mark of their server).
    /// [`Name::plain_name_of`] turns an entry back into a plain name.
    pub fn plain_directory() -> std::path::PathBuf {
        sys::plain_directory()
    }

    /// The plain name whose endpoint is the entry `entry` of [`Name::plain_directory`]
    /// (`myapp.calc.sock` on Unix, `myapp.calc` on Windows), or `None` when the entry is
    /// no plain name's endpoint.
    pub fn plain_name_of(entry: &str) -> Option<&str> {
        sys::plain_name_of(entry)
    }

    /// The plain name, when this is one.
    pub fn as_plain(&self) -> Option<&str> {
        match &self.kind {
            NameKind::Plain(plain) => Some(plain),
            _ => None,
        }
    }

    #[cfg_attr(windows, allow(dead_code))] // used by the named-pipe code to come
    pub(crate) fn kind(&self) -> &NameKind {
        &self.kind
    }
}

/// `sun_path` holds 108 bytes on Linux; an abstract name gives up the first one to NUL.
#[cfg(any(target_os = "linux", target_os = "android"))]
const MAX_ABSTRACT_LEN: usize = 107;

const PIPE_PREFIX: &str = r"\\.\pipe\";

/// Whether `s` is written as a socket path: absolute, or relative with `./` or `../`.
fn is_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with("./") || s.starts_with("../")
}

fn is_pipe_prefix(s: &str) -> bool {
    s.get(..PIPE_PREFIX.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(PIPE_PREFIX))
}

fn pipe_name(s: &str) -> Result<Name, TransportError> {
    if !cfg!(windows) {
        return Err(invalid(s, "pipe names are only supported on windows"));
    }
    let rest = &s[PIPE_PREFIX.len()..];
    if rest.is_empty() {
        return Err(invalid(s, "the pipe name after \\\\.\\pipe\\ is empty"));
    }
    if s.len() > 256 {
        return Err(invalid(
            s,
            format!("pipe name is {} bytes, the limit is 256", s.len()),
        ));
    }
    Ok(Name {
        kind: NameKind::Pipe(s.to_owned()),
    })
}

fn validate_plain(s: &str) -> Result<(), TransportError> {
    if s.is_empty() {
        return Err(invalid(s, "name is empty"));
    }
    if s.len() > MAX_PLAIN_NAME_LEN {
        return Err(invalid(
            s,
            format!(
                "name is {} bytes, the limit is {MAX_PLAIN_NAME_LEN}",
                s.len()
            ),
        ));
    }
    if s.starts_with('.') {
        return Err(invalid(s, "name must not start with '.'"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(invalid(
            s,
            format!("character {c:?} is not allowed (use A-Z a-z 0-9 . _ -)"),
        ));
    }
    Ok(())
}

fn invalid(name: &str, reason: impl Into<String>) -> TransportError {
    TransportError::InvalidName {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address())
    }
}

impl FromStr for Name {
    type Err = TransportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Name::new(s)
    }
}

impl TryFrom<&str> for Name {
    type Error = TransportError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Name::new(s)
    }
}

impl TryFrom<String> for Name {
    type Error = TransportError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Name::new(&s)
    }
}

/// Anything that names an endpoint, so APIs can take `impl ToName`.
pub trait ToName {
    /// Converts to a [`Name`], validating it.
    fn to_name(&self) -> Result<Name, TransportError>;
}

impl ToName for Name {
    fn to_name(&self) -> Result<Name, TransportError> {
        Ok(self.clone())
    }
}

impl<T: ToName + ?Sized> ToName for &T {
    fn to_name(&self) -> Result<Name, TransportError> {
        (**self).to_name()
    }
}

impl ToName for str {
    fn to_name(&self) -> Result<Name, TransportError> {
        Name::new(self)
    }
}

impl ToName for String {
    fn to_name(&self) -> Result<Name, TransportError> {
        Name::new(self)
    }
}

impl ToName for Path {
    fn to_name(&self) -> Result<Name, TransportError> {
        Ok(Name::path(self))
    }
}

impl ToName for PathBuf {
    fn to_name(&self) -> Result<Name, TransportError> {
        Ok(Name::path(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> String {
        match Name::new(s) {
            Err(TransportError::InvalidName { name, reason }) => {
                assert_eq!(name, s);
                reason
            }
            other => panic!("expected InvalidName for {s:?}, got {other:?}"),
        }
    }

    #[test]
    fn plain_names_are_accepted() {
        for s in ["myapp.echo", "a", "A-b_c.9", &"x".repeat(100)] {
            let name = Name::new(s).unwrap();
            assert_eq!(name.as_plain(), Some(s));
        }
    }

    #[test]
    fn invalid_plain_names_say_why() {
        assert!(reason("").contains("empty"));
        assert!(reason(".hidden").contains("'.'"));
        assert!(reason(&"x".repeat(101)).contains("101 bytes"));
        assert!(reason("a b").contains("' '"));
        assert!(reason("é").contains("'é'"));
        assert!(reason("a:b").contains("':'"));
    }

    #[cfg(unix)]
    #[test]
    fn slash_means_path_on_unix() {
        let name = Name::new("/tmp/x.sock").unwrap();
        assert_eq!(name, Name::path("/tmp/x.sock"));
        assert_eq!(name.address(), "/tmp/x.sock");
        assert_eq!(Name::new("./x.sock").unwrap(), Name::path("./x.sock"));
        assert_eq!(
            Name::new("../run/x.sock").unwrap(),
            Name::path("../run/x.sock")
        );
        assert!(reason(r"\\.\pipe\foo").contains("windows"));
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn at_means_abstract_on_linux() {
        let name = Name::new("@foo").unwrap();
        assert_eq!(name, Name::abstract_name("foo").unwrap());
        assert_eq!(name.address(), "@foo");
        assert_eq!(name.to_string(), "@foo");
        assert!(reason("@").contains("empty"));
        assert!(reason(&format!("@{}", "x".repeat(108))).contains("108 bytes"));
    }

    #[cfg(windows)]
    #[test]
    fn pipe_names_on_windows() {
        let name = Name::new(r"\\.\pipe\foo").unwrap();
        assert_eq!(name.address(), r"\\.\pipe\foo");
        assert_eq!(Name::new("foo").unwrap().address(), r"\\.\pipe\foo");
        assert!(reason("./b").contains("unix"));
    }

    #[test]
    fn a_plain_name_with_a_slash_is_refused_saying_how_to_write_a_path() {
        for s in ["rel/x.sock", "myapp/calc", "a/"] {
            assert_eq!(
                Name::new(s).unwrap_err().to_string(),
                format!(
                    "invalid endpoint name \"{s}\": a plain name cannot contain '/'; a socket \
                     path starts with '/', './' or '../' (write \"./{s}\" for a path relative \
                     to the working directory)"
                )
            );
        }
    }

    #[test]
    fn conversions_agree() {
        let a: Name = "svc".parse().unwrap();
        let b = Name::try_from("svc").unwrap();
        let c = Name::try_from(String::from("svc")).unwrap();
        let d = "svc".to_name().unwrap();
        let e = String::from("svc").to_name().unwrap();
        fn via(n: impl ToName) -> Name {
            n.to_name().unwrap()
        }
        let f = via(&a);
        assert!([&b, &c, &d, &e, &f].iter().all(|n| **n == a));
        assert_eq!(a.to_string(), a.address());
        let p = Path::new("/x/y.sock").to_name().unwrap();
        assert_eq!(p, Name::path("/x/y.sock"));
        assert_eq!(PathBuf::from("/x/y.sock").to_name().unwrap(), p);
    }
}
