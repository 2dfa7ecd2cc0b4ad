//! `vouch demo` is the newcomer's first command: it must work with nothing but this binary.

use std::process::Command;

#[test]
fn demo_runs_end_to_end_and_every_answer_is_the_expected_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["demo", "--dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Every answer was the expected one."),
        "{stdout}"
    );
    for row in [
        "ALLOW   Pod/web",
        "DENY    Deployment/api",
        "DENY    Pod/debug-tools",
        "DENY    CronJob/nightly",
        "ALLOW   Deployment/experiment",
    ] {
        assert!(stdout.contains(row), "missing {row:?} in\n{stdout}");
    }
    assert!(stdout.contains("no Notation signature found"));
    assert!(stdout.contains("authenticity validation failed"));
    assert!(stdout.contains("integrity validation failed"));
    // What it leaves behind works with `vouch verify` and `vouch policy check`.
    let check = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args([
            "policy",
            "check",
            "--trust-policy",
            dir.path().join("trustpolicy.json").to_str().unwrap(),
            "--trust-store",
            dir.path().join("truststore").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(dir.path().join("review.json").is_file());
}
