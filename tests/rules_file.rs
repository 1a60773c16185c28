//! Rule files: the built-in set is valid; bad files are refused with a code and the TOML line.

use std::path::PathBuf;

use apr_lint::rules::RuleSet;

fn load(text: &str) -> Result<RuleSet, Vec<apr_lint::rules::RuleError>> {
    RuleSet::from_texts(&[(PathBuf::from("x.toml"), text.to_string())])
}

const GOOD: &str = r#"
arch = "tiny"
names = ["tiny"]
rope_type = "neox"
gguf_qk_order = "neox"

[config]
head_dim = "hidden / n_head"

[roles.token_embd]
gguf = ["token_embd.weight"]
hf = ["model.embed_tokens.weight"]
dims = ["vocab", "hidden"]

[roles.attn_q]
per_layer = true
gguf = ["blk.{i}.attn_q.weight"]
hf = ["model.layers.{i}.self_attn.q_proj.weight"]
dims = ["n_head * head_dim", "hidden"]
rope_rows = "n_head"
"#;

#[test]
fn builtin_rules_are_valid_and_cover_the_required_architectures() {
    let r = RuleSet::builtin();
    for a in ["qwen2", "qwen3", "llama", "mistral"] {
        assert!(r.arch(a).is_some(), "{a}");
    }
    assert!(r.arch("Qwen2ForCausalLM").is_some());
    let q2 = r.arch("qwen2").unwrap();
    assert!(q2.role("attn_q_bias").is_some());
    assert!(r.arch("qwen3").unwrap().role("attn_q_norm").is_some());
    // llama.cpp's llama loads Q/K/V biases when present (not required): optional roles.
    for b in ["attn_q_bias", "attn_k_bias", "attn_v_bias"] {
        assert!(!r.arch("llama").unwrap().role(b).expect(b).required, "{b}");
    }
    // The shipped directory loads the same way as the compiled-in copy.
    let dir = RuleSet::from_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap();
    assert_eq!(dir.arch_names(), r.arch_names());
}

#[test]
fn a_good_file_loads() {
    let r = load(GOOD).unwrap();
    assert_eq!(r.archs[0].roles.len(), 2);
}

fn err_line(text: &str) -> (String, Option<usize>) {
    let e = load(text).unwrap_err();
    (e[0].lint.code.to_string(), e[0].line)
}

#[test]
fn unknown_key_points_at_its_line() {
    let bad = GOOD.replace(
        "per_layer = true\ngguf = [\"blk.{i}.attn_q.weight\"]",
        "per_layers = true\ngguf = [\"blk.{i}.attn_q.weight\"]",
    );
    let (code, line) = err_line(&bad);
    assert_eq!(code, "APRL-R001");
    let want = bad
        .lines()
        .position(|l| l.starts_with("per_layers"))
        .unwrap()
        + 1;
    assert_eq!(line, Some(want));
}

#[test]
fn bad_formula_and_unknown_symbol() {
    let bad = GOOD.replace("\"n_head * head_dim\"", "\"n_head * \"");
    let (code, line) = err_line(&bad);
    assert_eq!(code, "APRL-R002");
    assert_eq!(
        line,
        Some(bad.lines().position(|l| l.contains("n_head * \"")).unwrap() + 1)
    );
    let bad = GOOD.replace("\"n_head * head_dim\"", "\"n_heads * head_dim\"");
    assert_eq!(err_line(&bad).0, "APRL-R002");
}

#[test]
fn bad_values() {
    assert_eq!(
        err_line(&GOOD.replace("rope_type = \"neox\"", "rope_type = \"gptj\"")).0,
        "APRL-R003"
    );
    assert_eq!(
        err_line(&GOOD.replace("rope_rows = \"n_head\"", "rope_rows = \"heads\"")).0,
        "APRL-R003"
    );
    assert_eq!(
        err_line(&GOOD.replace("blk.{i}.attn_q.weight", "blk.attn_q.weight")).0,
        "APRL-R003"
    );
    // Two files defining one architecture.
    let e = RuleSet::from_texts(&[
        (PathBuf::from("a.toml"), GOOD.into()),
        (PathBuf::from("b.toml"), GOOD.into()),
    ])
    .unwrap_err();
    assert_eq!(e[0].lint.code, "APRL-R003");
    assert!(load("not toml [[").is_err());
}

#[test]
fn cli_rules_dir_error_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("x.toml"),
        GOOD.replace(
            "dims = [\"vocab\", \"hidden\"]",
            "dims = [\"vocab\", \"hiden\"]",
        ),
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_apr-lint"))
        .args(["rules", "--rules", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("APRL-R002") && err.contains("x.toml:"),
        "{err}"
    );
}
