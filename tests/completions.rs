//! `apr-lint completions SHELL` and `apr-lint man [COMMAND]`: generated from the same clap
//! definitions as the parser, so every command and option the tool accepts is in both.

use std::io::Write;
use std::process::{Command, Stdio};

fn run(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_apr-lint"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

fn has(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

#[test]
fn completions_for_every_shell_name_the_commands_and_options() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let (code, out, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for word in [
            "rosetta",
            "inspect",
            "explain",
            "against",
            "deep",
            "threshold",
        ] {
            assert!(out.contains(word), "{shell} completions lack `{word}`");
        }
    }
    let (code, _, err) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is bad usage: {err}");
}

#[test]
fn bash_sources_the_completion_script() {
    if !has("bash") {
        eprintln!("bash not installed: skipped");
        return;
    }
    let (code, script, _) = run(&["completions", "bash"]);
    assert_eq!(code, 0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("apr-lint.bash");
    std::fs::write(&path, script).unwrap();
    // Source it, then ask bash's own completion machinery for `apr-lint ros<TAB>`.
    let probe = format!(
        "set -e; source '{}'; complete -p apr-lint; \
         COMP_WORDS=(apr-lint ros); COMP_CWORD=1; COMP_LINE='apr-lint ros'; COMP_POINT=12; \
         _apr__lint apr-lint ros apr-lint; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        path.display()
    );
    let o = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &probe])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "bash could not source the script: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.lines().any(|l| l == "rosetta"),
        "`apr-lint ros<TAB>` does not complete to rosetta:\n{out}"
    );
}

#[test]
fn man_pages_render() {
    let (code, top, err) = run(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        top.starts_with(".ie") || top.contains(".TH apr-lint 1"),
        "not roff:\n{top}"
    );
    assert!(top.contains(".TH apr-lint 1"));
    assert!(
        top.contains("apr\\-lint\\-rosetta(1)"),
        "the top page lists the commands"
    );
    let (code, lint, err) = run(&["man", "lint"]);
    assert_eq!(code, 0, "{err}");
    assert!(lint.contains(".TH apr-lint-lint 1"));
    assert!(
        lint.contains("\\-\\-against"),
        "the main job's page has its options"
    );
    let (code, _, err) = run(&["man", "lnt"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("APRL-T008") && err.contains("known: lint"),
        "{err}"
    );

    if !has("groff") {
        eprintln!("groff not installed: rendering skipped");
        return;
    }
    for page in [top, lint] {
        let mut g = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        g.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
        let o = g.wait_with_output().unwrap();
        assert!(o.status.success());
        assert!(
            o.stderr.is_empty(),
            "groff warns: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
