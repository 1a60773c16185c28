//! The corrupt-input corpus: damaged copies of real GGUF fixtures and of APR files our writer makes
//! from them — truncations at every structural boundary and at random points, bit flips in every
//! region, hostile counts and lengths, bad offsets, invalid UTF-8, duplicates, bad CRCs, wrong magics
//! and versions — each read with `read_source` and `ModelView::from_source` (and, when readable,
//! row 0 of every tensor dequantized and the per-file checks, `check::check_file`, run) under
//! `catch_unwind`.
//!
//! Every case must finish quickly without a panic, with either a coded `APRL-F…` error (for the
//! targeted cases, the expected code; for truncations and bad offsets, a byte offset inside the
//! file) or a readable file whose reader and per-file-check findings are registered codes with a
//! help line that point inside it. Every targeted case states what its damage must produce, derived
//! from what the damage is; only random bit flips in structure accept any coded outcome. Cases that would make a naive
//! reader allocate from a hostile count are included on purpose: an OOM here is a reader bug.
//!
//! Regression tests for crashes found by `fuzz/` are at the end, named after what they caught.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

mod common;

use apr_lint::check::check_file;
use apr_lint::format::apr::{self as apr_fmt, AprFile};
use apr_lint::format::gguf::{self, GgufFile, Value};
use apr_lint::format::writer::apr::{AprTensor, AprWriter, Flavour};
use apr_lint::format::writer::convert::gguf_to_apr;
use apr_lint::format::writer::gguf::{GgufWriter, MetaValue};
use apr_lint::format::{Source, read_source};
use apr_lint::model::ModelView;
use apr_lint::quant::DType;
use apr_lint::rules::{Resolved, RuleSet};

// ---------------------------------------------------------------------------------------------
// Codes (src/format/lints.rs).

const UNKNOWN_FORMAT: &str = "APRL-F002";
const EMPTY: &str = "APRL-F003";
const LFS: &str = "APRL-F004";
const VERSION: &str = "APRL-F005";
const BIG_ENDIAN: &str = "APRL-F006";
const TRUNCATED: &str = "APRL-F007";
const DUP_KEY: &str = "APRL-F008";
const DUP_TENSOR: &str = "APRL-F009";
const NAME_TOO_LONG: &str = "APRL-F010";
const TOO_MANY_DIMS: &str = "APRL-F011";
const BAD_DIMS: &str = "APRL-F012";
const UNKNOWN_DTYPE: &str = "APRL-F013";
const BLOCK_MISALIGNED: &str = "APRL-F014";
const BAD_ALIGNMENT: &str = "APRL-F015";
const OFFSET_MISALIGNED: &str = "APRL-F016";
const OUT_OF_BOUNDS: &str = "APRL-F017";
const OVERLAP: &str = "APRL-F018";
const NON_CONTIGUOUS: &str = "APRL-F019";
const TRAILING: &str = "APRL-F020";
const BAD_UTF8: &str = "APRL-F021";
const BAD_VALUE_TYPE: &str = "APRL-F022";
const HEADER_CRC: &str = "APRL-F023";
const APR_V1: &str = "APRL-F024";
const APR_LEGACY_MAGIC: &str = "APRL-F025";
const JSON_INDEX: &str = "APRL-F026";
const METADATA_JSON: &str = "APRL-F027";
const INDEX_ORDER: &str = "APRL-F028";
const FOOTER_CRC: &str = "APRL-F029";
const UNSUPPORTED_FLAGS: &str = "APRL-F030";
const SIZE_MISMATCH: &str = "APRL-F031";
const HEADER_FIELD: &str = "APRL-F032";
const INDEX_TRAILING: &str = "APRL-F033";
const COUNT_OVERRUN: &str = "APRL-F040";
const PADDING: &str = "APRL-F034";
// Per-file checks (src/check).
const AMBIGUOUS_DTYPE: &str = "APRL-M009";
const TIED_PLACEHOLDER: &str = "APRL-M010";

const GGUF_FIXTURES: &[&str] = &["tiny-qwen2-lq-q4_k_m.gguf", "tiny-llama-q8_0.gguf"];

/// Whole corpus, debug build (the test profile has opt-level 1): CPU time summed over the cases.
/// Budgets are CPU time of the thread running the case (`common::CpuClock`), so a loaded machine
/// does not fail them; they catch hangs and quadratic blow-ups (such cases took 100 s and more).
const CORPUS_BUDGET: Duration = Duration::from_secs(40);
/// Any single case.
const CASE_BUDGET: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------------
// Cases.

#[derive(Clone, Debug)]
enum Expect {
    /// Readable, or a coded container error (random bit flips in structure only).
    Any,
    /// The file must not read: a coded container error (any code: the damage makes the parser
    /// read garbage, and where it stops depends on the garbage), at a byte offset in the file.
    Refused,
    /// Any of these.
    Either(Vec<Expect>),
    /// The expectation above is what the damage calls for, but today's reader or checks give
    /// something else because of a defect another change is fixing (named in the reason); the
    /// case is reported, not failed, until that lands.
    // No case is pending today; kept so a known gap can be listed without failing the corpus.
    #[allow(dead_code)]
    Pending(Box<Expect>, &'static str),
    /// Readable: a bit flip in tensor data must not make the file unreadable.
    Ok,
    /// Readable, with a finding of this code (from the reader or the per-file checks).
    Finding(&'static str),
    /// An error with one of these codes; with `offset`, a byte offset inside the file.
    Err {
        codes: &'static [&'static str],
        offset: bool,
    },
    /// A file cut at a point: an error with an offset inside the file before `needed` bytes (the
    /// end of the last tensor's data), readable from there on.
    Cut { needed: u64 },
}

struct Case {
    name: String,
    ext: &'static str,
    base: Arc<Vec<u8>>,
    make: Make,
    expect: Expect,
}

fn err(codes: &'static [&'static str]) -> Expect {
    Expect::Err {
        codes,
        offset: false,
    }
}

fn err_at(codes: &'static [&'static str]) -> Expect {
    Expect::Err {
        codes,
        offset: true,
    }
}

/// SplitMix64: a fixed seed gives the same corpus on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..hi` (`hi > lo`).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// How a case's bytes are made from its base file, when the case runs (the corpus holds thousands
/// of cases over megabyte files: only the recipes are kept).
type Make = Box<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

fn patch(at: u64, with: impl AsRef<[u8]>) -> Make {
    patches(vec![(at, with.as_ref().to_vec())])
}

fn patches(edits: Vec<(u64, Vec<u8>)>) -> Make {
    Box::new(move |b| {
        let mut v = b.to_vec();
        for (at, with) in &edits {
            let at = *at as usize;
            v[at..at + with.len()].copy_from_slice(with);
        }
        v
    })
}

fn flip(bit: u64) -> Make {
    Box::new(move |b| {
        let mut v = b.to_vec();
        v[(bit / 8) as usize] ^= 1 << (bit % 8);
        v
    })
}

fn cut(n: u64) -> Make {
    Box::new(move |b| b[..n as usize].to_vec())
}

fn append(tail: impl AsRef<[u8]>) -> Make {
    let tail = tail.as_ref().to_vec();
    Box::new(move |b| [b, &tail[..]].concat())
}

/// Bytes made elsewhere (by a writer): the base is ignored.
fn whole(bytes: Vec<u8>) -> Make {
    Box::new(move |_| bytes.clone())
}

/// Recompute the APR header CRC after `make`, so the damage under test is the only one.
fn crc(make: Make) -> Make {
    Box::new(move |b| fix_crc(make(b)))
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/gguf")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn read_gguf(bytes: &[u8]) -> GgufFile {
    gguf::read(Source::from_vec(bytes.to_vec(), "clean.gguf")).expect("the clean GGUF reads")
}

fn read_apr(bytes: &[u8]) -> AprFile {
    apr_fmt::read(Source::from_vec(bytes.to_vec(), "clean.apr")).expect("the clean APR reads")
}

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(RuleSet::builtin)
}

// ---------------------------------------------------------------------------------------------
// GGUF: field positions of a clean file.

struct KvAt {
    start: u64,
    key_len: u64,
    /// The value type field.
    type_at: u64,
    /// The value (after the type).
    value_at: u64,
    end: u64,
}

struct TensorAt {
    start: u64,
    name_at: u64,
    n_dims_at: u64,
    ne_at: u64,
    n_dims: u64,
    type_at: u64,
    offset_at: u64,
    end: u64,
    /// Absolute data range.
    data: (u64, u64),
}

fn gguf_kvs(g: &GgufFile) -> Vec<KvAt> {
    g.metadata
        .iter()
        .map(|kv| {
            let start = kv.span.offset;
            let key_len = kv.key.len() as u64;
            KvAt {
                start,
                key_len,
                type_at: start + 8 + key_len,
                value_at: start + 12 + key_len,
                end: kv.span.end(),
            }
        })
        .collect()
}

fn gguf_tensors(g: &GgufFile) -> Vec<TensorAt> {
    g.tensors
        .iter()
        .map(|t| {
            let start = t.record.offset;
            let n_dims_at = start + 8 + t.name.len() as u64;
            let type_at = t.ne_span.end();
            let d = t.data_span(g.data_offset);
            TensorAt {
                start,
                name_at: start + 8,
                n_dims_at,
                ne_at: t.ne_span.offset,
                n_dims: t.ne.len() as u64,
                type_at,
                offset_at: type_at + 4,
                end: t.record.end(),
                data: (d.offset, d.end()),
            }
        })
        .collect()
}

fn gguf_needed(g: &GgufFile) -> u64 {
    g.tensors
        .iter()
        .map(|t| t.data_span(g.data_offset).end())
        .max()
        .unwrap_or(g.data_offset)
}

fn gguf_cases(fixture_name: &str, base: &[u8], rng: &mut Rng, out: &mut Vec<Case>) {
    let g = read_gguf(base);
    let kvs = gguf_kvs(&g);
    let ts = gguf_tensors(&g);
    let len = base.len() as u64;
    let needed = gguf_needed(&g);
    let base_arc = Arc::new(base.to_vec());
    let mut push = |what: String, make: Make, expect: Expect| {
        out.push(Case {
            name: format!("{fixture_name}: {what}"),
            ext: "gguf",
            base: base_arc.clone(),
            make,
            expect,
        });
    };

    // Truncation at every structural boundary.
    let mut cuts: Vec<u64> = vec![0, 1, 3, 4, 6, 8, 12, 16, 20, 24];
    for k in &kvs {
        cuts.extend([
            k.start,
            k.start + 4,
            k.start + 8,
            k.type_at,
            k.value_at,
            k.value_at + 4,
            k.end - 1,
            k.end,
        ]);
    }
    for t in &ts {
        cuts.extend([
            t.start,
            t.name_at,
            t.n_dims_at,
            t.ne_at,
            t.ne_at + 8,
            t.type_at,
            t.offset_at,
            t.end - 1,
            t.end,
        ]);
        cuts.extend([
            t.data.0,
            t.data.0 + 1,
            (t.data.0 + t.data.1) / 2,
            t.data.1.saturating_sub(1),
            t.data.1,
        ]);
    }
    cuts.extend([g.data_offset - 1, g.data_offset, g.data_offset + 1, len - 1]);
    // Random points.
    for _ in 0..60 {
        cuts.push(rng.range(0, len));
    }
    cuts.sort_unstable();
    cuts.dedup();
    for c in cuts.into_iter().filter(|&c| c < len) {
        push(format!("truncated at {c}"), cut(c), Expect::Cut { needed });
    }

    // Bit flips: header, metadata, tensor infos, data.
    let meta_end = ts.first().map_or(g.data_offset, |t| t.start);
    let infos_end = ts.last().map_or(meta_end, |t| t.end);
    for (region, lo, hi, n, expect) in [
        ("header", 0, 24, 24, Expect::Any),
        ("metadata", 24, meta_end, 60, Expect::Any),
        ("tensor info", meta_end, infos_end, 60, Expect::Any),
        ("tensor data", g.data_offset, needed, 40, Expect::Ok),
    ] {
        for _ in 0..n {
            let bit = rng.range(lo * 8, hi * 8);
            push(
                format!("bit {bit} flipped in {region}"),
                flip(bit),
                expect.clone(),
            );
        }
    }

    // Hostile counts and lengths.
    let u64b = |v: u64| v.to_le_bytes();
    push(
        "tensor_count 2^63".into(),
        patch(8, u64b(1 << 63)),
        err_at(&[TRUNCATED]),
    );
    push(
        "tensor_count 2^64-1".into(),
        patch(8, u64b(u64::MAX)),
        err_at(&[TRUNCATED]),
    );
    // One record more than the table holds: the bytes after the table (padding, then tensor
    // data) are parsed as a record, and the data section moves.
    push(
        "tensor_count + 1".into(),
        patch(8, u64b(g.tensors.len() as u64 + 1)),
        Expect::Refused,
    );
    push(
        "kv_count 2^64-1".into(),
        patch(16, u64b(u64::MAX)),
        err_at(&[TRUNCATED]),
    );
    push(
        "kv_count 2^63".into(),
        patch(16, u64b(1 << 63)),
        err_at(&[TRUNCATED]),
    );
    // One pair more: the first tensor record is parsed as a pair, and every record after it is
    // read out of step.
    push(
        "kv_count + 1".into(),
        patch(16, u64b(g.metadata.len() as u64 + 1)),
        Expect::Refused,
    );
    // No pairs: the first pair is parsed as a tensor record, whose name is the key and whose
    // n_dims is the pair's value type id (STRING = 8, …): more than GGUF's 4 dims for most types.
    let first_type = u32::from_le_bytes(
        base[kvs[0].type_at as usize..kvs[0].type_at as usize + 4]
            .try_into()
            .unwrap(),
    );
    push(
        "kv_count 0".into(),
        patch(16, u64b(0)),
        if first_type > 4 {
            err_at(&[TOO_MANY_DIMS])
        } else {
            Expect::Refused
        },
    );
    push(
        "first key length 2^64-1".into(),
        patch(24, u64b(u64::MAX)),
        err_at(&[TRUNCATED]),
    );
    push(
        "first key length 2^63".into(),
        patch(24, u64b(1 << 63)),
        err_at(&[TRUNCATED]),
    );
    push(
        "first key length = file length".into(),
        patch(24, u64b(len)),
        err_at(&[TRUNCATED]),
    );
    for (i, (kv, k)) in g.metadata.iter().zip(&kvs).enumerate() {
        push(
            format!("kv {i} value type 13"),
            patch(k.type_at, 13u32.to_le_bytes()),
            err_at(&[BAD_VALUE_TYPE]),
        );
        push(
            format!("kv {i} value type 2^32-1"),
            patch(k.type_at, u32::MAX.to_le_bytes()),
            err_at(&[BAD_VALUE_TYPE]),
        );
        push(
            format!("kv {i} key byte 0xFF"),
            patch(k.start + 8, [0xFF]),
            if k.key_len > 0 {
                err_at(&[BAD_UTF8])
            } else {
                Expect::Any
            },
        );
        match &kv.value {
            Value::String(s) => {
                push(
                    format!("kv {i} string length 2^64-1"),
                    patch(k.value_at, u64b(u64::MAX)),
                    err_at(&[TRUNCATED]),
                );
                push(
                    format!("kv {i} string length 2^63+1"),
                    patch(k.value_at, u64b((1 << 63) + 1)),
                    err_at(&[TRUNCATED]),
                );
                if !s.is_empty() {
                    push(
                        format!("kv {i} string byte 0xFF"),
                        patch(k.value_at + 8, [0xFF]),
                        err_at(&[BAD_UTF8]),
                    );
                }
            }
            Value::Array(a) => {
                let len_at = k.value_at + 4;
                push(
                    format!("kv {i} array length 2^64-1"),
                    patch(len_at, u64b(u64::MAX)),
                    err_at(&[TRUNCATED]),
                );
                push(
                    format!("kv {i} array length 2^61"),
                    patch(len_at, u64b(1 << 61)),
                    err_at(&[TRUNCATED]),
                );
                push(
                    format!("kv {i} array length 2^32"),
                    patch(len_at, u64b(1 << 32)),
                    err_at(&[TRUNCATED]),
                );
                // One element more: the next pair (or record) is read as an element and all
                // that follows is parsed out of step.
                push(
                    format!("kv {i} array length + 1"),
                    patch(len_at, u64b(a.len + 1)),
                    Expect::Refused,
                );
                push(
                    format!("kv {i} array element type 9 (nested)"),
                    patch(k.value_at, 9u32.to_le_bytes()),
                    err_at(&[BAD_VALUE_TYPE]),
                );
                push(
                    format!("kv {i} array element type 13"),
                    patch(k.value_at, 13u32.to_le_bytes()),
                    err_at(&[BAD_VALUE_TYPE]),
                );
                if a.elem == gguf::ValueType::String && a.len > 0 {
                    push(
                        format!("kv {i} first array string length 2^64-1"),
                        patch(a.span.offset, u64b(u64::MAX)),
                        err_at(&[TRUNCATED]),
                    );
                    // GGUF strings are UTF-8, array elements too (gguf-py decodes them).
                    let at = a.span.offset as usize;
                    let first_len = u64::from_le_bytes(base[at..at + 8].try_into().unwrap());
                    push(
                        format!("kv {i} first array string byte 0xFF"),
                        patch(a.span.offset + 8, [0xFF]),
                        if first_len > 0 {
                            err_at(&[BAD_UTF8])
                        } else {
                            Expect::Refused
                        },
                    );
                }
                // Another element type id: the same width (or the same type) reads the same
                // bytes as other numbers; a different width misparses everything after it.
                let width = |t: gguf::ValueType| match t {
                    gguf::ValueType::String => None,
                    t => Some(t.min_bytes()),
                };
                for elem in [0u32, 4, 6, 7, 8, 10, 12] {
                    let new = gguf::ValueType::from_id(elem).expect("a GGUF type");
                    let same_width = new != gguf::ValueType::Bool
                        && width(new).is_some()
                        && width(new) == width(a.elem);
                    let expect = if new == a.elem || same_width {
                        Expect::Ok
                    } else {
                        Expect::Refused
                    };
                    push(
                        format!("kv {i} array element type {elem}"),
                        patch(k.value_at, elem.to_le_bytes()),
                        expect,
                    );
                }
            }
            Value::Bool(_) => {
                push(
                    format!("kv {i} bool value 2"),
                    patch(k.value_at, [2]),
                    err_at(&[BAD_VALUE_TYPE]),
                );
            }
            _ => {}
        }
    }

    // Tensor records: every field set to hostile values (first few tensors and the last).
    let picks: Vec<usize> = (0..ts.len())
        .filter(|&i| i < 4 || i + 1 == ts.len())
        .collect();
    for &i in &picks {
        let t = &ts[i];
        let info = &g.tensors[i];
        push(
            format!("tensor {i} name length 2^64-1"),
            patch(t.start, u64b(u64::MAX)),
            err_at(&[TRUNCATED]),
        );
        // ggml's names hold at most 63 bytes (GGML_MAX_NAME with its NUL).
        push(
            format!("tensor {i} name length 64"),
            patch(t.start, u64b(64)),
            err_at(&[NAME_TOO_LONG, BAD_UTF8]),
        );
        push(
            format!("tensor {i} name byte 0xFF"),
            patch(t.name_at, [0xFF]),
            err_at(&[BAD_UTF8]),
        );
        push(
            format!("tensor {i} n_dims 200"),
            patch(t.n_dims_at, 200u32.to_le_bytes()),
            err_at(&[TOO_MANY_DIMS]),
        );
        push(
            format!("tensor {i} n_dims 5"),
            patch(t.n_dims_at, 5u32.to_le_bytes()),
            err_at(&[TOO_MANY_DIMS]),
        );
        push(
            format!("tensor {i} n_dims 2^32-1"),
            patch(t.n_dims_at, u32::MAX.to_le_bytes()),
            err_at(&[TOO_MANY_DIMS]),
        );
        // No dims: the record's type id is read from the low half of ne[0].
        let ne0_low = info.ne[0] as u32;
        push(
            format!("tensor {i} n_dims 0"),
            patch(t.n_dims_at, 0u32.to_le_bytes()),
            if DType::from_ggml_id(ne0_low).is_none() {
                err_at(&[UNKNOWN_DTYPE])
            } else {
                Expect::Refused
            },
        );
        push(
            format!("tensor {i} ne[0] = -1"),
            patch(t.ne_at, u64b(u64::MAX)),
            err_at(&[BAD_DIMS]),
        );
        push(
            format!("tensor {i} ne[0] = i64::MAX"),
            patch(t.ne_at, u64b(i64::MAX as u64)),
            err_at(&[BAD_DIMS, BLOCK_MISALIGNED, OUT_OF_BOUNDS]),
        );
        // No elements: 0 bytes where the table reserved the tensor's bytes. ggml packs tensors
        // in table order, so the next tensor's offset is not where it expects (or, for the last
        // tensor, its bytes trail the data).
        let emptied = if i + 1 == ts.len() {
            Expect::Finding(TRAILING)
        } else {
            Expect::Finding(NON_CONTIGUOUS)
        };
        push(
            format!("tensor {i} ne[0] = 0"),
            patch(t.ne_at, u64b(0)),
            emptied.clone(),
        );
        if t.n_dims >= 2 {
            let ne2 = |a: u64, b: u64| {
                patches(vec![
                    (t.ne_at, u64b(a).to_vec()),
                    (t.ne_at + 8, u64b(b).to_vec()),
                ])
            };
            push(
                format!("tensor {i} ne product overflows 63 bits"),
                ne2(1 << 32, 1 << 32),
                err_at(&[BAD_DIMS]),
            );
            push(
                format!("tensor {i} ne = [0, 2^62]"),
                ne2(0, 1 << 62),
                emptied.clone(),
            );
            push(
                format!("tensor {i} ne = [2^62, 0]"),
                ne2(1 << 62, 0),
                emptied.clone(),
            );
            push(
                format!("tensor {i} ne[1] = 2^40"),
                patch(t.ne_at + 8, u64b(1 << 40)),
                err_at(&[OUT_OF_BOUNDS, BAD_DIMS]),
            );
        }
        if info.dtype.block_elems() > 1 {
            push(
                format!("tensor {i} ne[0] not a block multiple"),
                patch(t.ne_at, u64b(info.ne[0] + 1)),
                err_at(&[BLOCK_MISALIGNED]),
            );
        }
        for id in [4u32, 5, 31, 40, 255, u32::MAX] {
            push(
                format!("tensor {i} type id {id}"),
                patch(t.type_at, id.to_le_bytes()),
                err_at(&[UNKNOWN_DTYPE]),
            );
        }
        // Another valid type: the same bytes measured with another type's size.
        let data_len = len - g.data_offset;
        let room = g.tensors.get(i + 1).map(|n| n.offset);
        for id in [0u32, 1, 2, 8, 12, 14, 16, 19, 20, 23, 29, 30, 34, 39] {
            let new = DType::from_ggml_id(id).expect("a ggml type");
            let dims: Vec<u64> = info.ne.iter().rev().copied().collect();
            let expect = if !info.ne[0].is_multiple_of(new.block_elems()) {
                err_at(&[BLOCK_MISALIGNED])
            } else {
                let n = apr_lint::quant::tensor_n_bytes(new, &dims).expect("fits");
                let end = info.offset + n;
                let padded = end.div_ceil(g.alignment) * g.alignment;
                match room {
                    Some(next) if end > next => err_at(&[OVERLAP]),
                    Some(next) if padded != next => Expect::Finding(NON_CONTIGUOUS),
                    None if end > data_len => err_at(&[OUT_OF_BOUNDS]),
                    None if padded < data_len => Expect::Finding(TRAILING),
                    _ => Expect::Ok,
                }
            };
            push(
                format!("tensor {i} type id {id} (relabelled)"),
                patch(t.type_at, id.to_le_bytes()),
                expect,
            );
        }
        push(
            format!("tensor {i} offset + 1"),
            patch(t.offset_at, u64b(info.offset + 1)),
            err_at(&[OFFSET_MISALIGNED]),
        );
        push(
            format!("tensor {i} offset 2^40"),
            patch(t.offset_at, u64b(1 << 40)),
            err_at(&[OUT_OF_BOUNDS]),
        );
        push(
            format!("tensor {i} offset 2^64-32"),
            patch(t.offset_at, u64b(!31u64)),
            err_at(&[OUT_OF_BOUNDS]),
        );
        push(
            format!("tensor {i} offset = data length"),
            patch(t.offset_at, u64b((len - g.data_offset + 31) & !31)),
            err_at(&[OUT_OF_BOUNDS]),
        );
    }
    // Overlap and out-of-order offsets.
    if ts.len() >= 2 {
        push(
            "tensor 1 offset = tensor 0 offset".into(),
            patch(ts[1].offset_at, u64b(g.tensors[0].offset)),
            err_at(&[OVERLAP]),
        );
        let last = ts.len() - 1;
        push(
            "last tensor offset = previous offset".into(),
            patch(ts[last].offset_at, u64b(g.tensors[last - 1].offset)),
            err_at(&[OVERLAP, OUT_OF_BOUNDS]),
        );
        push(
            "tensor 0 offset + 32".into(),
            patch(ts[0].offset_at, u64b(g.tensors[0].offset + 32)),
            err_at(&[OVERLAP, OUT_OF_BOUNDS]),
        );
        // Two tensors of one size swap places: disjoint but not in table order.
        let pair = (0..g.tensors.len())
            .flat_map(|a| (a + 1..g.tensors.len()).map(move |b| (a, b)))
            .find(|&(a, b)| g.tensors[a].n_bytes == g.tensors[b].n_bytes);
        if let Some((a, b)) = pair {
            let v = patches(vec![
                (ts[a].offset_at, u64b(g.tensors[b].offset).to_vec()),
                (ts[b].offset_at, u64b(g.tensors[a].offset).to_vec()),
            ]);
            push(
                format!("tensors {a} and {b} swap offsets"),
                v,
                Expect::Finding(NON_CONTIGUOUS),
            );
        }
    }

    // Magic and version.
    push(
        "GGUF v1".into(),
        patch(4, 1u32.to_le_bytes()),
        err(&[VERSION]),
    );
    push(
        "GGUF v0".into(),
        patch(4, 0u32.to_le_bytes()),
        err(&[VERSION]),
    );
    push(
        "GGUF v4".into(),
        patch(4, 4u32.to_le_bytes()),
        err(&[VERSION]),
    );
    push(
        "GGUF v2^32-1".into(),
        patch(4, u32::MAX.to_le_bytes()),
        err(&[VERSION]),
    );
    push(
        "big-endian version 3".into(),
        patch(4, 3u32.to_be_bytes()),
        err(&[BIG_ENDIAN]),
    );
    push(
        "big-endian version 2".into(),
        patch(4, 2u32.to_be_bytes()),
        err(&[BIG_ENDIAN]),
    );
    push(
        "byte-swapped magic FUGG".into(),
        patch(0, b"FUGG"),
        err(&[BIG_ENDIAN]),
    );
    push(
        "magic GGUG".into(),
        patch(0, b"GGUG"),
        err(&[UNKNOWN_FORMAT]),
    );
    push(
        "magic ggml".into(),
        patch(0, b"ggml"),
        err(&[UNKNOWN_FORMAT]),
    );

    // Trailing garbage.
    push(
        "trailing 100 bytes".into(),
        append([0xAB; 100]),
        Expect::Finding(TRAILING),
    );
    push(
        "trailing 1 byte past padding".into(),
        Box::new(move |b| [&b[..needed as usize], &[0; 33][..]].concat()),
        Expect::Finding(TRAILING),
    );

    // Through the writer: damage a byte patch cannot express.
    let w = GgufWriter::from_file(&g);
    let mut d = w.clone();
    let first = d.metadata[0].clone();
    d.metadata.push(first);
    push(
        "duplicate key (first key again, last)".into(),
        whole(d.to_bytes()),
        err_at(&[DUP_KEY]),
    );
    let mut d = w.clone();
    let second = d.metadata[1].clone();
    d.metadata.insert(2, second);
    push(
        "duplicate key (adjacent)".into(),
        whole(d.to_bytes()),
        err_at(&[DUP_KEY]),
    );
    let mut d = w.clone();
    d.tensors[1].name = d.tensors[0].name.clone();
    push(
        "duplicate tensor name".into(),
        whole(d.to_bytes()),
        err_at(&[DUP_TENSOR]),
    );
    let mut d = w.clone();
    let n = d.tensors.len() - 1;
    d.tensors[n].name = d.tensors[0].name.clone();
    push(
        "duplicate tensor name (last = first)".into(),
        whole(d.to_bytes()),
        err_at(&[DUP_TENSOR]),
    );
    let mut d = w.clone();
    d.tensors[0].name = "x".repeat(64);
    push(
        "tensor name of 64 bytes".into(),
        whole(d.to_bytes()),
        err_at(&[NAME_TOO_LONG]),
    );
    let mut d = w.clone();
    d.tensors[0].name = "y".repeat(63);
    push(
        "tensor name of 63 bytes".into(),
        whole(d.to_bytes()),
        Expect::Ok,
    );
    for (what, v) in [
        ("general.alignment 3", MetaValue::U32(3)),
        ("general.alignment 0", MetaValue::U32(0)),
        ("general.alignment as u64", MetaValue::U64(32)),
        ("general.alignment as string", MetaValue::string("32")),
    ] {
        let mut d = w.clone();
        d.metadata.retain(|(k, _)| k != "general.alignment");
        d.metadata.push(("general.alignment".into(), v));
        push(what.into(), whole(d.to_bytes()), err_at(&[BAD_ALIGNMENT]));
    }
    let mut d = w.clone();
    d.metadata.retain(|(k, _)| k != "general.alignment");
    d.metadata
        .push(("general.alignment".into(), MetaValue::U32(1 << 31)));
    push(
        "general.alignment 2^31".into(),
        whole(d.to_bytes()),
        err_at(&[OFFSET_MISALIGNED, TRUNCATED]),
    );
    let mut d = w.clone();
    d.metadata.retain(|(k, _)| k != "general.alignment");
    d.metadata
        .push(("general.alignment".into(), MetaValue::U32(64)));
    // The tensors stay where a 32-byte alignment put them: an offset that is not a multiple of
    // 64 is misaligned for the declared alignment.
    push(
        "general.alignment 64 over a 32-aligned layout".into(),
        whole(d.to_bytes()),
        if g.tensors.iter().any(|t| !t.offset.is_multiple_of(64)) {
            err_at(&[OFFSET_MISALIGNED])
        } else {
            Expect::Any
        },
    );
    let mut d = w.clone();
    d.tensors[0].offset_override = Some(needed);
    push(
        "writer: tensor 0 offset past the data".into(),
        whole(d.to_bytes()),
        err_at(&[OUT_OF_BOUNDS, OFFSET_MISALIGNED]),
    );
    let mut d = w.clone();
    d.tensors.clear();
    push(
        "no tensors, metadata only".into(),
        whole(d.to_bytes()),
        Expect::Ok,
    );
    let mut d = w.clone();
    d.metadata.clear();
    push(
        "no metadata, tensors only".into(),
        whole(d.to_bytes()),
        Expect::Ok,
    );
    let mut d = w.clone();
    d.metadata
        .push(("general.architecture".into(), MetaValue::U32(7)));
    push(
        "general.architecture twice, second a u32".into(),
        whole(d.to_bytes()),
        err_at(&[DUP_KEY]),
    );
    let mut d = w.clone();
    for (k, v) in d.metadata.iter_mut() {
        if k.ends_with(".embedding_length")
            || k.ends_with(".block_count")
            || k.ends_with(".head_count")
        {
            *v = MetaValue::U64(u64::MAX);
        }
    }
    push(
        "config counts 2^64-1".into(),
        whole(d.to_bytes()),
        Expect::Ok,
    );
    let mut d = w.clone();
    for (k, v) in d.metadata.iter_mut() {
        if k.ends_with(".embedding_length")
            || k.ends_with(".head_count")
            || k.ends_with(".head_count_kv")
        {
            *v = MetaValue::U32(0);
        }
    }
    push("config counts 0".into(), whole(d.to_bytes()), Expect::Ok);
    let mut d = w.clone();
    for (_, v) in d.metadata.iter_mut() {
        if let MetaValue::ArrayString(s) = v {
            s.clear();
        }
    }
    push(
        "empty token and merge arrays".into(),
        whole(d.to_bytes()),
        Expect::Ok,
    );
}

// ---------------------------------------------------------------------------------------------
// APR: field positions of a clean file.

struct EntryAt {
    start: u64,
    name_at: u64,
    name_len: u64,
    dtype_at: u64,
    ndim_at: u64,
    dims_at: u64,
    ndim: u64,
    offset_at: u64,
    size_at: u64,
    end: u64,
    data: (u64, u64),
}

fn apr_entries(a: &AprFile) -> Vec<EntryAt> {
    a.tensors
        .iter()
        .map(|t| {
            let start = t.record.offset;
            let name_len = t.name.len() as u64;
            let d = t.data_span(a.header.data_offset);
            EntryAt {
                start,
                name_at: start + 2,
                name_len,
                dtype_at: start + 2 + name_len,
                ndim_at: start + 3 + name_len,
                dims_at: t.dims_span.offset,
                ndim: t.dims.len() as u64,
                offset_at: t.dims_span.end(),
                size_at: t.dims_span.end() + 8,
                end: t.record.end(),
                data: (d.offset, d.end()),
            }
        })
        .collect()
}

/// Recompute the header CRC after a header patch, so the damage under test is the only one.
fn fix_crc(mut v: Vec<u8>) -> Vec<u8> {
    let crc = apr_fmt::header_crc(&v[..64]);
    v[40..44].copy_from_slice(&crc.to_le_bytes());
    v
}

/// What an APR tensor `name` holding 0 bytes for its dims must get: only the output matrix may be
/// the tied-embedding placeholder (aprender #2309, #2441); any other tensor has lost its data.
fn zero_bytes(name: &str) -> Expect {
    if name == "lm_head.weight" || name == "output.weight" {
        Expect::Finding(TIED_PLACEHOLDER)
    } else {
        Expect::Finding(SIZE_MISMATCH)
    }
}

fn apr_cases(label: &str, w: &AprWriter, rng: &mut Rng, out: &mut Vec<Case>) {
    let base = w.to_bytes();
    let a = read_apr(&base);
    let es = apr_entries(&a);
    let h = &a.header;
    let len = base.len() as u64;
    let needed = es.iter().map(|e| e.data.1).max().unwrap_or(h.data_offset);
    let base_arc = Arc::new(base.clone());
    let base = &base[..];
    let mut push = |what: String, make: Make, expect: Expect| {
        out.push(Case {
            name: format!("{label}: {what}"),
            ext: "apr",
            base: base_arc.clone(),
            make,
            expect,
        });
    };
    let u64b = |v: u64| v.to_le_bytes();

    // Truncations: header fields, metadata, index entries, data, footer, random.
    let mut cuts: Vec<u64> = vec![0, 1, 3, 4, 5, 6, 8, 12, 20, 24, 32, 40, 44, 63, 64];
    cuts.extend([
        h.metadata_offset + h.metadata_size as u64 / 2,
        h.metadata_offset + h.metadata_size as u64,
    ]);
    cuts.extend([h.tensor_index_offset - 1, h.tensor_index_offset]);
    for e in &es {
        cuts.extend([
            e.start,
            e.start + 1,
            e.name_at,
            e.dtype_at,
            e.ndim_at,
            e.dims_at,
            e.offset_at,
            e.size_at,
            e.end - 1,
            e.end,
        ]);
        cuts.extend([
            e.data.0,
            e.data.0 + 1,
            (e.data.0 + e.data.1) / 2,
            e.data.1 - 1,
            e.data.1,
        ]);
    }
    cuts.extend([
        h.data_offset - 1,
        h.data_offset,
        h.data_offset + 1,
        len - 4,
        len - 3,
        len - 1,
    ]);
    for _ in 0..50 {
        cuts.push(rng.range(0, len));
    }
    cuts.sort_unstable();
    cuts.dedup();
    for c in cuts.into_iter().filter(|&c| c < len) {
        push(format!("truncated at {c}"), cut(c), Expect::Cut { needed });
    }

    // Bit flips.
    let meta_end = h.metadata_offset + h.metadata_size as u64;
    let footer_expect = if a.footer == apr_fmt::Footer::Valid {
        Expect::Finding(FOOTER_CRC)
    } else {
        Expect::Ok
    };
    for (region, lo, hi, n, expect) in [
        ("header", 0, 64, 40, Expect::Any),
        ("metadata", h.metadata_offset, meta_end, 50, Expect::Any),
        (
            "index",
            h.tensor_index_offset,
            es.last().map_or(h.data_offset, |e| e.end),
            60,
            Expect::Any,
        ),
        (
            "tensor data",
            h.data_offset,
            needed,
            30,
            footer_expect.clone(),
        ),
    ] {
        for _ in 0..n {
            let bit = rng.range(lo * 8, hi * 8);
            push(
                format!("bit {bit} flipped in {region}"),
                flip(bit),
                expect.clone(),
            );
        }
    }

    // Header fields (CRC recomputed unless the CRC is the point).
    let crc_patch = |at: u64, with: &[u8]| crc(patch(at, with));
    push(
        "tensor_count 2^32-1".into(),
        crc_patch(8, &u32::MAX.to_le_bytes()),
        err_at(&[TRUNCATED]),
    );
    push(
        "tensor_count 2^31".into(),
        crc_patch(8, &(1u32 << 31).to_le_bytes()),
        err_at(&[TRUNCATED]),
    );
    // One entry more than the index holds: the count overruns the index.
    push(
        "tensor_count + 1".into(),
        crc_patch(8, &(h.tensor_count + 1).to_le_bytes()),
        err_at(&[COUNT_OVERRUN]),
    );
    push(
        "tensor_count - 1".into(),
        crc_patch(8, &(h.tensor_count - 1).to_le_bytes()),
        err_at(&[INDEX_TRAILING]),
    );
    push(
        "tensor_count 0".into(),
        crc_patch(8, &0u32.to_le_bytes()),
        err_at(&[INDEX_TRAILING]),
    );
    push(
        "metadata_offset 2^64-1".into(),
        crc_patch(12, &u64b(u64::MAX)),
        err_at(&[HEADER_FIELD]),
    );
    push(
        "metadata_offset 0".into(),
        crc_patch(12, &u64b(0)),
        err_at(&[HEADER_FIELD]),
    );
    push(
        "metadata_offset 2^63".into(),
        crc_patch(12, &u64b(1 << 63)),
        err_at(&[HEADER_FIELD]),
    );
    push(
        "metadata_size 2^32-1".into(),
        crc_patch(20, &u32::MAX.to_le_bytes()),
        err_at(&[HEADER_FIELD]),
    );
    push(
        "metadata_size 0".into(),
        crc_patch(20, &0u32.to_le_bytes()),
        err_at(&[METADATA_JSON]),
    );
    push(
        "metadata_size - 1".into(),
        crc_patch(20, &(h.metadata_size - 1).to_le_bytes()),
        err_at(&[METADATA_JSON]),
    );
    push(
        "tensor_index_offset 2^64-1".into(),
        crc_patch(24, &u64b(u64::MAX)),
        err_at(&[HEADER_FIELD]),
    );
    push(
        "tensor_index_offset 0".into(),
        crc_patch(24, &u64b(0)),
        err_at(&[HEADER_FIELD]),
    );
    push(
        "tensor_index_offset past data".into(),
        crc_patch(24, &u64b(h.data_offset + 64)),
        err_at(&[HEADER_FIELD]),
    );
    push(
        "data_offset 2^64-1".into(),
        crc_patch(32, &u64b(u64::MAX)),
        err_at(&[TRUNCATED, HEADER_FIELD]),
    );
    push(
        "data_offset 2^64-64".into(),
        crc_patch(32, &u64b(!63u64)),
        err_at(&[TRUNCATED]),
    );
    push(
        "data_offset past the end".into(),
        crc_patch(32, &u64b((len + 64) & !63)),
        err_at(&[TRUNCATED]),
    );
    push(
        "data_offset + 1".into(),
        crc_patch(32, &u64b(h.data_offset + 1)),
        err_at(&[HEADER_FIELD]),
    );
    // Every tensor read 64 bytes late: the last one runs past the end unless its padding and
    // the footer hold 64 bytes.
    push(
        "data_offset + 64".into(),
        crc_patch(32, &u64b(h.data_offset + 64)),
        if needed + 64 > len {
            err_at(&[OUT_OF_BOUNDS])
        } else {
            Expect::Any
        },
    );
    push(
        "data_offset = index offset".into(),
        crc_patch(32, &u64b(h.tensor_index_offset)),
        err_at(&[TRUNCATED]),
    );
    push("version 1.0".into(), crc_patch(4, &[1, 0]), err(&[VERSION]));
    push("version 3.0".into(), crc_patch(4, &[3, 0]), err(&[VERSION]));
    push(
        "version 2.7 (minor not enforced)".into(),
        crc_patch(4, &[2, 7]),
        Expect::Ok,
    );
    for (what, f) in [
        ("LZ4", 0x0001u16),
        ("ZSTD", 0x0002),
        ("ENCRYPTED", 0x0004),
        ("all flags", 0xFFFF),
    ] {
        push(
            format!("flags {what}"),
            crc_patch(6, &(h.flags | f).to_le_bytes()),
            err_at(&[UNSUPPORTED_FLAGS]),
        );
    }
    push(
        "flags COLUMN_MAJOR".into(),
        crc_patch(6, &0x0800u16.to_le_bytes()),
        Expect::Ok,
    );
    push(
        "header CRC flipped".into(),
        flip(40 * 8),
        Expect::Finding(HEADER_CRC),
    );
    push(
        "reserved header byte set".into(),
        patch(50, [1]),
        Expect::Finding(HEADER_CRC),
    );
    // The header CRC no longer matches, and the count overruns the index.
    push(
        "tensor_count changed, CRC not".into(),
        patch(8, (h.tensor_count + 1).to_le_bytes()),
        err_at(&[COUNT_OVERRUN]),
    );
    push(
        "magic APR2".into(),
        crc_patch(0, b"APR2"),
        Expect::Finding(APR_LEGACY_MAGIC),
    );
    push(
        "magic APR2, CRC stale".into(),
        patch(0, b"APR2"),
        Expect::Finding(HEADER_CRC),
    );
    push("magic APRN".into(), patch(0, b"APRN"), err(&[APR_V1]));
    push("magic APR1".into(), patch(0, b"APR1"), err(&[VERSION]));
    push(
        "magic APR3".into(),
        patch(0, b"APR3"),
        err(&[UNKNOWN_FORMAT]),
    );

    // Metadata.
    let mo = h.metadata_offset;
    push(
        "metadata `{` → `[`".into(),
        patch(mo, b"["),
        err_at(&[METADATA_JSON]),
    );
    push(
        "metadata `{` → `x`".into(),
        patch(mo, b"x"),
        err_at(&[METADATA_JSON]),
    );
    push(
        "metadata invalid UTF-8".into(),
        patch(mo + 2, [0xFF]),
        err_at(&[METADATA_JSON]),
    );
    push(
        "metadata last `}` → space".into(),
        patch(meta_end - 1, b" "),
        err_at(&[METADATA_JSON]),
    );
    if h.tensor_index_offset > meta_end {
        push(
            "metadata padding not zero".into(),
            patch(meta_end, [7]),
            Expect::Finding(PADDING),
        );
    }

    // Index entries.
    let io = h.tensor_index_offset;
    push(
        "JSON index (`[` first)".into(),
        patch(io, b"["),
        err_at(&[JSON_INDEX]),
    );
    let json = br#"[{"name":"weights","dtype":"json","shape":[4],"offset":0,"size":16}]"#;
    push(
        "JSON index variant".into(),
        patch(io, json),
        err_at(&[JSON_INDEX]),
    );
    let picks: Vec<usize> = (0..es.len())
        .filter(|&i| i < 3 || i + 1 == es.len())
        .collect();
    for &i in &picks {
        let e = &es[i];
        let t = &a.tensors[i];
        push(
            format!("entry {i} name_len 2^16-1"),
            patch(e.start, u16::MAX.to_le_bytes()),
            err_at(&[TRUNCATED, BAD_UTF8, UNKNOWN_DTYPE, TOO_MANY_DIMS]),
        );
        // No name: the dtype is read from the name's first byte and ndim from its second (a
        // letter, far above APR's 8 dims).
        let name1 = t.name.as_bytes().get(1).copied().unwrap_or(0);
        push(
            format!("entry {i} name_len 0"),
            patch(e.start, 0u16.to_le_bytes()),
            if name1 > 8 {
                err_at(&[TOO_MANY_DIMS])
            } else {
                Expect::Refused
            },
        );
        if e.name_len > 0 {
            push(
                format!("entry {i} name byte 0xFF"),
                patch(e.name_at, [0xFF]),
                err_at(&[BAD_UTF8]),
            );
            push(
                format!("entry {i} name byte 0xC0 (overlong)"),
                patch(e.name_at, [0xC0]),
                err_at(&[BAD_UTF8]),
            );
        }
        for code in [31u8, 127, 200, 255] {
            push(
                format!("entry {i} dtype {code}"),
                patch(e.dtype_at, [code]),
                err_at(&[UNKNOWN_DTYPE]),
            );
        }
        // Another code: readable when some type written under it has exactly this size for
        // these dims, else a size finding (the entry's size field no longer fits the label). A
        // code no APR loader reads is refused, or (a GGML id, whose bytes may still be GGML
        // blocks) named by the per-file checks.
        for code in [
            0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 20, 23, 29, 30, 128, 129,
        ] {
            let mut candidates = DType::apr_candidates(code as u32).peekable();
            let expect = if candidates.peek().is_none() {
                if DType::from_ggml_id(code as u32).is_some() {
                    Expect::Either(vec![
                        err_at(&[UNKNOWN_DTYPE]),
                        Expect::Finding(AMBIGUOUS_DTYPE),
                    ])
                } else {
                    err_at(&[UNKNOWN_DTYPE])
                }
            } else if candidates
                .any(|d| apr_lint::quant::tensor_n_bytes(d, &t.dims) == Some(t.n_bytes))
            {
                Expect::Ok
            } else {
                Expect::Finding(SIZE_MISMATCH)
            };
            push(
                format!("entry {i} dtype {code} (relabelled)"),
                patch(e.dtype_at, [code]),
                expect,
            );
        }
        push(
            format!("entry {i} ndim 200"),
            patch(e.ndim_at, [200]),
            err_at(&[TOO_MANY_DIMS]),
        );
        push(
            format!("entry {i} ndim 9"),
            patch(e.ndim_at, [9]),
            err_at(&[TOO_MANY_DIMS]),
        );
        // No dims: offset and size are read from the dims, and the entry ends early, so the
        // rest of the index is read out of step (or left over, after the last entry).
        push(
            format!("entry {i} ndim 0"),
            patch(e.ndim_at, [0]),
            Expect::Refused,
        );
        // 8 dims: offset, size and what follows are read as dims. Before another entry, that
        // entry's name bytes make the product overflow or the parse go out of step; after the
        // last entry, the index's zero padding can parse as dims, offset 0 and size 0, and then
        // the last tensor's data is referenced by nothing and trails the rest.
        push(
            format!("entry {i} ndim 8"),
            patch(e.ndim_at, [8]),
            if i + 1 == es.len() {
                Expect::Either(vec![Expect::Refused, Expect::Finding(TRAILING)])
            } else {
                Expect::Refused
            },
        );
        push(
            format!("entry {i} dims[0] 2^64-1"),
            patch(e.dims_at, u64b(u64::MAX)),
            err_at(&[BAD_DIMS]),
        );
        // No elements, but the entry keeps its bytes.
        push(
            format!("entry {i} dims[0] 0"),
            patch(e.dims_at, u64b(0)),
            Expect::Finding(SIZE_MISMATCH),
        );
        if e.ndim >= 2 {
            let dims2 = |a: u64, b: u64| {
                patches(vec![
                    (e.dims_at, u64b(a).to_vec()),
                    (e.dims_at + 8, u64b(b).to_vec()),
                ])
            };
            push(
                format!("entry {i} dims product overflows 63 bits"),
                dims2(1 << 32, 1 << 32),
                err_at(&[BAD_DIMS]),
            );
            // Dims that multiply fine but describe far more than the bytes: readable (a size
            // finding), and row 0 must not be allocated from the dims.
            push(
                format!("entry {i} dims [2^20, 2^40]"),
                dims2(1 << 20, 1 << 40),
                Expect::Finding(SIZE_MISMATCH),
            );
            push(
                format!("entry {i} dims [1, 2^63-1]"),
                dims2(1, i64::MAX as u64),
                Expect::Finding(SIZE_MISMATCH),
            );
            push(
                format!("entry {i} dims [0, 2^62]"),
                dims2(0, 1 << 62),
                Expect::Finding(SIZE_MISMATCH),
            );
            push(
                format!("entry {i} dims [2^62, 0]"),
                dims2(1 << 62, 0),
                Expect::Finding(SIZE_MISMATCH),
            );
        } else {
            push(
                format!("entry {i} dims[0] 2^60"),
                patch(e.dims_at, u64b(1 << 60)),
                Expect::Finding(SIZE_MISMATCH),
            );
        }
        push(
            format!("entry {i} offset + 1"),
            patch(e.offset_at, u64b(t.offset + 1)),
            err_at(&[OFFSET_MISALIGNED]),
        );
        push(
            format!("entry {i} offset + 32"),
            patch(e.offset_at, u64b(t.offset + 32)),
            err_at(&[OFFSET_MISALIGNED]),
        );
        push(
            format!("entry {i} offset 2^40"),
            patch(e.offset_at, u64b(1 << 40)),
            err_at(&[OUT_OF_BOUNDS]),
        );
        push(
            format!("entry {i} offset 2^64-64"),
            patch(e.offset_at, u64b(!63u64)),
            err_at(&[OUT_OF_BOUNDS]),
        );
        push(
            format!("entry {i} size 2^64-1"),
            patch(e.size_at, u64b(u64::MAX)),
            err_at(&[OUT_OF_BOUNDS]),
        );
        push(
            format!("entry {i} size = file length"),
            patch(e.size_at, u64b(len)),
            err_at(&[OUT_OF_BOUNDS]),
        );
        // 0 bytes for a tensor with elements: only the output matrix has a known reading (the
        // tied-embedding placeholder, APRL-M010); any other tensor has lost its data.
        push(
            format!("entry {i} size 0"),
            patch(e.size_at, u64b(0)),
            zero_bytes(&t.name),
        );
        push(
            format!("entry {i} size - 1"),
            patch(e.size_at, u64b(t.n_bytes - 1)),
            Expect::Finding(SIZE_MISMATCH),
        );
        // One byte more: into the next tensor when this one fills its padding, else a size
        // that does not fit the dims.
        let next = a
            .tensors
            .iter()
            .map(|x| x.offset)
            .filter(|&o| o > t.offset)
            .min();
        push(
            format!("entry {i} size + 1"),
            patch(e.size_at, u64b(t.n_bytes + 1)),
            if next.is_some_and(|n| t.offset + t.n_bytes + 1 > n) {
                err_at(&[OVERLAP])
            } else {
                Expect::Finding(SIZE_MISMATCH)
            },
        );
    }
    if es.len() >= 2 {
        push(
            "entry 1 offset = entry 0 offset".into(),
            patch(es[1].offset_at, u64b(a.tensors[0].offset)),
            err_at(&[OVERLAP, OUT_OF_BOUNDS]),
        );
        let last = es.len() - 1;
        push(
            "last entry offset = previous offset".into(),
            patch(es[last].offset_at, u64b(a.tensors[last - 1].offset)),
            err_at(&[OVERLAP, OUT_OF_BOUNDS]),
        );
        // The first two entries swapped in place (names now out of order, payloads unchanged).
        let (e0, e1) = (&es[0], &es[1]);
        let first = base[e0.start as usize..e0.end as usize].to_vec();
        let second = base[e1.start as usize..e1.end as usize].to_vec();
        let at = e0.start + second.len() as u64;
        push(
            "first two index entries swapped".into(),
            patches(vec![(e0.start, second), (at, first)]),
            Expect::Finding(INDEX_ORDER),
        );
    }

    // Footer and trailing bytes.
    push(
        "trailing 100 bytes".into(),
        append([0xCD; 100]),
        Expect::Finding(TRAILING),
    );
    push(
        "trailing 5 bytes".into(),
        append([1, 2, 3, 4, 5]),
        Expect::Finding(TRAILING),
    );
    if a.footer == apr_fmt::Footer::Valid {
        push(
            "footer flipped".into(),
            flip((len - 1) * 8),
            Expect::Finding(FOOTER_CRC),
        );
        push(
            "footer cut by 2 bytes".into(),
            cut(len - 2),
            Expect::Finding(TRAILING),
        );
    } else {
        push(
            "4 bytes appended (an invalid footer)".into(),
            append([1, 2, 3, 4]),
            Expect::Finding(FOOTER_CRC),
        );
    }

    // Through the writer.
    let mut d = w.clone();
    let first = d.metadata[0].clone();
    d.metadata.push(first);
    push(
        "duplicate metadata key".into(),
        whole(d.to_bytes()),
        Expect::Finding(DUP_KEY),
    );
    let mut d = w.clone();
    d.tensors[1].name = d.tensors[0].name.clone();
    push(
        "duplicate tensor name".into(),
        whole(d.to_bytes()),
        err_at(&[DUP_TENSOR]),
    );
    let mut d = w.clone();
    d.sort_index = false;
    d.tensors.sort_by(|x, y| y.name.cmp(&x.name));
    push(
        "unsorted index (names descending)".into(),
        whole(d.to_bytes()),
        Expect::Finding(INDEX_ORDER),
    );
    let mut d = w.clone();
    d.metadata.clear();
    push(
        "empty metadata object".into(),
        whole(d.to_bytes()),
        Expect::Ok,
    );
    let mut d = w.clone();
    d.tensors.clear();
    push("no tensors".into(), whole(d.to_bytes()), Expect::Ok);
    let mut d = w.clone();
    for (k, v) in d.metadata.iter_mut() {
        if matches!(
            k.as_str(),
            "hidden_size" | "num_heads" | "num_layers" | "vocab_size"
        ) {
            *v = serde_json::json!(u64::MAX);
        }
    }
    push(
        "config counts 2^64-1".into(),
        whole(d.to_bytes()),
        Expect::Ok,
    );
    let mut d = w.clone();
    for (k, v) in d.metadata.iter_mut() {
        if matches!(
            k.as_str(),
            "hidden_size" | "num_heads" | "num_kv_heads" | "head_dim"
        ) {
            *v = serde_json::json!(0);
        }
    }
    push("config counts 0".into(), whole(d.to_bytes()), Expect::Ok);
    let mut d = w.clone();
    for (_, v) in d.metadata.iter_mut() {
        if v.is_number() {
            *v = serde_json::json!("not a number");
        } else if v.is_array() {
            *v = serde_json::json!({"nested": [1, [2, [3]]]});
        }
    }
    push(
        "every number a string, every array an object".into(),
        whole(d.to_bytes()),
        Expect::Ok,
    );
    let mut d = w.clone();
    d.meta("hidden_dim", serde_json::json!(8));
    d.meta("tokenizer.vocabulary", serde_json::json!([1, 2, 3]));
    push(
        "alias collision and a non-string vocabulary".into(),
        whole(d.to_bytes()),
        Expect::Ok,
    );
    let mut d = w.clone();
    d.tensors[0].bytes.clear();
    let expect = zero_bytes(&d.tensors[0].name);
    push(
        format!("tensor 0 (`{}`) with 0 bytes", d.tensors[0].name),
        whole(d.to_bytes()),
        expect,
    );
}

/// Small hand-made APR files whose sizes are not multiples of 64 (odd payloads, no padding
/// after the last one): the footer/trailing-bytes arithmetic must hold at every length.
fn odd_apr_cases(out: &mut Vec<Case>) {
    for flavour in [Flavour::Aprender, Flavour::Realizar] {
        let mut w = AprWriter::new(flavour);
        w.meta("architecture", serde_json::json!("qwen2"));
        let f32s = |n: usize| {
            (0..n)
                .flat_map(|i| (i as f32).to_le_bytes())
                .collect::<Vec<u8>>()
        };
        w.tensor(AprTensor::new("a", vec![3], DType::F32, f32s(3)));
        w.tensor(AprTensor::new("b", vec![5], DType::F32, f32s(5)));
        let full = w.to_bytes();
        let a = read_apr(&full);
        let needed = a
            .tensors
            .iter()
            .map(|t| t.data_span(a.header.data_offset).end())
            .max()
            .unwrap_or(0);
        let label = format!("odd-size APR ({flavour:?})");
        // Every length from the header to past the end, and the last tensor's padding dropped.
        let full = Arc::new(full);
        for c in 60..full.len() as u64 {
            out.push(Case {
                name: format!("{label}: truncated at {c}"),
                ext: "apr",
                base: full.clone(),
                make: cut(c),
                expect: Expect::Cut { needed },
            });
        }
        // The last tensor's data, then `extra` bytes of 0xEE: nothing (a file may end at its
        // last byte of data), 4 bytes (a footer, whose CRC is wrong), or bytes that are neither
        // zero padding nor a footer.
        for extra in 0..8u8 {
            let make: Make =
                Box::new(move |b| [&b[..needed as usize], &[0xEE; 8][..extra as usize]].concat());
            out.push(Case {
                name: format!("{label}: unpadded + {extra} bytes"),
                ext: "apr",
                base: full.clone(),
                make,
                expect: match extra {
                    0 => Expect::Ok,
                    4 => Expect::Finding(FOOTER_CRC),
                    // Inside the last tensor's padding, which must be zero.
                    _ => Expect::Finding(PADDING),
                },
            });
        }
    }
}

fn generic_cases(out: &mut Vec<Case>) {
    let none = Arc::new(Vec::new());
    let mut push = |name: &str, ext: &'static str, bytes: Vec<u8>, expect: Expect| {
        out.push(Case {
            name: name.into(),
            ext,
            base: none.clone(),
            make: whole(bytes),
            expect,
        });
    };
    let lfs = b"version https://git-lfs.github.com/spec/v1\noid sha256:09363326c4978060a277ddad0daa081039d8133c626075743f6c3594c1aacb04\nsize 1147744\n".to_vec();
    for ext in ["gguf", "apr"] {
        push("empty file", ext, Vec::new(), err(&[EMPTY]));
        push("Git LFS pointer", ext, lfs.clone(), err(&[LFS]));
        push(
            "Git LFS pointer, first line only",
            ext,
            b"version https://git-lfs.github.com/spec/v1".to_vec(),
            err(&[LFS]),
        );
        push("one byte", ext, b"G".to_vec(), err(&[UNKNOWN_FORMAT]));
        push(
            "SafeTensors header",
            ext,
            // Read as SafeTensors since issue 12: its 16-byte header cuts the JSON short.
            b"\x10\x00\x00\x00\x00\x00\x00\x00{\"__metadata__\":{}}".to_vec(),
            err(&["APRL-F051"]),
        );
        push(
            "zip",
            ext,
            b"PK\x03\x04\x14\x00\x00\x00".to_vec(),
            err(&[UNKNOWN_FORMAT]),
        );
        push(
            "text",
            ext,
            b"hello world\n".to_vec(),
            err(&[UNKNOWN_FORMAT]),
        );
        push("zeros", ext, vec![0; 4096], err(&[UNKNOWN_FORMAT]));
    }
    push(
        "magic only GGUF",
        "gguf",
        b"GGUF".to_vec(),
        err_at(&[TRUNCATED]),
    );
    push(
        "GGUF v3 header, counts missing",
        "gguf",
        b"GGUF\x03\x00\x00\x00".to_vec(),
        err_at(&[TRUNCATED]),
    );
    let mut minimal = b"GGUF\x03\x00\x00\x00".to_vec();
    minimal.extend_from_slice(&0u64.to_le_bytes());
    minimal.extend_from_slice(&0u64.to_le_bytes());
    push(
        "GGUF with nothing in it",
        "gguf",
        minimal.clone(),
        Expect::Ok,
    );
    push(
        "GGUF v1 minimal",
        "gguf",
        patch(4, 1u32.to_le_bytes())(&minimal),
        err(&[VERSION]),
    );
    push(
        "GGUF big-endian minimal",
        "gguf",
        patch(4, 3u32.to_be_bytes())(&minimal),
        err(&[BIG_ENDIAN]),
    );
    let mut huge = b"GGUF\x03\x00\x00\x00".to_vec();
    huge.extend_from_slice(&u64::MAX.to_le_bytes());
    huge.extend_from_slice(&u64::MAX.to_le_bytes());
    push(
        "GGUF both counts 2^64-1, nothing else",
        "gguf",
        huge,
        err_at(&[TRUNCATED]),
    );
    // Many small records: duplicate detection must not be quadratic in the record count.
    const MANY: usize = 200_000;
    let mut many = b"GGUF\x03\x00\x00\x00".to_vec();
    many.extend_from_slice(&0u64.to_le_bytes());
    many.extend_from_slice(&(MANY as u64).to_le_bytes());
    for i in 0..MANY {
        let key = format!("k{i}");
        many.extend_from_slice(&(key.len() as u64).to_le_bytes());
        many.extend_from_slice(key.as_bytes());
        many.extend_from_slice(&0u32.to_le_bytes());
        many.push(1);
    }
    push("GGUF with 200k distinct keys", "gguf", many, Expect::Ok);
    let mut w = AprWriter::new(Flavour::Realizar);
    for i in 0..MANY {
        w.meta(format!("k{i}"), serde_json::json!(0));
    }
    push(
        "APR with 200k distinct metadata keys",
        "apr",
        w.to_bytes(),
        Expect::Ok,
    );
    let mut w = GgufWriter::new();
    let mut a = AprWriter::new(Flavour::Realizar);
    for i in 0..MANY / 2 {
        w.tensor(apr_lint::format::writer::gguf::GgufTensor::new(
            format!("t{i}"),
            vec![0],
            DType::F32,
            Vec::new(),
        ));
        a.tensor(AprTensor::new(
            format!("t{i:06}"),
            vec![0],
            DType::F32,
            Vec::new(),
        ));
    }
    push(
        "GGUF with 100k empty tensors",
        "gguf",
        w.to_bytes(),
        Expect::Ok,
    );
    push(
        "APR with 100k empty tensors",
        "apr",
        a.to_bytes(),
        Expect::Ok,
    );
    push(
        "magic only APR",
        "apr",
        b"APR\0".to_vec(),
        err_at(&[TRUNCATED]),
    );
    push(
        "APRN blob",
        "apr",
        b"APRN\x01\x00\x00\x00\x81\xa1a\x01".to_vec(),
        err(&[APR_V1]),
    );
    push(
        "APR1 blob",
        "apr",
        b"APR1[{\"name\":\"w\"}]".to_vec(),
        err(&[VERSION]),
    );
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"APR\0");
    h[4] = 2;
    push(
        "APR header of zeros",
        "apr",
        fix_crc(h.clone()),
        err_at(&[HEADER_FIELD]),
    );
    // A header claiming everything at 64: metadata of 0 bytes is not a JSON object.
    h[12..20].copy_from_slice(&64u64.to_le_bytes());
    h[24..32].copy_from_slice(&64u64.to_le_bytes());
    h[32..40].copy_from_slice(&64u64.to_le_bytes());
    push(
        "APR header only, sections empty",
        "apr",
        fix_crc(h.clone()),
        err_at(&[METADATA_JSON]),
    );
    // `{}` as metadata, no tensors.
    let mut v = h.clone();
    v[20..24].copy_from_slice(&2u32.to_le_bytes());
    v[24..32].copy_from_slice(&128u64.to_le_bytes());
    v[32..40].copy_from_slice(&128u64.to_le_bytes());
    v.extend_from_slice(b"{}");
    v.resize(128, 0);
    push(
        "APR with `{}` and no tensors",
        "apr",
        fix_crc(v.clone()),
        Expect::Ok,
    );
    let mut w = v.clone();
    w[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    push(
        "APR empty index, tensor_count 2^32-1",
        "apr",
        fix_crc(w),
        err_at(&[TRUNCATED]),
    );
    let mut w = v.clone();
    w[64..66].copy_from_slice(b"[]");
    push(
        "APR metadata `[]`",
        "apr",
        fix_crc(w),
        err_at(&[METADATA_JSON]),
    );
}

fn corpus() -> Vec<Case> {
    let mut rng = Rng(0x00A9_121E_C0DE);
    let mut cases = Vec::new();
    generic_cases(&mut cases);
    odd_apr_cases(&mut cases);
    for name in GGUF_FIXTURES {
        let bytes = fixture(name);
        gguf_cases(name, &bytes, &mut rng, &mut cases);
        let g = read_gguf(&bytes);
        for flavour in [Flavour::Aprender, Flavour::Realizar] {
            let w = gguf_to_apr(&g, flavour);
            apr_cases(
                &format!("{name} → APR ({flavour:?})"),
                &w,
                &mut rng,
                &mut cases,
            );
        }
    }
    cases
}

// ---------------------------------------------------------------------------------------------
// Running a case.

/// What reading a file gave.
#[derive(Debug)]
enum Seen {
    Err {
        code: &'static str,
        offset: Option<u64>,
    },
    Ok {
        /// The reader's findings, then those of the per-file checks.
        findings: Vec<&'static str>,
    },
}

/// Read, view, dequantize row 0 of each tensor, run the per-file checks. Returns what was seen, or
/// a description of an inconsistency (the two entry points disagreeing, a span outside the file,
/// an unregistered code or a finding without help).
fn exercise(bytes: Vec<u8>, ext: &str) -> Result<Seen, String> {
    let len = bytes.len() as u64;
    let src = Source::from_vec(bytes, format!("case.{ext}"));
    let read = read_source(src.clone());
    let view = ModelView::from_source(src.clone());
    match (read, view) {
        (Err(a), Err(b)) => {
            // The fatal error's report decodes the record it stopped in, leniently: no panic.
            if let Some(s) = a.span {
                let _ = apr_lint::format::partial::region_in(src.bytes(), s, "here");
            }
            if a.code() != b.code() || a.byte_offset() != b.byte_offset() {
                return Err(format!(
                    "read_source gave {} but ModelView gave {}",
                    a.code(),
                    b.code()
                ));
            }
            if let Some(o) = a.byte_offset()
                && o > len
            {
                return Err(format!(
                    "{} at offset {o}, past the end of the {len}-byte file",
                    a.code()
                ));
            }
            Ok(Seen::Err {
                code: a.code(),
                offset: a.byte_offset(),
            })
        }
        (Ok(_), Ok(v)) => {
            for t in &v.tensors {
                let _ = v.dequantize_rows(t, 0..1);
            }
            let mut checks = Vec::new();
            check_file(&v, &Resolved::new(&v, rules()), &mut checks);
            for f in v.findings.iter().chain(&checks) {
                if let Some(s) = f.span
                    && s.offset.checked_add(s.len).is_none_or(|e| e > len)
                {
                    return Err(format!(
                        "finding {} spans [{}, +{}), outside the {len}-byte file",
                        f.code, s.offset, s.len
                    ));
                }
                if apr_lint::registry::find(f.code).is_none() {
                    return Err(format!("finding {} is not a registered code", f.code));
                }
                if f.help.is_empty() {
                    return Err(format!("finding {} has no help: {}", f.code, f.message));
                }
            }
            Ok(Seen::Ok {
                findings: v.findings.iter().chain(&checks).map(|f| f.code).collect(),
            })
        }
        (Ok(_), Err(e)) => Err(format!(
            "read_source read it but ModelView gave {}",
            e.code()
        )),
        (Err(e), Ok(_)) => Err(format!(
            "ModelView read it but read_source gave {}",
            e.code()
        )),
    }
}

fn judge(case: &Case, len: u64, seen: &Seen) -> Result<(), String> {
    if let Seen::Err { code, .. } = seen
        && !code.starts_with("APRL-F")
    {
        return Err(format!("error code {code} is not a container code"));
    }
    judge_expect(&case.expect, len, seen)
}

fn judge_expect(expect: &Expect, len: u64, seen: &Seen) -> Result<(), String> {
    let want_err = |codes: &[&str], offset: bool| -> Result<(), String> {
        match seen {
            Seen::Err { code, offset: o } => {
                if !codes.contains(code) {
                    return Err(format!("expected one of {codes:?}, got {code}"));
                }
                if offset && o.is_none_or(|o| o > len) {
                    return Err(format!("{code}: expected a byte offset ≤ {len}, got {o:?}"));
                }
                Ok(())
            }
            Seen::Ok { findings } => Err(format!(
                "expected an error {codes:?}, the file read (findings {findings:?})"
            )),
        }
    };
    match expect {
        Expect::Any => Ok(()),
        Expect::Refused => match seen {
            Seen::Err { code, offset } if offset.is_some_and(|o| o <= len) => {
                let _ = code;
                Ok(())
            }
            Seen::Err { code, offset } => Err(format!(
                "{code}: expected a byte offset ≤ {len}, got {offset:?}"
            )),
            Seen::Ok { findings } => Err(format!(
                "expected the file to be refused, it read (findings {findings:?})"
            )),
        },
        Expect::Either(alts) => {
            let errs: Vec<String> = alts
                .iter()
                .filter_map(|e| judge_expect(e, len, seen).err())
                .collect();
            if errs.len() < alts.len() {
                Ok(())
            } else {
                Err(errs.join("; or "))
            }
        }
        Expect::Pending(e, _) => judge_expect(e, len, seen),
        Expect::Ok => match seen {
            Seen::Ok { .. } => Ok(()),
            Seen::Err { code, .. } => Err(format!("expected the file to read, got {code}")),
        },
        Expect::Finding(want) => match seen {
            Seen::Ok { findings } if findings.contains(want) => Ok(()),
            other => Err(format!("expected a finding {want}, got {other:?}")),
        },
        Expect::Err { codes, offset } => want_err(codes, *offset),
        Expect::Cut { needed } => {
            if len == 0 {
                want_err(&[EMPTY], false)
            } else if len < 4 {
                // Too short to carry a magic: sniffing, not the reader, answers.
                want_err(&[UNKNOWN_FORMAT], false)
            } else if len < *needed {
                want_err(&[TRUNCATED, OUT_OF_BOUNDS], true)
            } else {
                match seen {
                    Seen::Ok { .. } => Ok(()),
                    Seen::Err { code, .. } => Err(format!(
                        "cut after all tensor data ({needed}), expected the file to read, got {code}"
                    )),
                }
            }
        }
    }
}

/// What a case that did not fail gave: its time, the error code it ended with (None: readable),
/// and for a `Pending` case whose expectation is not met yet, what it gave instead.
type Ran = (Duration, Option<&'static str>, Option<String>);

/// Runs one case under `catch_unwind`; Err describes the failure.
fn run(case: &Case) -> Result<Ran, String> {
    let t0 = common::CpuClock::start();
    let bytes = (case.make)(&case.base);
    let len = bytes.len() as u64;
    let ext = case.ext;
    let seen = catch_unwind(AssertUnwindSafe(|| exercise(bytes, ext))).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!("PANIC: {msg}")
    })??;
    let pending = match (judge(case, len, &seen), &case.expect) {
        (Ok(()), _) => None,
        (Err(e), Expect::Pending(_, why)) => Some(format!("{e} [pending: {why}]")),
        (Err(e), _) => return Err(e),
    };
    let took = t0.elapsed();
    if took > CASE_BUDGET {
        return Err(format!("took {took:?}"));
    }
    Ok((
        took,
        if let Seen::Err { code, .. } = seen {
            Some(code)
        } else {
            None
        },
        pending,
    ))
}

#[test]
fn corrupt_corpus() {
    let t0 = Instant::now();
    let cases = corpus();
    let n_gguf = cases.iter().filter(|c| c.ext == "gguf").count();
    let n_apr = cases.len() - n_gguf;
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let mut failures: Vec<String> = Vec::new();
    let mut outcomes: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    let mut slowest = (Duration::ZERO, String::new());
    let mut cpu = Duration::ZERO;
    let mut pending: Vec<String> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let cases = &cases;
                s.spawn(move || {
                    cases
                        .iter()
                        .skip(k)
                        .step_by(threads)
                        .map(|c| (c, run(c)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (case, r) in h.join().expect("runner threads catch every panic") {
                match r {
                    Ok((d, code, p)) => {
                        if let Some(p) = p {
                            pending.push(format!("{}: {p}", case.name));
                        }
                        cpu += d;
                        *outcomes.entry(code.unwrap_or("readable")).or_default() += 1;
                        if d > slowest.0 {
                            slowest = (d, case.name.clone());
                        }
                    }
                    Err(e) => failures.push(format!("{}: {e}", case.name)),
                }
            }
        }
    });
    let took = t0.elapsed();
    eprintln!(
        "corrupt corpus: {} cases ({n_gguf} GGUF, {n_apr} APR) in {took:?} ({cpu:?} of CPU)",
        cases.len()
    );
    eprintln!("outcomes: {outcomes:?}");
    eprintln!("slowest case: {} ({:?})", slowest.1, slowest.0);
    pending.sort();
    eprintln!(
        "{} cases wait for a fix elsewhere:\n{}",
        pending.len(),
        pending.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 500, "only {} cases", cases.len());
    assert!(
        n_gguf >= 200 && n_apr >= 200,
        "{n_gguf} GGUF and {n_apr} APR cases"
    );
    assert!(cpu < CORPUS_BUDGET, "the corpus took {cpu:?} of CPU");
}

// ---------------------------------------------------------------------------------------------
// The input is never modified, and reading is deterministic.

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn opening_and_dequantizing_never_modifies_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let g = read_gguf(&fixture(GGUF_FIXTURES[0]));
    let files = [
        ("model.gguf", fixture(GGUF_FIXTURES[0])),
        ("model.apr", gguf_to_apr(&g, Flavour::Aprender).to_bytes()),
        (
            "realizar.apr",
            gguf_to_apr(&g, Flavour::Realizar).to_bytes(),
        ),
    ];
    for (name, bytes) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).expect("write temp copy");
        let before = (
            fnv(&std::fs::read(&path).expect("read")),
            std::fs::metadata(&path).expect("stat").modified().ok(),
        );
        {
            let v = ModelView::open(&path).expect("the copy reads");
            for t in &v.tensors {
                let (rows, _) = t.rows_cols();
                let _ = v.dequantize_rows(t, 0..rows.min(4));
                let _ = v.dequantize(t);
            }
            let r = Resolved::new(&v, rules());
            check_file(&v, &r, &mut Vec::new());
        }
        let after = (
            fnv(&std::fs::read(&path).expect("read")),
            std::fs::metadata(&path).expect("stat").modified().ok(),
        );
        assert_eq!(before, after, "{name} changed");
        assert_eq!(
            before.0,
            fnv(&bytes),
            "{name} differs from what was written"
        );
    }
}

#[test]
fn reading_twice_gives_identical_findings() {
    let bytes = fixture(GGUF_FIXTURES[0]);
    let g = read_gguf(&bytes);
    // A file with several findings: unsorted index, duplicate key, trailing bytes, stale CRC.
    let mut w = gguf_to_apr(&g, Flavour::Aprender);
    w.sort_index = false;
    w.tensors.sort_by(|x, y| y.name.cmp(&x.name));
    let k = w.metadata[0].clone();
    w.metadata.push(k);
    let mut damaged = w.to_bytes();
    damaged[50] = 1;
    damaged.extend_from_slice(&[9; 70]);
    for (name, b) in [("fixture.gguf", bytes), ("damaged.apr", damaged)] {
        let once = || {
            let v = ModelView::from_source(Source::from_vec(b.clone(), name)).expect("readable");
            let r = Resolved::new(&v, rules());
            let mut out = v.findings.clone();
            check_file(&v, &r, &mut out);
            format!("{:?} {:?} {:?}", out, v.config, v.tensors)
        };
        assert_eq!(once(), once(), "{name}");
    }
    let v = ModelView::from_source(Source::from_vec(
        {
            let mut w = gguf_to_apr(&g, Flavour::Aprender);
            w.sort_index = false;
            w.tensors.sort_by(|x, y| y.name.cmp(&x.name));
            w.to_bytes()
        },
        "x.apr",
    ))
    .expect("readable");
    assert!(v.findings.iter().any(|f| f.code == INDEX_ORDER));
}

// ---------------------------------------------------------------------------------------------
// Regressions.

/// `apr.rs` computed trailing bytes as `file_len - padded_end`: a file ending inside the last
/// tensor's zero padding (here 2 bytes past the data, not a 4-byte footer) panicked on the
/// subtraction. Found by this corpus (odd-size APR truncations).
#[test]
fn apr_ending_inside_the_last_padding_reads() {
    let mut w = AprWriter::new(Flavour::Realizar);
    w.tensor(AprTensor::new("a", vec![3], DType::F32, vec![0; 12]));
    let full = w.to_bytes();
    let a = read_apr(&full);
    let data_end = a.tensors[0].data_span(a.header.data_offset).end() as usize;
    for extra in [1, 2, 3, 5, 6] {
        let bytes = full[..data_end + extra].to_vec();
        let r = apr_fmt::read(Source::from_vec(bytes, "x.apr"));
        assert!(r.is_ok(), "{extra} bytes of padding: {:?}", r.err());
    }
}

/// `ModelView::dequantize_rows` allocated `cols` values from the dims before checking the bytes:
/// an APR entry whose dims say [2^20, 2^40] (a size finding, not a read error) asked for 4 TiB
/// and aborted the process. Found by this corpus (hostile APR dims).
#[test]
fn apr_dims_far_beyond_the_bytes_do_not_allocate_from_the_dims() {
    let mut w = AprWriter::new(Flavour::Aprender);
    w.tensor(AprTensor::new("w", vec![2, 32], DType::F32, vec![0; 256]));
    let mut bytes = w.to_bytes();
    let a = read_apr(&bytes);
    let at = a.tensors[0].dims_span.offset as usize;
    bytes[at..at + 8].copy_from_slice(&(1u64 << 20).to_le_bytes());
    bytes[at + 8..at + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let v = ModelView::from_source(Source::from_vec(bytes, "x.apr"))
        .expect("a size finding, not an error");
    assert!(v.findings.iter().any(|f| f.code == SIZE_MISMATCH));
    let r = v.dequantize_rows(&v.tensors[0], 0..1);
    assert!(
        matches!(r, Err(apr_lint::quant::DequantError::SizeMismatch { .. })),
        "{r:?}"
    );
}

/// Duplicate metadata keys were found by scanning every earlier key (GGUF `gguf.rs`, APR
/// `apr.rs`): quadratic in a count the file chooses, 200k tiny keys took ~100 s each.
#[test]
fn many_metadata_keys_read_in_linear_time() {
    let n = 100_000;
    let mut g = GgufWriter::new();
    let mut a = AprWriter::new(Flavour::Realizar);
    for i in 0..n {
        g.meta(format!("k{i}"), MetaValue::U8(1));
        a.meta(format!("k{i}"), serde_json::json!(1));
    }
    g.meta("k7", MetaValue::U8(2));
    a.meta("k7", serde_json::json!(2));
    let t0 = common::CpuClock::start();
    let e = read_source(Source::from_vec(g.to_bytes(), "x.gguf")).expect_err("k7 twice");
    assert_eq!(e.code(), DUP_KEY);
    let f = read_apr(&a.to_bytes());
    assert_eq!(f.findings.iter().filter(|x| x.code == DUP_KEY).count(), 1);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
}

/// Found by this corpus: `check::metadata` used to enumerate every layer the config claims, so a
/// `block_count` of 2^32-1 allocated 32 GiB and aborted. A layer count above the tensor count is
/// now one finding.
#[test]
fn hostile_block_count_in_checks() {
    let mut w = GgufWriter::from_file(&read_gguf(&fixture(GGUF_FIXTURES[0])));
    for (k, v) in w.metadata.iter_mut() {
        if k.ends_with(".block_count") {
            *v = MetaValue::U32(u32::MAX);
        }
    }
    let v = ModelView::from_source(Source::from_vec(w.to_bytes(), "x.gguf")).expect("readable");
    let r = Resolved::new(&v, rules());
    let mut out = Vec::new();
    check_file(&v, &r, &mut out);
    assert!(out.iter().any(|f| f.code == "APRL-M003"), "{out:?}");
}

/// Found by this corpus: the rule-formula parser recursed once per `(`, so 100 000 nested
/// parentheses overflowed the stack. Formulas are now bounded in length and depth.
#[test]
fn deeply_nested_rule_formula() {
    let n = 100_000;
    let formula = format!("{}hidden{}", "(".repeat(n), ")".repeat(n));
    let text = format!(
        "arch = \"qwen2\"\nnames = [\"qwen2\"]\nrope_type = \"neox\"\ngguf_qk_order = \"neox\"\n\
         [roles.w]\ngguf = [\"w\"]\nhf = [\"w\"]\ndims = [\"{formula}\"]\n"
    );
    let e = RuleSet::from_texts(&[(PathBuf::from("x.toml"), text)]).unwrap_err();
    assert_eq!(e[0].lint.code, "APRL-R002");
}
