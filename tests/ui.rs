//! The macro's errors for what it cannot serve, checked against their expected text, and
//! forms it accepts that once were errors (`tests/ui/pass`), which must compile and run.
//! Compiler messages differ between compiler versions and targets: these run natively only.
#![cfg(not(windows))]

#[test]
fn macro_errors_point_at_the_offending_code() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
