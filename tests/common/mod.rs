//! Shared test helpers: clean fixture pairs and the damage they get.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use apr_lint::diag::Finding;
use apr_lint::format::writer::apr::{AprWriter, Flavour};
use apr_lint::format::writer::convert::gguf_to_apr;
use apr_lint::format::{Source, gguf};
use apr_lint::model::ModelView;
use apr_lint::pipeline::{self, Options, Outcome};

pub mod sarif;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

pub fn gguf_file(name: &str) -> gguf::GgufFile {
    let src = Source::open(&fixture(name)).expect("fixture opens");
    gguf::read(src).expect("fixture reads")
}

pub fn gguf_view(name: &str) -> ModelView {
    ModelView::open(&fixture(name)).expect("fixture reads")
}

/// A fixture GGUF with keys added (at the end) or replaced (in place), as `scripts/derive_gguf.py
/// --set` does for new keys (same types: UINT32 for integers, FLOAT32 for numbers, else a
/// string), in memory.
/// Returns the bytes, so a test can check they are the file llama.cpp ran.
pub fn gguf_with_keys(name: &str, keys: &[(&str, &str)]) -> Vec<u8> {
    use apr_lint::format::writer::gguf::{GgufWriter, MetaValue};
    let g = gguf_file(name);
    let arch = g
        .get("general.architecture")
        .and_then(|kv| kv.value.as_str())
        .expect("architecture")
        .to_owned();
    let mut w = GgufWriter::from_file(&g);
    for (k, v) in keys {
        let value = if let Ok(i) = v.parse::<u32>() {
            MetaValue::U32(i)
        } else if let (true, Ok(f)) = (v.contains('.'), v.parse::<f32>()) {
            MetaValue::F32(f)
        } else {
            MetaValue::string(*v)
        };
        let key = k.replace("{arch}", &arch);
        match w.metadata.iter_mut().find(|(x, _)| *x == key) {
            Some(e) => e.1 = value,
            None => {
                w.meta(key, value);
            }
        }
    }
    w.to_bytes()
}

pub fn view_of(bytes: Vec<u8>, name: &str) -> ModelView {
    ModelView::from_source(Source::from_vec(bytes, name)).expect("reads")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(bytes)?;
            c.wait_with_output()
        })
        .expect("sha256sum runs");
    String::from_utf8_lossy(&out.stdout)[..64].to_owned()
}

/// The APR a bug-free converter writes from a fixture GGUF.
pub fn clean_apr(name: &str, flavour: Flavour) -> AprWriter {
    gguf_to_apr(&gguf_file(name), flavour)
}

pub fn apr_view(w: &AprWriter) -> ModelView {
    ModelView::from_source(Source::from_vec(w.to_bytes(), "model.apr"))
        .expect("our writer's APR reads")
}

pub fn lint_pair(apr: &ModelView, gguf: &ModelView) -> Outcome {
    let o = pipeline::lint(apr, Some(gguf), &Options::default());
    assert_codes_keep_their_class(&o);
    o
}

pub fn lint_one(v: &ModelView) -> Outcome {
    let o = pipeline::lint(v, None, &Options::default());
    assert_codes_keep_their_class(&o);
    o
}

/// Every finding carries its code's registered class, and no retired code is emitted.
pub fn assert_codes_keep_their_class(o: &Outcome) {
    for f in &o.findings {
        let l = apr_lint::registry::find(f.code)
            .unwrap_or_else(|| panic!("unregistered code {}", f.code));
        assert_eq!(
            f.class(),
            l.class,
            "{} is registered as {} but a finding says {}: {}",
            f.code,
            l.class,
            f.class(),
            f.message
        );
        assert!(
            !apr_lint::registry::is_retired(f.code),
            "retired code {} emitted: {}",
            f.code,
            f.message
        );
    }
}

/// Every finding the harness sees must be registered, with a class from bug-classes.md, a help line
/// and a span inside its file.
pub fn check_findings(o: &Outcome, file_lens: &[(String, u64)]) {
    const CLASSES: &[&str] = &[
        "dims-reversed",
        "transposed",
        "column-major",
        "rope-permuted",
        "rope-permuted-wrong-heads",
        "swapped-tensors",
        "dtype-mislabeled",
        "ambiguous-dtype-code",
        "quant-block-corrupt",
        "non-finite",
        "missing-tensor",
        "unexpected-tensor",
        "shape-mismatch",
        "metadata-mismatch",
        "tokenizer-mismatch",
        "tied-embedding",
        "degenerate",
        "value-mismatch",
        "container",
    ];
    assert_codes_keep_their_class(o);
    for f in &o.findings {
        assert!(
            CLASSES.contains(&f.class()),
            "class {} of {} not in bug-classes.md",
            f.class(),
            f.code
        );
        assert!(!f.help.is_empty(), "{} has no help: {}", f.code, f.message);
        if let (Some(s), Some(file)) = (f.span, &f.file)
            && let Some((_, len)) = file_lens.iter().find(|(p, _)| p == file)
        {
            assert!(
                s.offset + s.len <= *len,
                "{} span {:?} outside {file} ({len} bytes)",
                f.code,
                s
            );
        }
    }
}

pub fn has(o: &Outcome, class: &str, tensor: Option<&str>) -> bool {
    o.findings
        .iter()
        .any(|f| f.class() == class && (tensor.is_none() || f.tensor.as_deref() == tensor))
}

/// Whether a finding has `code`, `class` (when given) and a message containing `text`.
pub fn finds(o: &Outcome, code: &str, class: Option<&str>, text: &str) -> bool {
    o.findings
        .iter()
        .any(|f| f.code == code && class.is_none_or(|c| f.class() == c) && f.message.contains(text))
}

/// How far `mine` is from `theirs` (the reference), computed here rather than with the crate's own
/// `numeric::probe::metrics`, so that a bug in that metric cannot hide a bug in the forward pass.
/// Every sum is accumulated in f64. A NaN anywhere (in an input, or from `inf − inf`) makes every
/// metric NaN, and NaN fails every bound (`NaN < x` and `NaN > x` are both false).
#[derive(Clone, Copy, Debug)]
pub struct Agreement {
    /// max |mine − theirs|.
    pub max_abs: f64,
    /// `max_abs` / max |theirs|.
    pub rel_max: f64,
    /// Σ mine·theirs / (‖mine‖ ‖theirs‖).
    pub cosine: f64,
}

pub fn agreement(mine: &[f32], theirs: &[f32]) -> Agreement {
    assert_eq!(mine.len(), theirs.len(), "compared arrays differ in length");
    assert!(!mine.is_empty(), "compared nothing");
    let nan = Agreement {
        max_abs: f64::NAN,
        rel_max: f64::NAN,
        cosine: f64::NAN,
    };
    let (mut max_abs, mut max_ref, mut dot, mut na, mut nb) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for (&x, &y) in mine.iter().zip(theirs) {
        let (x, y) = (f64::from(x), f64::from(y));
        let d = (x - y).abs();
        if d.is_nan() {
            return nan;
        }
        max_abs = max_abs.max(d);
        max_ref = max_ref.max(y.abs());
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    Agreement {
        max_abs,
        rel_max: max_abs / max_ref,
        cosine: dot / (na.sqrt() * nb.sqrt()),
    }
}

/// Largest difference relative to the largest magnitude of `b` (the reference); NaN if any value
/// is NaN.
pub fn rel_max(a: &[f32], b: &[f32]) -> f64 {
    agreement(a, b).rel_max
}

/// Agreement with llama.cpp's activations of a Q8_0 model: ggml rounds matmul inputs to Q8_0, so
/// an f32 forward agrees to ~1e-2 (oracle README §9). False when any value is NaN.
pub fn matches_llama_cpp(mine: &[f32], theirs: &[f32]) -> bool {
    let g = agreement(mine, theirs);
    g.cosine > 0.999 && g.rel_max < 5e-2
}

/// The negative of `matches_llama_cpp` for checks that a wrong computation is told apart: every
/// metric finite (a NaN is a broken computation, not a told-apart one) and outside the bounds.
pub fn differs_from_llama_cpp(mine: &[f32], theirs: &[f32]) -> bool {
    let g = agreement(mine, theirs);
    g.cosine.is_finite() && g.rel_max.is_finite() && !(g.cosine > 0.999 && g.rel_max < 5e-2)
}

pub fn errors(o: &Outcome) -> Vec<&Finding> {
    o.findings
        .iter()
        .filter(|f| f.severity == apr_lint::Severity::Error)
        .collect()
}

pub fn describe(o: &Outcome) -> String {
    o.findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {:?} {:?}: {}",
                f.code,
                f.class(),
                f.severity,
                f.tensor,
                f.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn is_gguf(v: &ModelView) -> bool {
    v.format_name() == "gguf"
}

/// llama.cpp's activation `name` of oracle model `model` (fixtures/act).
pub fn act(model: &str, name: &str) -> Vec<f32> {
    apr_lint::format::npy::read_f32(
        &std::fs::read(fixture(&format!("act/{model}/{name}.npy"))).expect("fixture"),
    )
    .expect("npy")
    .1
}

/// The token ids llama.cpp used for the oracle activations (int32 `.npy`).
pub fn act_tokens(model: &str) -> Vec<u32> {
    let b = std::fs::read(fixture(&format!("act/{model}/tokens.npy"))).expect("fixture");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    b[10 + hlen..]
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u32)
        .collect()
}

/// A stopwatch of the CPU time the current thread uses (user + system), read from
/// `/proc/thread-self/stat` (Linux; its ticks are USER_HZ = 100 per second, fixed by the kernel
/// ABI). Time budgets that catch a hang or a quadratic blow-up hold on it when the machine is
/// loaded, where wall-clock budgets flake. Elsewhere it falls back to wall-clock time.
pub struct CpuClock {
    cpu: Option<std::time::Duration>,
    wall: std::time::Instant,
}

impl CpuClock {
    pub fn start() -> CpuClock {
        CpuClock {
            cpu: thread_cpu_time(),
            wall: std::time::Instant::now(),
        }
    }

    pub fn elapsed(&self) -> std::time::Duration {
        match (self.cpu, thread_cpu_time()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => self.wall.elapsed(),
        }
    }
}

fn thread_cpu_time() -> Option<std::time::Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // The command name may hold spaces: the fields that follow start after its closing ')'.
    let fields: Vec<&str> = s.get(s.rfind(')')? + 2..)?.split(' ').collect();
    // `fields[0]` is field 3 (state); utime and stime are fields 14 and 15.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(std::time::Duration::from_millis(ticks * 10))
}
