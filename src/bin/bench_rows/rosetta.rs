//! The `rosetta` rows of `apr-lint-bench` (issue 13): the full trace of the bench pair, APR
//! against GGUF, at 8 and 64 tokens — wall time and peak RSS of the whole `apr-lint rosetta`
//! process — and, interleaved in the same run, llama.cpp's time for the same work: two forwards of
//! the GGUF with 2 threads, from `llama-bench -p N -n 0 -t 2` (found through
//! `APR_LINT_LLAMA_BENCH`; "not measured" without it). Also the trace's GFLOP/s. One row per
//! token count and `--mode`: `f32` (target ≤ 2.0 × llama.cpp) and `ggml` (quantized activations
//! and integer dot products, the fastest mode: target ≤ 1.0 ×), their runs interleaved.
//!
//! Each row's peak RSS is held to issue 13's bound (`rss_bound`), and a 77-token trace with the
//! human report on a pipe is timed to its first layer's lines (target: within 2 s).
//!
//! llama.cpp's time is what `llama-bench` reports per prompt pass (its model load and warm-up
//! excluded), times two; apr-lint's is the whole process (loading both files included), so the
//! ratio is conservative.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{SHAPE, Stats, child_usage, median_of, ms};

/// Environment variable naming the `llama-bench` binary.
pub const LLAMA_BENCH_ENV: &str = "APR_LINT_LLAMA_BENCH";

/// Multiply-adds ×2 of one forward pass of `n` tokens of the bench shape: every linear layer
/// (Q, K, V, output, gate, up, down; the logits of `logits` positions), attention scores and
/// weighted values.
fn forward_flop(n: u64, logits: u64) -> f64 {
    let s = SHAPE;
    let hd = s.hidden / s.heads;
    let (qd, kvd) = (s.heads * hd, s.kv_heads * hd);
    let per_layer = s.hidden * qd + 2 * s.hidden * kvd + qd * s.hidden + 3 * s.hidden * s.ffn;
    let linear = 2 * (n * s.layers * per_layer + logits * s.hidden * s.vocab);
    // n(n+1)/2 (query, key) pairs per head, each a dot product and a weighted add of hd.
    let attention = s.layers * s.heads * (n * (n + 1) / 2) * 4 * hd;
    (linear + attention) as f64
}

/// f32 values of one layer's ten trace stages per token (attn_norm, attn_out, ffn_norm, ffn_out,
/// layer_out: hidden each; q, q_rope: the query width; k, k_rope, v: the key/value width).
fn stage_width() -> u64 {
    let s = SHAPE;
    let hd = s.hidden / s.heads;
    5 * s.hidden + 2 * s.heads * hd + 3 * s.kv_heads * hd
}

/// Issue 13's peak-RSS bound for a trace of `n` tokens computing `logits` positions' logits, in
/// bytes: the largest layer of either file dequantized to f32 (one transformer block: Q, K, V,
/// output, gate, up, down) + the activations (both sides' logits, one layer's stages of both
/// sides) + 64 MiB.
fn rss_bound(n: u64, logits: u64) -> u64 {
    let s = SHAPE;
    let hd = s.hidden / s.heads;
    let (qd, kvd) = (s.heads * hd, s.kv_heads * hd);
    let block = s.hidden * qd + 2 * s.hidden * kvd + qd * s.hidden + 3 * s.hidden * s.ffn;
    let activations = 2 * logits * s.vocab + 2 * n * stage_width();
    4 * (block + activations) + (64 << 20)
}

/// `apr-lint rosetta … --tokens …` with the human report on a pipe: the time from the start until
/// the first stage line of layer 0 (the line after `[ROSETTA] === Layer 0 ===`) arrived, and until
/// the process ended; `None` for the first if no such line came.
fn first_layer_once(bin: &Path, args: &[&OsStr], cwd: &Path) -> (Option<Duration>, Duration) {
    let t = Instant::now();
    let Ok(mut child) = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return (None, t.elapsed());
    };
    let mut first = None;
    let mut after_header = false;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if first.is_none() {
                if after_header && line.starts_with("[ROSETTA] ") {
                    first = Some(t.elapsed());
                }
                after_header = line.starts_with("[ROSETTA] === Layer 0 ===");
            }
        }
    }
    let _ = child.wait();
    (first, t.elapsed())
}

/// One `llama-bench` run: the median time of one prompt pass of `n` tokens (its own repetitions).
fn llama_forward(bench: &Path, gguf: &Path, n: u64) -> Option<Duration> {
    let out = Command::new(bench)
        .arg("-m")
        .arg(gguf)
        .args([
            "-p",
            &n.to_string(),
            "-n",
            "0",
            "-t",
            "2",
            "-r",
            "2",
            "-o",
            "json",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let samples: Vec<u64> = v
        .get(0)?
        .get("samples_ns")?
        .as_array()?
        .iter()
        .filter_map(serde_json::Value::as_u64)
        .collect();
    if samples.is_empty() {
        return None;
    }
    Some(Duration::from_nanos(median_of(samples)))
}

/// `rosetta APR GGUF --tokens TOKS --mode MODE`, with `-q` when `quiet` and `--logits last`
/// when `last_logits`.
fn trace_args<'a>(
    apr: &'a Path,
    gguf: &'a Path,
    toks: &'a str,
    mode: &'a str,
    quiet: bool,
    last_logits: bool,
) -> Vec<&'a OsStr> {
    let mut a = vec![
        OsStr::new("rosetta"),
        apr.as_os_str(),
        gguf.as_os_str(),
        OsStr::new("--tokens"),
        OsStr::new(toks),
        OsStr::new("--mode"),
        OsStr::new(mode),
    ];
    if quiet {
        a.push(OsStr::new("-q"));
    }
    if last_logits {
        a.extend([OsStr::new("--logits"), OsStr::new("last")]);
    }
    a
}

/// `apr-lint rosetta APR GGUF --tokens …` once: wall time and exit code.
fn rosetta_once(bin: &Path, args: &[&OsStr], cwd: &Path) -> (Duration, Option<i32>) {
    let t = Instant::now();
    let code = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .and_then(|s| s.code());
    (t.elapsed(), code)
}

/// One configuration of the trace the bench times.
struct Variant {
    /// Its label in the table.
    label: &'static str,
    /// `--mode`.
    mode: &'static str,
    /// `--logits last`: the last position's logits only (llama-bench's own work).
    last_logits: bool,
    /// Its target ratio to llama.cpp.
    target: f64,
}

/// The trace's configurations: the default f32 mode (target ≤ 2.0 ×), the ggml mode (≤ 1.0 ×),
/// and the ggml mode computing the logits of the last position only, the work `llama-bench -p N`
/// does (it outputs the last token's logits): the fastest configuration.
const VARIANTS: [Variant; 3] = [
    Variant {
        label: "f32",
        mode: "f32",
        last_logits: false,
        target: 2.0,
    },
    Variant {
        label: "ggml",
        mode: "ggml",
        last_logits: false,
        target: 1.0,
    },
    Variant {
        label: "ggml, `--logits last`",
        mode: "ggml",
        last_logits: true,
        target: 1.0,
    },
];

struct Row {
    n: u64,
    variant: &'static Variant,
    wall: Stats,
    codes: Vec<Option<i32>>,
    /// Peak RSS (kB) and user + system CPU seconds (µs resolution) of one run under the
    /// `getrusage` wrapper.
    usage: Option<(u64, f64)>,
    llama: Option<Stats>,
}

/// Token ids 1..=n, spread over the vocabulary.
fn tokens(n: u64) -> String {
    (0..n)
        .map(|i| ((i * 7919 + 17) % SHAPE.vocab).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The rosetta section of BENCHMARKS.md: `reps` interleaved runs per token count.
pub fn section(
    gguf: &Path,
    apr: &Path,
    bin: &Path,
    reps: usize,
    misses: &mut Vec<String>,
) -> String {
    let cwd = gguf.parent().unwrap_or(Path::new("."));
    let llama: Option<PathBuf> = std::env::var_os(LLAMA_BENCH_ENV)
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    let mut rows = Vec::new();
    for n in [8u64, 64] {
        eprintln!("timing rosetta at {n} tokens …");
        let toks = tokens(n);
        let args = |v: &Variant| trace_args(apr, gguf, &toks, v.mode, true, v.last_logits);
        // Warm-up of all (page cache, llama.cpp's own first-run costs).
        for v in &VARIANTS {
            rosetta_once(bin, &args(v), cwd);
        }
        if let Some(l) = &llama {
            llama_forward(l, gguf, n);
        }
        let mut walls = vec![Vec::new(); VARIANTS.len()];
        let mut codes = vec![Vec::new(); VARIANTS.len()];
        let mut llamas = Vec::new();
        for _ in 0..reps {
            for (i, v) in VARIANTS.iter().enumerate() {
                let (w, c) = rosetta_once(bin, &args(v), cwd);
                walls[i].push(w);
                codes[i].push(c);
            }
            if let Some(t) = llama.as_ref().and_then(|l| llama_forward(l, gguf, n)) {
                // The same work as the trace: two forwards.
                llamas.push(2 * t);
            }
        }
        let llama_stats = (!llamas.is_empty()).then(|| Stats::of(llamas));
        for (variant, (w, mut c)) in VARIANTS.iter().zip(walls.into_iter().zip(codes)) {
            c.sort();
            c.dedup();
            let usage =
                child_usage(bin, &args(variant), cwd).map(|u| (u.rss_kb, u.user_s + u.sys_s));
            rows.push(Row {
                n,
                variant,
                wall: Stats::of(w),
                codes: c,
                usage,
                llama: llama_stats,
            });
        }
    }

    // A long prompt with the human report on a pipe: when layer 0's lines arrive (issue 13: within
    // 2 s at 77 tokens), per mode, interleaved.
    const FIRST_N: u64 = 77;
    eprintln!("timing rosetta's first layer at {FIRST_N} tokens …");
    let long = tokens(FIRST_N);
    let first_modes = ["f32", "ggml"];
    let first_args = |mode: &'static str| trace_args(apr, gguf, &long, mode, false, false);
    for m in first_modes {
        first_layer_once(bin, &first_args(m), cwd);
    }
    let mut firsts = vec![(Vec::new(), Vec::new(), 0usize); first_modes.len()];
    for _ in 0..reps {
        for (i, m) in first_modes.iter().enumerate() {
            let (f, w) = first_layer_once(bin, &first_args(m), cwd);
            match f {
                Some(f) => firsts[i].0.push(f),
                None => firsts[i].2 += 1,
            }
            firsts[i].1.push(w);
        }
    }

    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n## `rosetta`: the full trace against llama.cpp (warm page cache)\n\n\
         `apr-lint rosetta X.apr X.gguf --tokens … -q` (both files through every layer: two \
         forwards), whole process, against `llama-bench -m X.gguf -p N -n 0 -t 2 -r 2` (its \
         median prompt pass × 2, load excluded), run alternately, median of {reps}. Three rows \
         per token count: `--mode f32` (the default; target ≤ 2.0 ×), `--mode ggml` \
         (activations rounded to Q8_K/Q8_0 as ggml rounds them, integer dot products; target \
         ≤ 1.0 ×), and `--mode ggml --logits last`, the fastest configuration: the logits of \
         the last position only, which is the work `llama-bench -p N` does (it outputs the last \
         token's logits); the first two compute and compare every position's logits, an output \
         product {n_big} times llama-bench's at 64 tokens. GFLOP/s = 2 forwards' FLOP (the \
         logits the row computes) / rosetta wall. Peak RSS and CPU time \
         (user + system, all threads) of one more rosetta run (`getrusage`): on a busy \
         machine the CPU time is the steadier measure of the work done. RSS bound (issue 13): \
         the largest layer of either file dequantized to f32 (one transformer block, {block:.1} \
         MiB) + the activations (both sides' logits of the positions the row computes, one \
         layer's stages of both sides) + 64 MiB.",
        n_big = 64,
        block = (rss_bound(0, 0) - (64 << 20)) as f64 / MIB,
    );
    let _ = writeln!(
        md,
        "\n| tokens | mode | rosetta wall median | min | max | peak RSS | RSS bound | CPU time | exit | GFLOP/s | llama.cpp 2 forwards median | min | max | rosetta / llama.cpp | target |\n|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"
    );
    for r in &rows {
        let (target, logits) = (
            r.variant.target,
            if r.variant.last_logits { 1 } else { r.n },
        );
        let gflops = 2.0 * forward_flop(r.n, logits) / r.wall.median.as_secs_f64() / 1e9;
        let (lm, lmin, lmax, ratio, status) = match &r.llama {
            Some(l) => {
                let ratio = r.wall.median.as_secs_f64() / l.median.as_secs_f64();
                let ok = ratio <= target;
                if !ok {
                    misses.push(format!(
                        "rosetta at {} tokens: {ratio:.2} × llama.cpp > {target:.1} × ({})",
                        r.n, r.variant.label
                    ));
                }
                (
                    ms(l.median),
                    ms(l.min),
                    ms(l.max),
                    format!("{ratio:.2} ×"),
                    format!("≤ {target:.1} ×: {}", if ok { "ok" } else { "**MISS**" }),
                )
            }
            None => (
                "not measured".into(),
                "—".into(),
                "—".into(),
                "—".into(),
                format!("≤ {target:.1} ×: not measured"),
            ),
        };
        let bound = rss_bound(r.n, logits);
        let rss = match r.usage {
            Some((kb, _)) => {
                let ok = kb * 1024 <= bound;
                if !ok {
                    misses.push(format!(
                        "rosetta at {} tokens ({}): peak RSS {:.1} MiB > bound {:.1} MiB",
                        r.n,
                        r.variant.label,
                        kb as f64 / 1024.0,
                        bound as f64 / MIB
                    ));
                }
                format!(
                    "{:.1} MiB{}",
                    kb as f64 / 1024.0,
                    if ok { "" } else { " **MISS**" }
                )
            }
            None => "—".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {rss} | {:.1} MiB | {} | {:?} | {gflops:.1} | {lm} | {lmin} | {lmax} | {ratio} | {status} |",
            r.n,
            r.variant.label,
            ms(r.wall.median),
            ms(r.wall.min),
            ms(r.wall.max),
            bound as f64 / MIB,
            r.usage.map_or("—".into(), |u| format!("{:.2} s", u.1)),
            r.codes,
        );
    }
    let _ = writeln!(
        md,
        "\nOne forward of the bench shape: {:.1} GFLOP at 8 tokens, {:.1} GFLOP at 64 (every \
         position's logits). {}",
        forward_flop(8, 8) / 1e9,
        forward_flop(64, 64) / 1e9,
        match &llama {
            Some(p) => format!("`llama-bench`: `{}` (`{LLAMA_BENCH_ENV}`).", p.display()),
            None => format!(
                "llama.cpp not measured: set `{LLAMA_BENCH_ENV}` to a `llama-bench` binary \
                 (built as `/work/shared/oracle/scripts/build_llamacpp.sh` does)."
            ),
        }
    );
    let _ = writeln!(
        md,
        "\n**Time to the first layer.** `apr-lint rosetta X.apr X.gguf --tokens <{FIRST_N} ids> \
         --mode M`, the human report on a pipe (no `-q`), run alternately, median of {reps}: \
         the time from the start of the process until the first line of layer 0 (the line \
         after `[ROSETTA] === Layer 0 ===`) arrived on the pipe, and until the process ended. \
         Target: within 2 s.\n\n\
         | tokens | mode | layer 0's lines arrived, median | min | max | whole trace, median | target |\n\
         |---:|---|---:|---:|---:|---:|---|"
    );
    for (m, (f, w, missing)) in first_modes.iter().zip(firsts) {
        let whole = ms(Stats::of(w).median);
        if missing > 0 || f.is_empty() {
            misses.push(format!(
                "rosetta at {FIRST_N} tokens ({m}): no layer 0 line in {missing} run(s)"
            ));
            let _ = writeln!(
                md,
                "| {FIRST_N} | {m} | no layer 0 line in {missing} run(s) | — | — | {whole} | ≤ 2 s: **MISS** |"
            );
            continue;
        }
        let f = Stats::of(f);
        let ok = f.median <= Duration::from_secs(2);
        if !ok {
            misses.push(format!(
                "rosetta at {FIRST_N} tokens ({m}): layer 0's lines after {} > 2 s",
                ms(f.median)
            ));
        }
        let _ = writeln!(
            md,
            "| {FIRST_N} | {m} | {} | {} | {} | {whole} | ≤ 2 s: {} |",
            ms(f.median),
            ms(f.min),
            ms(f.max),
            if ok { "ok" } else { "**MISS**" }
        );
    }
    md
}

const MIB: f64 = (1u64 << 20) as f64;

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound BENCHMARKS.md computed by hand for the bench shape (issue 13's streaming
    /// section): one block of 46,792,704 values (178.5 MiB), both sides' logits (2 × n × 151,936)
    /// and one layer's stages of both sides (2 × n × 11,520), all f32, + 64 MiB: 252.5 MiB at 8
    /// tokens, 338.5 at 77 (the section's 338.6 adds its rounded parts).
    #[test]
    fn rss_bound_is_the_hand_computed_one() {
        let hand = |n: u64, logits: u64| 4 * (46_792_704 + 2 * logits * 151_936 + 2 * n * 11_520);
        assert_eq!(rss_bound(8, 8), hand(8, 8) + (64 << 20));
        assert_eq!(rss_bound(77, 77), hand(77, 77) + (64 << 20));
        assert_eq!(rss_bound(64, 1), hand(64, 1) + (64 << 20));
        let mib = |b: u64| (b as f64 / MIB * 10.0).round() / 10.0;
        assert_eq!(mib(rss_bound(8, 8)), 252.5);
        assert_eq!(mib(rss_bound(77, 77)), 338.5);
    }

    /// The first stage line is the one after layer 0's header, timed when it arrives.
    #[test]
    fn first_layer_is_the_line_after_layer_0s_header() {
        let script = "echo '[ROSETTA] === Embedding ==='; echo '[ROSETTA] embedding ok'; \
                      echo '[ROSETTA] === Layer 0 ==='; sleep 0.3; \
                      echo '[ROSETTA] layer_out ok'; sleep 0.2; echo '[ROSETTA] === Layer 1 ==='";
        let args = [OsStr::new("-c"), OsStr::new(script)];
        let (first, whole) = first_layer_once(Path::new("sh"), &args, Path::new("."));
        let first = first.expect("a layer 0 line");
        assert!(first >= Duration::from_millis(300), "{first:?}");
        assert!(
            whole >= first + Duration::from_millis(200),
            "{first:?} {whole:?}"
        );

        let args = [
            OsStr::new("-c"),
            OsStr::new("echo '[ROSETTA] embedding ok'"),
        ];
        assert_eq!(
            first_layer_once(Path::new("sh"), &args, Path::new(".")).0,
            None
        );
    }
}
