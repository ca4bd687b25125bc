//! The self-checking examples run and say what they show.

mod support;

use std::process::Command;

use support::demo::example_binary;

fn run(name: &str) -> String {
    let output = Command::new(example_binary(name)).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{name} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_key_rotation_example_logs_nobody_out() {
    let out = run("key_rotation");
    assert!(out.contains("after the old key is gone: visit 3"), "{out}");
}

#[test]
fn the_api_client_example_keeps_its_session_in_a_header() {
    let out = run("api_client");
    assert_eq!(
        out.lines().skip(1).collect::<Vec<_>>(),
        ["call 2", "call 3"],
        "{out}"
    );
}
