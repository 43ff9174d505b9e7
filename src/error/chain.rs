//! [`ErrorChain`]: an error and its sources on one line.

use std::error::Error as StdError;
use std::fmt;

/// Displays an error followed by each of its [`source`](StdError::source)s, joined by
/// ": " — `cannot connect: no server at /run/user/1000/ferry/x.sock: No such file or
/// directory (os error 2)`.
///
/// ferry's errors follow one rule: an error's `Display` says what failed at its own level
/// and leaves the cause to `source()`, so no text appears twice. Printing the whole chain
/// is then the printer's job: this type does it for any error, and
/// [`ferry::Error`](crate::Error)'s alternate form `{:#}` does the same.
///
/// ```
/// use ferry::ErrorChain;
///
/// let io = std::io::Error::new(std::io::ErrorKind::Other, "disk full");
/// let err = ferry::Error::new(ferry::ErrorKind::Server, "cannot bind the endpoint")
///     .with_source(io);
/// assert_eq!(ErrorChain::new(&err).to_string(), "cannot bind the endpoint: disk full");
/// assert_eq!(ErrorChain::new(&err).to_string(), format!("{err:#}"));
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a> {
    error: &'a (dyn StdError + 'static),
}

impl<'a> ErrorChain<'a> {
    /// The chain that starts at `error`.
    pub fn new(error: &'a (dyn StdError + 'static)) -> Self {
        ErrorChain { error }
    }
}

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Each level's own text (`{}`, never `{:#}`), so a `ferry::Error` inside the chain
        // does not print its sources twice.
        write!(f, "{}", self.error)?;
        let mut source = self.error.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, ErrorKind};

    #[test]
    fn every_level_once() {
        let io = std::io::Error::other("boom");
        let inner =
            Error::new(ErrorKind::Closed, "the connection failed while reading").with_source(io);
        let outer = Error::new(ErrorKind::Closed, "the call failed").with_source(inner);
        assert_eq!(outer.to_string(), "the call failed");
        assert_eq!(
            format!("{outer:#}"),
            "the call failed: the connection failed while reading: boom"
        );
        assert_eq!(ErrorChain::new(&outer).to_string(), format!("{outer:#}"));
    }

    #[test]
    fn an_error_without_source_is_its_message() {
        let err = Error::new(ErrorKind::Usage, "no runtime");
        assert_eq!(format!("{err:#}"), "no runtime");
        assert_eq!(ErrorChain::new(&err).to_string(), "no runtime");
    }

    #[test]
    fn duplicates_keep_the_cause() {
        let err = Error::new(ErrorKind::Closed, "the connection failed while writing")
            .with_source(std::io::Error::other("broken pipe"));
        let copy = err.duplicate();
        assert_eq!(
            format!("{copy:#}"),
            "the connection failed while writing: broken pipe"
        );
    }
}
