//! Whole-tensor value checks: every float value by default (while a file's floats total ≤ 256 MB),
//! `--deep` (every value, every block scale, full same-dtype comparison, the footer CRC), and the
//! statement of what was sampled in every report. Pairs made with the project's writers.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

use apr_lint::diag::Severity;
use apr_lint::format::writer::apr::{AprTensor, AprWriter, Flavour};
use apr_lint::format::writer::convert::gguf_to_apr;
use apr_lint::format::writer::generate::{Shape, TINY, gguf_model};
use apr_lint::format::{Source, gguf};
use apr_lint::model::ModelView;
use apr_lint::pipeline::{self, Options, Outcome, Verdict};
use apr_lint::quant::DType;
use tempfile::TempDir;

/// A generated reference GGUF on disk and the APR a correct converter makes of it.
struct Case {
    dir: TempDir,
    gguf: PathBuf,
    apr: AprWriter,
}

impl Case {
    fn generated(shape: &Shape, dt: DType) -> Case {
        let dir = tempfile::tempdir().expect("tempdir");
        let gguf = dir.path().join("model.gguf");
        gguf_model(shape, dt, 7).write(&gguf).expect("write gguf");
        let g = gguf::read(Source::open(&gguf).expect("open")).expect("read gguf");
        let apr = gguf_to_apr(&g, Flavour::Aprender);
        Case { dir, gguf, apr }
    }

    fn t(&mut self, name: &str) -> &mut AprTensor {
        self.apr
            .tensors
            .iter_mut()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tensor {name}"))
    }

    fn apr_path(&self) -> PathBuf {
        let p = self.dir.path().join("model.apr");
        self.apr.write(&p).expect("write apr");
        p
    }

    fn lint(&self, deep: bool) -> Outcome {
        let a = ModelView::open(&self.apr_path()).expect("apr reads");
        let b = ModelView::open(&self.gguf).expect("gguf reads");
        let opts = Options {
            deep,
            ..Options::default()
        };
        let o = pipeline::lint(&a, Some(&b), &opts);
        check_findings(
            &o,
            &[
                (a.path().display().to_string(), a.source().len()),
                (b.path().display().to_string(), b.source().len()),
            ],
        );
        o
    }
}

fn describe(o: &Outcome) -> String {
    o.findings
        .iter()
        .map(|f| format!("{} {} {:?} {}", f.code, f.severity, f.tensor, f.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The non-finite error naming `tensor`.
fn non_finite<'o>(o: &'o Outcome, tensor: &str) -> &'o apr_lint::diag::Finding {
    o.findings
        .iter()
        .find(|f| {
            f.class() == "non-finite"
                && f.tensor.as_deref() == Some(tensor)
                && f.severity == Severity::Error
        })
        .unwrap_or_else(|| panic!("no non-finite error for {tensor}:\n{}", describe(o)))
}

fn cli(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_apr-lint"))
        .args(args.iter().map(|a| a.as_ref()))
        .env("NO_COLOR", "1")
        .env("APR_LINT_NO_TIMINGS", "1")
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const DOWN: &str = "model.layers.1.mlp.down_proj.weight";

/// One NaN poked into a middle row of the F32 `mlp.down_proj` of a 2-layer model (a row the
/// sampled comparison does not read) fails the default run: every float value is scanned.
#[test]
fn one_nan_in_an_f32_weight_fails_by_default() {
    let mut c = Case::generated(&TINY, DType::F32);
    let t = c.t(DOWN);
    assert_eq!(t.dims, [256, 768]);
    let (row, col) = (100usize, 300usize);
    let at = (row * 768 + col) * 4;
    t.bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let o = c.lint(false);
    assert_eq!(o.verdict, Verdict::Fail, "{}", describe(&o));
    let f = non_finite(&o, DOWN);
    assert_eq!(f.code, "APRL-N010");
    assert!(f.message.contains("[100, 300]"), "{}", f.message);
    assert!(f.message.contains("1 of 196608 values"), "{}", f.message);
    // The span is the value's 4 bytes.
    let a = ModelView::open(&c.apr_path()).expect("apr reads");
    let off = a.tensor(DOWN).expect("tensor").data.offset + at as u64;
    assert_eq!(f.span.map(|s| (s.offset, s.len)), Some((off, 4)));
    // Reported once (the sampled comparison does not add its own).
    let n = o
        .findings
        .iter()
        .filter(|f| f.class() == "non-finite")
        .count();
    assert_eq!(n, 1, "{}", describe(&o));
    assert!(o.values.sampled && !o.values.deep);
    assert!(o.values.files.iter().all(|f| f.floats_scanned));

    // The command line agrees: exit 1.
    let (code, out, _) = cli(&[&c.apr_path(), &"--against", &c.gguf]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("APRL-N010"), "{out}");
}

/// Q4_K `down_proj` [256, 768]: rows of 432 bytes; the sample reads rows 0..8 and 248..256.
fn q4_k_case() -> (Case, usize) {
    let mut c = Case::generated(&TINY, DType::Q4_K);
    let t = c.t(DOWN);
    assert_eq!(t.code, apr_lint::format::writer::apr::apr_code(DType::Q4_K));
    assert_eq!(t.bytes.len(), 256 * 3 * 144);
    (c, 3 * 144)
}

/// A non-finite `dmin` in block 1 of row 100: the default (sampled) run does not see it,
/// `--deep` does, with the block's position and span.
#[test]
fn deep_catches_a_non_finite_block_scale_the_sampler_skips() {
    let (mut c, row_bytes) = q4_k_case();
    let at = 100 * row_bytes + 144 + 2; // dmin of block 1 of row 100
    c.t(DOWN).bytes[at..at + 2].copy_from_slice(&half::f16::INFINITY.to_le_bytes());
    let sampled = c.lint(false);
    assert!(
        !sampled.findings.iter().any(|f| f.class() == "non-finite"),
        "the sample was expected to miss row 100:\n{}",
        describe(&sampled)
    );
    let o = c.lint(true);
    assert_eq!(o.verdict, Verdict::Fail, "{}", describe(&o));
    let f = non_finite(&o, DOWN);
    assert!(f.message.contains("block 1 of row 100"), "{}", f.message);
    assert!(f.message.contains("1 of 768 Q4_K blocks"), "{}", f.message);
    let a = ModelView::open(&c.apr_path()).expect("apr reads");
    let off = a.tensor(DOWN).expect("tensor").data.offset + (100 * row_bytes + 144) as u64;
    assert_eq!(f.span.map(|s| (s.offset, s.len)), Some((off, 144)));
    assert!(o.values.deep && !o.values.sampled);
}

/// Q8_K keeps an f32 scale: a finite but huge `d` in row 100 makes that block's values Inf
/// although every scale is finite. Only dequantizing every value finds it.
#[test]
fn deep_dequantizes_values_a_finite_scale_does_not_bound() {
    let mut c = Case::generated(&TINY, DType::Q8_K);
    let t = c.t(DOWN);
    let row_bytes = 3 * 292;
    assert_eq!(t.bytes.len(), 256 * row_bytes);
    let at = 100 * row_bytes + 292; // d of block 1 of row 100
    t.bytes[at..at + 4].copy_from_slice(&3.0e38f32.to_le_bytes());
    let sampled = c.lint(false);
    assert!(
        !sampled.findings.iter().any(|f| f.class() == "non-finite"),
        "{}",
        describe(&sampled)
    );
    let o = c.lint(true);
    let f = non_finite(&o, DOWN);
    assert!(f.message.contains("at [100, "), "{}", f.message);
    assert!(f.message.contains("every value checked"), "{}", f.message);
}

/// `--deep` compares same-dtype pairs whole: a row changed outside the sample is a finding.
#[test]
fn deep_compares_every_value_of_a_same_dtype_pair() {
    let mut c = Case::generated(&TINY, DType::F32);
    let t = c.t(DOWN);
    let row = 120 * 768 * 4;
    for b in &mut t.bytes[row..row + 768 * 4] {
        *b = 0;
    }
    let sampled = c.lint(false);
    assert_eq!(sampled.verdict, Verdict::Pass, "{}", describe(&sampled));
    let o = c.lint(true);
    assert_eq!(o.verdict, Verdict::Fail, "{}", describe(&o));
    let f = o
        .findings
        .iter()
        .find(|f| f.tensor.as_deref() == Some(DOWN) && f.severity == Severity::Error)
        .unwrap_or_else(|| panic!("{}", describe(&o)));
    assert!(f.code.starts_with("APRL-N0"), "{}", describe(&o));
}

/// A copy of `c`'s pair with an F32 tensor large enough that the APR is above 32 MiB (its
/// footer is then not verified when the file is opened).
fn big_apr(c: &mut Case) {
    c.apr.tensors.push(AprTensor::new(
        "extra.weight",
        vec![9 << 10, 1 << 10],
        DType::F32,
        vec![0u8; 36 << 20],
    ));
}

fn flip_footer(p: &Path) {
    let mut bytes = std::fs::read(p).expect("read");
    let n = bytes.len();
    bytes[n - 1] ^= 0x5a;
    std::fs::write(p, bytes).expect("write");
}

/// A footer CRC that does not match is an error: the file is proven corrupt. Above 32 MiB it
/// is verified with `--deep` (the default run leaves it unverified).
#[test]
fn deep_footer_crc_mismatch_is_an_error() {
    let mut c = Case::generated(&TINY, DType::F32);
    big_apr(&mut c);
    let p = c.apr_path();
    flip_footer(&p);
    let a = ModelView::open(&p).expect("apr reads");
    let b = ModelView::open(&c.gguf).expect("gguf reads");
    let default = pipeline::lint(&a, Some(&b), &Options::default());
    assert!(
        !default.findings.iter().any(|f| f.code == "APRL-F029"),
        "{}",
        describe(&default)
    );
    let deep = Options {
        deep: true,
        ..Options::default()
    };
    let o = pipeline::lint(&a, Some(&b), &deep);
    let f = o
        .findings
        .iter()
        .find(|f| f.code == "APRL-F029")
        .unwrap_or_else(|| panic!("{}", describe(&o)));
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(o.verdict, Verdict::Fail);
    assert_eq!(o.values.files[0].footer_crc, Some("invalid"));
    // An intact footer of the same file verifies.
    flip_footer(&p);
    let a = ModelView::open(&p).expect("apr reads");
    let o = pipeline::lint(&a, Some(&b), &deep);
    assert!(!o.findings.iter().any(|f| f.code == "APRL-F029"));
    assert_eq!(o.values.files[0].footer_crc, Some("valid"));

    // The command line: exit 1 with --deep.
    flip_footer(&p);
    let (code, out, _) = cli(&[&p, &"--against", &c.gguf, &"--deep"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("APRL-F029"), "{out}");
}

/// A small APR's footer is verified when opened; a mismatch is an error there too.
#[test]
fn footer_crc_mismatch_of_a_small_file_is_an_error() {
    let c = Case::generated(&TINY, DType::F32);
    let p = c.apr_path();
    flip_footer(&p);
    let a = ModelView::open(&p).expect("apr reads");
    let o = lint_one(&a);
    let f = o
        .findings
        .iter()
        .find(|f| f.code == "APRL-F029")
        .unwrap_or_else(|| panic!("{}", describe(&o)));
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(o.verdict, Verdict::Fail);
}

/// Every report says whether the value checks were sampled, and how many rows per tensor.
#[test]
fn every_report_states_what_was_sampled() {
    let c = Case::generated(&TINY, DType::Q4_K);
    let apr = c.apr_path();
    let (code, human, _) = cli(&[&apr, &"--against", &c.gguf]);
    assert_eq!(code, 0, "{human}");
    let (code, human_full, _) = cli(&[&apr, &"--against", &c.gguf]);
    assert_eq!(code, 0, "{human_full}");
    assert!(
        human_full.contains("value checks: sampled, up to 16 rows per tensor"),
        "{human_full}"
    );
    let (_, json, _) = cli(&[&apr, &"--against", &c.gguf, &"--format", &"json"]);
    let j: serde_json::Value = serde_json::from_str(&json).expect("json");
    let v = &j["summary"]["value_checks"];
    assert_eq!(v["sampled"], true, "{json}");
    assert_eq!(v["deep"], false);
    assert_eq!(v["sampled_rows_per_tensor"], 16);
    assert_eq!(v["files"][0]["floats_scanned"], true);
    let (_, sarif, _) = cli(&[&apr, &"--against", &c.gguf, &"--format", &"sarif"]);
    let s: serde_json::Value = serde_json::from_str(&sarif).expect("sarif");
    assert_eq!(
        s["runs"][0]["properties"]["value_checks"]["sampled"], true,
        "{sarif}"
    );

    let (code, human, _) = cli(&[&apr, &"--against", &c.gguf, &"--deep"]);
    assert_eq!(code, 0, "{human}");
    assert!(
        human.contains("value checks: every value (--deep)"),
        "{human}"
    );
    assert!(human.contains("footer CRC valid"), "{human}");
    let (_, json, _) = cli(&[&apr, &"--against", &c.gguf, &"--format", &"json", &"--deep"]);
    let j: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(j["summary"]["value_checks"]["sampled"], false, "{json}");
    assert_eq!(j["summary"]["value_checks"]["deep"], true);
}

/// A clean pair passes `--deep` in every dtype the writers make, and every tensor of both files
/// is scanned.
#[test]
fn clean_pairs_pass_deep() {
    for dt in [
        DType::F32,
        DType::F16,
        DType::Q8_0,
        DType::Q4_K,
        DType::Q6_K,
    ] {
        let c = Case::generated(&TINY, dt);
        let o = c.lint(true);
        assert_eq!(o.verdict, Verdict::Pass, "{dt}: {}", describe(&o));
        let a = ModelView::open(&c.apr_path()).expect("apr reads");
        assert_eq!(o.values.files[0].tensors_scanned, a.tensors.len(), "{dt}");
        assert_eq!(
            o.values.files[0].bytes_scanned,
            a.tensors.iter().map(|t| t.data.len).sum::<u64>()
        );
    }
}

/// A tied reference: its embedding is compared with both the APR's embedding and its output
/// matrix, in one pass; a changed row of the output matrix outside the sample is found.
#[test]
fn deep_compares_both_partners_of_a_tied_reference() {
    let tied = Shape { tied: true, ..TINY };
    let mut c = Case::generated(&tied, DType::F32);
    let o = c.lint(true);
    assert_eq!(o.verdict, Verdict::Pass, "{}", describe(&o));
    let a = ModelView::open(&c.apr_path()).expect("apr reads");
    assert_eq!(o.values.files[0].tensors_scanned, a.tensors.len());
    let out = c.t("lm_head.weight");
    assert_eq!(out.dims, [512, 256]);
    let row = 300 * 256 * 4;
    for b in &mut out.bytes[row..row + 256 * 4] {
        *b = 0;
    }
    let sampled = c.lint(false);
    assert_eq!(sampled.verdict, Verdict::Pass, "{}", describe(&sampled));
    let o = c.lint(true);
    assert_eq!(o.verdict, Verdict::Fail, "{}", describe(&o));
    assert!(
        o.findings.iter().any(|f| f.tensor.as_deref() == Some("lm_head.weight")
            && f.severity == Severity::Error),
        "{}",
        describe(&o)
    );
}

/// Above 256 MiB of floats in a file the floats are sampled too, and the report says so.
#[test]
fn the_report_says_when_floats_were_sampled_too() {
    use apr_lint::numeric::scan::{FULL_FLOAT_SCAN_MAX, FileScan};
    use apr_lint::pipeline::ValueChecks;
    assert_eq!(FULL_FLOAT_SCAN_MAX, 256 << 20);
    let file = |path: &str, float_bytes: u64| FileScan {
        path: path.into(),
        float_bytes,
        floats_scanned: float_bytes <= FULL_FLOAT_SCAN_MAX,
        deep: false,
        tensors_scanned: 0,
        bytes_scanned: 0,
        footer_crc: None,
    };
    let v = ValueChecks {
        sampled: true,
        deep: false,
        sampled_rows_per_tensor: 16,
        full_float_scan_max_bytes: FULL_FLOAT_SCAN_MAX,
        files: vec![
            file("/m/big.apr", 3_000_000_000),
            file("/m/ref.gguf", 1_200_000),
        ],
    };
    let line = v.describe();
    assert!(line.contains("up to 16 rows per tensor"), "{line}");
    assert!(
        line.contains("big.apr: floats sampled too (3.00 GB of floats > 256 MiB)"),
        "{line}"
    );
    assert!(
        line.contains("ref.gguf: every F32/F16/BF16 value (1.2 MB)"),
        "{line}"
    );
}

/// The same bad block in both files (byte-identical chunks are tested once, then counted for
/// both): each file gets its own finding.
#[test]
fn deep_reports_a_bad_block_shared_by_both_files_in_each() {
    let (mut c, row_bytes) = q4_k_case();
    let at = 100 * row_bytes + 144 + 2;
    c.t(DOWN).bytes[at..at + 2].copy_from_slice(&half::f16::INFINITY.to_le_bytes());
    let g = ModelView::open(&c.gguf).expect("gguf reads");
    let gt = g.tensor("blk.1.ffn_down.weight").expect("gguf tensor");
    let off = (gt.data.offset + at as u64) as usize;
    drop(g);
    let mut bytes = std::fs::read(&c.gguf).expect("read");
    bytes[off..off + 2].copy_from_slice(&half::f16::INFINITY.to_le_bytes());
    std::fs::write(&c.gguf, bytes).expect("write");
    let o = c.lint(true);
    for name in [DOWN, "blk.1.ffn_down.weight"] {
        let f = non_finite(&o, name);
        assert!(f.message.contains("block 1 of row 100"), "{}", f.message);
        assert!(f.message.contains("1 of 768 Q4_K blocks"), "{}", f.message);
    }
}
