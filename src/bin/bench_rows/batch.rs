//! Batch-mode rows of `apr-lint-bench` (`--batch`): a directory of 20 tiny pairs, one of 4
//! bench-sized pairs (the 1.5B shape, Q4_K, seeds 1–4), and one of 4 APRs of one model against one
//! GGUF (`model-1.apr` … `model-4.apr` ↔ `model.gguf` by common stem: hard links to seed 1's files,
//! the layout of several conversions of one model), each linted as one batch
//! (`apr-lint DIR -q --format json`) and as one process per pair, the two interleaved repetition
//! by repetition. Target: batch ≤ 0.6 × the sum of the single runs. Printed, not written: the
//! numbers go to BENCHMARKS.md's batch section by hand, with the machine's load.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use apr_lint::format::writer::generate::{self, QWEN2_5_1_5B, Shape, TINY};
use apr_lint::quant::DType;

/// The pairs of one directory: (apr, gguf), named `pair-NN.apr` / `pair-NN.gguf`.
fn pairs(dir: &Path, shape: &Shape, dtype: DType, n: u64) -> Vec<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    (1..=n)
        .map(|seed| {
            let (apr, gguf) = (
                dir.join(format!("pair-{seed:02}.apr")),
                dir.join(format!("pair-{seed:02}.gguf")),
            );
            if !apr.is_file() || !gguf.is_file() {
                eprintln!("generating {} …", apr.display());
                let (pa, pg) = (dir.join("partial.apr"), dir.join("partial.gguf"));
                generate::write_pair(shape, dtype, seed, &pg, &pa)
                    .unwrap_or_else(|e| panic!("write_pair failed: {e}"));
                std::fs::rename(&pg, &gguf).expect("rename the generated GGUF");
                std::fs::rename(&pa, &apr).expect("rename the generated APR");
            }
            (apr, gguf)
        })
        .collect()
}

/// `model.gguf` and `model-1.apr` … `model-N.apr` in `dir`: hard links (copies where links fail)
/// to `(apr, gguf)`. Returns the pairs as the single runs take them.
fn one_reference(dir: &Path, (apr, gguf): &(PathBuf, PathBuf), n: u64) -> Vec<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let link = |from: &Path, to: &Path| {
        if !to.is_file() && std::fs::hard_link(from, to).is_err() {
            std::fs::copy(from, to).unwrap_or_else(|e| {
                panic!("cannot copy {} to {}: {e}", from.display(), to.display())
            });
        }
    };
    let reference = dir.join("model.gguf");
    link(gguf, &reference);
    (1..=n)
        .map(|i| {
            let test = dir.join(format!("model-{i}.apr"));
            link(apr, &test);
            (test, reference.clone())
        })
        .collect()
}

/// Wall and CPU (user + system) time of `bin args`, the CPU time in µs from `getrusage`
/// deltas around its wait (zero where that is unavailable); stdout and stderr dropped. Panics on
/// exit 2 (it could not run).
fn time(bin: &Path, args: &[&std::ffi::OsStr]) -> (Duration, Duration) {
    let before = super::usage::children();
    let t = Instant::now();
    let status = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run apr-lint");
    let wall = t.elapsed();
    assert!(
        status.code().is_some_and(|c| c != 2),
        "{} {args:?}: {status}",
        bin.display()
    );
    let cpu = super::usage::cpu_between(before, super::usage::children());
    (wall, cpu.unwrap_or(Duration::ZERO))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// One row: `reps` interleaved repetitions of the batch and of the single runs.
fn row(bin: &Path, label: &str, dir: &Path, pairs: &[(PathBuf, PathBuf)], reps: usize) -> String {
    let q = ["-q", "--format", "json"].map(std::ffi::OsStr::new);
    let mut batch_args = vec![dir.as_os_str()];
    batch_args.extend(q);
    let single = |(apr, gguf): &(PathBuf, PathBuf)| {
        let mut a = vec![
            apr.as_os_str(),
            std::ffi::OsStr::new("--against"),
            gguf.as_os_str(),
        ];
        a.extend(q);
        time(bin, &a)
    };
    let singles = || {
        pairs
            .iter()
            .map(single)
            .fold((Duration::ZERO, Duration::ZERO), |s, x| {
                (s.0 + x.0, s.1 + x.1)
            })
    };
    // Warm-up: both ways once (fills the page cache).
    time(bin, &batch_args);
    singles();
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    let (mut bw, mut sw, mut bc, mut sc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let b = time(bin, &batch_args);
        let s = singles();
        walls.push(b.0.as_secs_f64() / s.0.as_secs_f64());
        cpus.push(b.1.as_secs_f64() / s.1.as_secs_f64().max(1e-3));
        bw.push(b.0);
        sw.push(s.0);
        bc.push(b.1);
        sc.push(s.1);
    }
    walls.sort_by(f64::total_cmp);
    cpus.sort_by(f64::total_cmp);
    let r = walls[walls.len() / 2];
    format!(
        "| {label} | {} | {} | {:.2}× ({:.2}–{:.2}) | {} / {} ({:.2}×) | ≤ 0.60× | {} |\n",
        ms(median(bw)),
        ms(median(sw)),
        r,
        walls[0],
        walls[walls.len() - 1],
        ms(median(bc)),
        ms(median(sc)),
        cpus[cpus.len() / 2],
        if r <= 0.6 { "ok" } else { "**MISS**" }
    )
}

/// The batch rows as Markdown. `dir`: where the pairs are generated (kept for the next run).
pub fn run(bin: &Path, dir: &Path, quick: bool) -> String {
    let reps = if quick { 3 } else { 9 };
    let tiny_dir = dir.join("batch-tiny");
    let big_dir = dir.join("batch-1.5b");
    let tiny = pairs(&tiny_dir, &TINY, DType::F32, 20);
    let big = pairs(&big_dir, &QWEN2_5_1_5B, DType::Q4_K, 4);
    let shared_dir = dir.join("batch-one-reference");
    let shared = one_reference(&shared_dir, &big[0], 4);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Batch mode\n\n`apr-lint DIR -q --format json` (one process, pairs found by stem, {} at a time) against one \
         `apr-lint X.apr --against Y.gguf -q --format json` process per pair, run one after the other; \
         {reps} repetitions, batch and singles interleaved, after one warm-up of each (warm page cache). \
         Ratio: median of the per-repetition ratios (range).\n",
        rayon::current_num_threads()
    );
    md.push_str("| directory | batch wall (median) | sum of single runs, wall (median) | batch / sum, wall (range) | CPU time: batch / singles (ratio) | target (wall) | status |\n|---|---:|---:|---:|---:|---:|---|\n");
    md.push_str(&row(
        bin,
        "20 tiny pairs (hidden 256, 2 layers, F32; 7.3 MB a side)",
        &tiny_dir,
        &tiny,
        reps,
    ));
    md.push_str(&row(
        bin,
        "4 bench-sized pairs (Qwen2.5-1.5B shape, Q4_K, seeds 1–4; ~2 GB a pair)",
        &big_dir,
        &big,
        reps,
    ));
    md.push_str(&row(
        bin,
        "4 APRs of one model against one GGUF (the seed-1 bench pair; 4 hard links to its APR)",
        &shared_dir,
        &shared,
        reps,
    ));
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child that runs for well under 10 ms still shows CPU time (`/usr/bin/time` prints 0.00
    /// for it, which made the batch's CPU ratio of tiny pairs meaningless).
    #[test]
    fn short_child_has_nonzero_cpu_time() {
        let (_, cpu) = time(Path::new("true"), &[]);
        assert!(cpu > Duration::ZERO, "{cpu:?}");
        assert!(cpu < Duration::from_millis(50), "{cpu:?}");
    }
}
