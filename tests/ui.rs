//! Compile-level tests of `#[derive(Session)]`: misuses must fail with a clear
//! error at the offending token, correct uses must compile (and run).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
