//! Issue 13 item 4: the whole `apr-lint X.apr --against X.gguf -q --format json` process on the
//! bench pair, with a warm and with a cold page cache, interleaved (evict, cold run, untimed run,
//! warm run, …), peak RSS of each, and how much of the two files a cold run brought into the page
//! cache. Included by `bench.rs`; `--lint-rows` prints only this section.
//!
//! Cold: `sync; echo 3 > /proc/sys/vm/drop_caches` where that is allowed; where it is not (a
//! container), both files' pages are dropped with `POSIX_FADV_DONTNEED` (GNU `dd iflag=nocache
//! count=0`), which evicts exactly the pages the run would read. `fincore` (util-linux) checks
//! that the eviction worked and measures what a cold run read.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Pair, Stats, child_usage, median_of, ms, read_all, run_child, status};

const WARM_TARGET_MS: f64 = 30.0;
const COLD_TARGET_MS: f64 = 250.0;

/// How the page cache is emptied before a cold run.
#[derive(Clone, Copy, PartialEq)]
enum Evict {
    DropCaches,
    Fadvise,
}

impl Evict {
    fn describe(self) -> &'static str {
        match self {
            Evict::DropCaches => "`sync; echo 3 > /proc/sys/vm/drop_caches` before each cold run",
            Evict::Fadvise => {
                "`echo 3 > /proc/sys/vm/drop_caches` evicts nothing here (a container: the write is refused or ignored, `fincore` shows the files still cached), so before each cold run both files' pages are dropped with `POSIX_FADV_DONTNEED` (`dd if=FILE iflag=nocache count=0`)"
            }
        }
    }
}

fn drop_caches() -> bool {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn fadvise_dontneed(p: &Path) {
    let _ = Command::new("dd")
        .arg(format!("if={}", p.display()))
        .args(["iflag=nocache", "count=0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Empty the page cache of both files; retried (up to 1 s) while `fincore` still sees pages, e.g.
/// read-ahead of the previous run still in flight.
fn evict(how: Evict, pair: &Pair) {
    for _ in 0..10 {
        if !(how == Evict::DropCaches && drop_caches()) {
            fadvise_dontneed(&pair.apr);
            fadvise_dontneed(&pair.gguf);
        }
        if resident_pair(pair).is_none_or(|b| b == 0) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Bytes of `p` in the page cache (`fincore`), None without the tool.
fn resident(p: &Path) -> Option<u64> {
    let o = Command::new("fincore")
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(p)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&o.stdout).trim().parse().ok()
}

fn resident_pair(pair: &Pair) -> Option<u64> {
    Some(resident(&pair.apr)? + resident(&pair.gguf)?)
}

fn mb_f(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The section (Markdown). Adds the rows that miss their targets to `misses`.
pub fn section(pair: &Pair, bin: &Path, n: usize, misses: &mut Vec<String>) -> String {
    let mut md = String::new();
    if !bin.is_file() {
        let _ = writeln!(
            md,
            "\n## Whole-process lint, warm and cold\n\nnot measured: {} not found (`cargo build --release` first)",
            bin.display()
        );
        return md;
    }
    eprintln!("timing the whole-process lint, warm and cold …");
    // A container may accept the write to `drop_caches` and evict nothing: check with `fincore`.
    read_all(&pair.apr);
    read_all(&pair.gguf);
    let how = if drop_caches() && resident_pair(pair).is_some_and(|b| b < 1 << 20) {
        Evict::DropCaches
    } else {
        Evict::Fadvise
    };
    let args: Vec<&std::ffi::OsStr> = vec![
        pair.apr.as_os_str(),
        "--against".as_ref(),
        pair.gguf.as_os_str(),
        "-q".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
    ];
    read_all(&pair.apr);
    read_all(&pair.gguf);
    let (mut warm, mut cold) = (Vec::new(), Vec::new());
    let (mut codes, mut read_by_cold, mut left_after_evict) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        evict(how, pair);
        left_after_evict.extend(resident_pair(pair));
        let c = run_child(bin, &args, &pair.dir);
        cold.push(c.wall);
        codes.push(c.code);
        read_by_cold.extend(resident_pair(pair));
        run_child(bin, &args, &pair.dir);
        let w = run_child(bin, &args, &pair.dir);
        warm.push(w.wall);
        codes.push(w.code);
    }
    codes.sort();
    codes.dedup();
    // Peak RSS: separate runs under the `getrusage` wrapper (its fork would blur the wall times above).
    let k = n.div_ceil(2);
    let rss_warm: Vec<u64> = (0..k)
        .filter_map(|_| child_usage(bin, &args, &pair.dir).map(|u| u.rss_kb))
        .collect();
    let rss_cold: Vec<u64> = (0..k)
        .filter_map(|_| {
            evict(how, pair);
            child_usage(bin, &args, &pair.dir).map(|u| u.rss_kb)
        })
        .collect();
    read_all(&pair.apr);
    read_all(&pair.gguf);

    let (w, c) = (Stats::of(warm.clone()), Stats::of(cold.clone()));
    let rss = |v: &[u64]| {
        if v.is_empty() {
            "—".to_string()
        } else {
            format!("{:.1} MB", median_of(v.to_vec()) as f64 / 1e3)
        }
    };
    let ms_f = |d: Duration| d.as_secs_f64() * 1e3;
    let _ = writeln!(
        md,
        "\n## Whole-process lint, warm and cold (issue 13 item 4)\n\n\
         `apr-lint X.apr --against X.gguf -q --format json` on the pair above, {n} interleaved rounds of: \
         evict, cold run, one untimed run, warm run. {}. Exit codes: {codes:?}.\n",
        how.describe()
    );
    let _ = writeln!(
        md,
        "| measurement | median | min | max | peak RSS (median) | target | status |\n|---|---:|---:|---:|---:|---:|---|"
    );
    for (name, s, r, target) in [
        ("warm page cache", w, &rss_warm, WARM_TARGET_MS),
        ("cold page cache", c, &rss_cold, COLD_TARGET_MS),
    ] {
        let ok = ms_f(s.median) <= target;
        let _ = writeln!(
            md,
            "| {name}, whole process (wall) | {} | {} | {} | {} | ≤ {target:.0} ms | {} |",
            ms(s.median),
            ms(s.min),
            ms(s.max),
            rss(r),
            status(ok)
        );
        if !ok {
            misses.push(format!(
                "whole-process lint, {name}: median {} > {target:.0} ms",
                ms(s.median)
            ));
        }
    }
    let ratios: Vec<f64> = cold
        .iter()
        .zip(&warm)
        .map(|(c, w)| ms_f(*c) / ms_f(*w).max(1e-9))
        .collect();
    let _ = writeln!(
        md,
        "\nCold / warm, per round: median {:.1}×.",
        median_of(ratios)
    );
    if !read_by_cold.is_empty() {
        let _ = writeln!(
            md,
            "Page cache after eviction: at most {} of the two files left; after a cold run: median {} \
             (what the run read, kernel read-ahead included; `fincore`).",
            mb_f(left_after_evict.iter().copied().max().unwrap_or(0)),
            mb_f(median_of(read_by_cold))
        );
    }
    md
}
