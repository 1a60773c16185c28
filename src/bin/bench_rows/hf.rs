//! `apr-lint-bench` rows for a Hugging Face reference (issue 12): the bench pair's GGUF re-saved by
//! the project's writer as a BF16 directory sharded at 1 GB (`write_gguf_as_hf`, as transformers'
//! GGUF loader + `save_pretrained(max_shard_size="1GB")` would), then the whole `apr-lint` process
//! against it: `X.apr --against DIR` and `X.gguf --against DIR`, warm, N runs (wall) and N runs
//! under the `getrusage` wrapper (peak RSS). Targets: ≤ 100 ms, ≤ 64 MB.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use apr_lint::format::writer::safetensors::{HfDtype, write_gguf_as_hf};
use apr_lint::format::{Source, gguf};

use super::{Pair, ProcResult, measure_process, ms, read_all, status};

/// `max_shard_size="1GB"` (huggingface_hub: 10^9 bytes).
const SHARD_BYTES: u64 = 1_000_000_000;

/// The BF16 sharded directory next to the pair, written once (under a temporary name, renamed
/// when complete, so an interrupted run is never reused).
fn prepare_dir(pair: &Pair) -> (PathBuf, Option<f64>) {
    let stem = pair
        .gguf
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("pair");
    let dir = pair.dir.join(format!("{stem}-bf16-hf"));
    if dir.join(apr_lint::format::hf::INDEX_FILE).is_file()
        || dir.join(apr_lint::format::hf::SINGLE_FILE).is_file()
    {
        return (dir, None);
    }
    eprintln!(
        "writing {} as a BF16 sharded HF directory …",
        pair.gguf.display()
    );
    let partial = pair.dir.join(format!("{stem}-bf16-hf.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    let t = Instant::now();
    let g = gguf::read(Source::open(&pair.gguf).expect("the bench GGUF opens"))
        .expect("the bench GGUF reads");
    write_gguf_as_hf(&g, HfDtype::BF16, Some(SHARD_BYTES), &partial)
        .unwrap_or_else(|e| panic!("write_gguf_as_hf failed: {e}"));
    std::fs::rename(&partial, &dir).expect("rename the HF directory");
    (dir, Some(t.elapsed().as_secs_f64()))
}

fn dir_files(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(Result::ok)
                .map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    (n, e.metadata().map_or(0, |m| m.len()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The section's Markdown; targets missed are pushed to `misses`.
pub fn section(pair: &Pair, bin: &Path, n: usize, misses: &mut Vec<String>) -> String {
    let mut md = String::new();
    let (dir, generated) = prepare_dir(pair);
    let files = dir_files(&dir);
    let shards: Vec<&(String, u64)> = files
        .iter()
        .filter(|(f, _)| f.ends_with(".safetensors"))
        .collect();
    let total: u64 = shards.iter().map(|(_, s)| s).sum();
    let _ = writeln!(md, "\n## Hugging Face reference (issue 12)\n");
    let _ = writeln!(
        md,
        "The GGUF of the pair re-saved by `writer::safetensors::write_gguf_as_hf(&g, HfDtype::BF16, \
         Some(1_000_000_000), DIR)` (every tensor dequantized and cast to BF16, shards of ≤ 1 GB, \
         `model.safetensors.index.json`, config and tokenizer files): {} shard(s), {:.1} MB of \
         SafeTensors; {}.",
        shards.len(),
        total as f64 / 1e6,
        match generated {
            Some(s) => format!("written in {s:.1} s"),
            None => "reused from an earlier run (delete the directory to rewrite it)".into(),
        }
    );
    for (f, _) in &shards {
        read_all(&dir.join(f));
    }
    let _ = writeln!(
        md,
        "\n| measurement | median | min | max | target | status |\n|---|---:|---:|---:|---:|---|"
    );
    let mut notes = String::new();
    for (label, file) in [
        (
            "h. `apr-lint X.apr --against DIR -q --format json`",
            &pair.apr,
        ),
        (
            "h. `apr-lint X.gguf --against DIR -q --format json`",
            &pair.gguf,
        ),
    ] {
        if !bin.is_file() {
            let _ = writeln!(
                md,
                "| {label} | — | — | — | ≤ 100 ms | not run (no binary) |"
            );
            continue;
        }
        let args: Vec<&std::ffi::OsStr> = vec![
            file.as_os_str(),
            "--against".as_ref(),
            dir.as_os_str(),
            "-q".as_ref(),
            "--format".as_ref(),
            "json".as_ref(),
        ];
        let p: ProcResult = measure_process(bin, &args, &pair.dir, n, true);
        let ok = p.wall.median.as_secs_f64() * 1e3 <= 100.0;
        if !ok {
            misses.push(format!("{label}: median {} > 100 ms", ms(p.wall.median)));
        }
        let _ = writeln!(
            md,
            "| {label}, whole process (wall) | {} | {} | {} | ≤ 100 ms | {} |",
            ms(p.wall.median),
            ms(p.wall.min),
            ms(p.wall.max),
            status(ok)
        );
        if let Some((med, lo, hi)) = p.rss_kb {
            let ok = med <= 64 * 1024;
            if !ok {
                misses.push(format!(
                    "{label}: peak RSS median {:.1} MB > 64 MB",
                    med as f64 / 1024.0
                ));
            }
            let _ = writeln!(
                md,
                "| same, peak RSS (`getrusage`) | {:.1} MB | {:.1} MB | {:.1} MB | ≤ 64 MB | {} |",
                med as f64 / 1024.0,
                lo as f64 / 1024.0,
                hi as f64 / 1024.0,
                status(ok)
            );
        }
        let s = p.json.as_ref().map(|j| &j["summary"]);
        let _ = writeln!(
            notes,
            "- {label}: exit code(s) {:?}; verdict {}; `tensors_compared` {}; child's `elapsed_ms` median {}; user / sys CPU {}.",
            p.codes,
            s.map_or("—".into(), |s| s["verdict"].to_string()),
            s.map_or("—".into(), |s| s["tensors_compared"].to_string()),
            p.child_elapsed_ms.map_or("—".into(), |e| ms(e.median)),
            p.usage.map_or("—".into(), |u| format!(
                "{:.0} / {:.0} ms",
                u.user_s * 1e3,
                u.sys_s * 1e3
            )),
        );
    }
    let _ = writeln!(md, "\n{notes}");
    if pair.temp {
        // The pair is deleted at the end of the run; so is its directory.
        let _ = std::fs::remove_dir_all(&dir);
    }
    md
}
