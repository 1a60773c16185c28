//! A tokenizer summary from each format's own keys: GGUF `tokenizer.ggml.*`, APR `tokenizer.*`.
//! Token and merge lists are decoded on demand (150k strings are not needed by `inspect`).

use crate::format::Container;
use crate::format::gguf::Value;

/// What a file says about its tokenizer (absent: no such key).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Tokenizer {
    /// `gpt2` (byte-level BPE), `llama` (SentencePiece), …
    pub model: Option<String>,
    /// GGUF `tokenizer.ggml.pre` / APR `tokenizer.pre_type`.
    pub pre: Option<String>,
    /// Number of token strings.
    pub n_tokens: Option<u64>,
    /// Number of BPE merges.
    pub n_merges: Option<u64>,
    /// Beginning-of-sequence token id.
    pub bos: Option<u64>,
    /// End-of-sequence token id.
    pub eos: Option<u64>,
    /// Whether the BOS token is prepended to a prompt.
    pub add_bos: Option<bool>,
}

impl Tokenizer {
    /// Read the summary from a container's own keys.
    pub fn read(c: &Container) -> Tokenizer {
        match c {
            Container::Gguf(g) => {
                let s = |k: &str| g.get(k).and_then(|kv| kv.value.as_str()).map(str::to_owned);
                let n = |k: &str| {
                    g.get(k)
                        .and_then(|kv| kv.value.as_int())
                        .filter(|&v| v >= 0)
                        .map(|v| v as u64)
                };
                let len = |k: &str| match g.get(k).map(|kv| &kv.value) {
                    Some(Value::Array(a)) => Some(a.len),
                    _ => None,
                };
                Tokenizer {
                    model: s("tokenizer.ggml.model"),
                    pre: s("tokenizer.ggml.pre"),
                    n_tokens: len("tokenizer.ggml.tokens"),
                    n_merges: len("tokenizer.ggml.merges"),
                    bos: n("tokenizer.ggml.bos_token_id"),
                    eos: n("tokenizer.ggml.eos_token_id"),
                    add_bos: g
                        .get("tokenizer.ggml.add_bos_token")
                        .and_then(|kv| kv.value.as_bool()),
                }
            }
            Container::Apr(a) => {
                let v = |k: &str| a.get_value(k);
                let arr_len = |k: &str| a.get(k).and_then(|e| count_array(e.raw.get()));
                Tokenizer {
                    model: v("tokenizer.model")
                        .or_else(|| v("tokenizer.model_type"))
                        .and_then(|x| x.as_str().map(str::to_owned)),
                    pre: v("tokenizer.pre_type").and_then(|x| x.as_str().map(str::to_owned)),
                    n_tokens: arr_len("tokenizer.vocabulary")
                        .or_else(|| v("tokenizer.vocab_size").and_then(|x| x.as_u64())),
                    n_merges: arr_len("tokenizer.merges"),
                    bos: v("tokenizer.bos_token_id").and_then(|x| x.as_u64()),
                    eos: v("tokenizer.eos_token_id").and_then(|x| x.as_u64()),
                    add_bos: v("tokenizer.add_bos_token").and_then(|x| x.as_bool()),
                }
            }
            // A checkpoint's tokenizer is its `tokenizer.json`, read by the view
            // (`Tokenizer::from_hf`), not a record of the container.
            Container::Hf(_) => Tokenizer::default(),
        }
    }

    /// The summary of a Hugging Face `tokenizer.json` (read by `model::hf_tokenizer`).
    pub fn from_hf(t: &crate::model::hf_tokenizer::HfTokenizer) -> Tokenizer {
        Tokenizer {
            model: Some(t.model.clone()),
            pre: t.pre.clone(),
            n_tokens: Some(t.tokens.len() as u64),
            n_merges: Some(t.merges.len() as u64),
            bos: t.bos.map(u64::from),
            eos: t.eos.map(u64::from),
            add_bos: t.add_bos,
        }
    }

    /// The token strings, index = id (empty when the file has none).
    pub fn tokens(c: &Container) -> Vec<String> {
        Self::strings(c, "tokenizer.ggml.tokens", "tokenizer.vocabulary")
    }

    /// The merges, `"a b"` each.
    pub fn merges(c: &Container) -> Vec<String> {
        Self::strings(c, "tokenizer.ggml.merges", "tokenizer.merges")
    }

    fn strings(c: &Container, gguf_key: &str, apr_key: &str) -> Vec<String> {
        let mut out = Vec::new();
        visit_strings(c, gguf_key, apr_key, &mut |s| out.push(s.to_owned()));
        out
    }

    /// Call `f` on every token string, in id order, without allocating per string.
    pub fn visit_tokens(c: &Container, f: &mut dyn FnMut(&str)) {
        visit_strings(c, "tokenizer.ggml.tokens", "tokenizer.vocabulary", f)
    }

    /// Call `f` on every merge (`"a b"`), in rank order, without allocating per string.
    pub fn visit_merges(c: &Container, f: &mut dyn FnMut(&str)) {
        visit_strings(c, "tokenizer.ggml.merges", "tokenizer.merges", f)
    }
}

fn visit_strings(c: &Container, gguf_key: &str, apr_key: &str, f: &mut dyn FnMut(&str)) {
    match c {
        Container::Gguf(_) => gguf_strings(c, gguf_key, f),
        Container::Apr(a) => {
            if let Some(e) = a.get(apr_key) {
                json_strings(e.raw.get(), f);
            }
        }
        // In `tokenizer.json`, which the view reads (`ModelView::token_strings`).
        Container::Hf(_) => {}
    }
}

/// Calls its argument on every string of a list, in order.
type VisitList<'a> = &'a dyn Fn(&mut dyn FnMut(&str));

/// Also called on every string a scan reads: `(true, merge)` or `(false, token)`.
pub(crate) type Tee<'a> = &'a mut dyn FnMut(bool, &str);

/// Calls `f` on every string of the GGUF string array under `key`, in order, straight from the
/// mapped bytes (no `Vec` of 150k slices, no cursor per element): what `GgufFile::array_strings`
/// gives, one string at a time — a string that is not UTF-8 as `""`, and nothing past a truncated
/// element (the reader already refused such a file).
fn gguf_strings<'c>(c: &'c Container, key: &str, f: &mut dyn FnMut(&'c str)) {
    let Container::Gguf(g) = c else { return };
    let Some(Value::Array(a)) = g.get(key).map(|kv| &kv.value) else {
        return;
    };
    if a.elem != crate::format::gguf::ValueType::String {
        return;
    }
    let Some(bytes) = g.source.slice(a.span.offset, a.span.len) else {
        return;
    };
    let mut utf8 = crate::format::gguf::Utf8Runs::new(bytes);
    let mut p = 0usize;
    for _ in 0..a.len {
        let Some(n) = bytes.get(p..p.saturating_add(8)) else {
            return;
        };
        let mut x = [0u8; 8];
        x.copy_from_slice(n);
        p += 8;
        let n = u64::from_le_bytes(x);
        if n > (bytes.len() - p) as u64 {
            return;
        }
        let start = p;
        p += n as usize;
        f(utf8.get(start, p).unwrap_or(""));
    }
}

/// Calls `f` on every leading string element of the JSON array `json`, in order, and returns how
/// many there were and whether they were the whole array. A string without escapes is borrowed
/// from `json` as it is; one with escapes is decoded by serde_json. Stops at the first element
/// that is not a string (or a string serde_json refuses), as a serde visitor of `Cow<str>`
/// elements does. One pass over the bytes: a 150k-entry vocabulary is read in about a millisecond,
/// several times faster than through serde's visitor.
///
/// `json` is a value serde_json already accepted when the metadata was read (a `RawValue`); on any
/// other text this still never panics, it just stops.
pub(crate) fn json_strings(json: &str, f: &mut dyn FnMut(&str)) -> (u64, bool) {
    let b = json.as_bytes();
    let len = b.len();
    let ws = |mut i: usize| {
        while i < len && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        i
    };
    let mut i = ws(0);
    if i >= len || b[i] != b'[' {
        return (0, false);
    }
    i = ws(i + 1);
    let mut n = 0u64;
    if i < len && b[i] == b']' {
        return (0, ws(i + 1) == len);
    }
    loop {
        if i >= len || b[i] != b'"' {
            return (n, false);
        }
        let start = i + 1;
        let mut j = start;
        let mut escaped = false;
        // The closing quote: the next `"` not escaped.
        loop {
            j = quote_or_backslash(b, j);
            if j >= len {
                return (n, false);
            }
            if b[j] == b'"' {
                break;
            }
            escaped = true;
            j += 2;
        }
        // `start` follows and `j` is an ASCII quote: both are char boundaries.
        if escaped {
            match serde_json::from_str::<String>(&json[i..=j]) {
                Ok(s) => f(&s),
                Err(_) => return (n, false),
            }
        } else {
            f(&json[start..j]);
        }
        n += 1;
        i = ws(j + 1);
        if i >= len {
            return (n, false);
        }
        match b[i] {
            b',' => i = ws(i + 1),
            b']' => return (n, ws(i + 1) == len),
            _ => return (n, false),
        }
    }
}

/// The index of the first `"` or `\\` in `b` at or after `j` (`b.len()` if none): eight bytes at a
/// time, as a token string is a few bytes long and a per-byte loop made this scan the largest
/// part of reading an APR vocabulary.
fn quote_or_backslash(b: &[u8], mut j: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // A byte of `x` is zero → its high bit is set in `zero(x)`; a bit above the lowest zero byte
    // may be set too (a borrow), never one below: the lowest set bit is exact.
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    while let Some(w) = b.get(j..j + 8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        let x = u64::from_le_bytes(a);
        let m = zero(x ^ (LO * b'"' as u64)) | zero(x ^ (LO * b'\\' as u64));
        if m != 0 {
            return j + (m.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    while j < b.len() && b[j] != b'"' && b[j] != b'\\' {
        j += 1;
    }
    j.min(b.len())
}

/// The length of a JSON array, without building its elements (a 150k-token vocabulary is counted
/// in a few ms instead of parsed into values). None when `json` is not an array.
pub(crate) fn count_array(json: &str) -> Option<u64> {
    // An array of strings (every tokenizer list) is counted by the byte scanner.
    if let (n, true) = json_strings(json, &mut |_| {}) {
        return Some(n);
    }
    // An array of numbers, booleans or nulls (a token-type or score list): with no string and no
    // nested value in it, every comma of a valid array separates two elements (the text is a value
    // serde_json accepted; on other text this still never panics).
    let inner = json.trim();
    if let Some(inner) = inner.strip_prefix('[').and_then(|x| x.strip_suffix(']'))
        && !inner.bytes().any(|c| matches!(c, b'"' | b'[' | b'{'))
    {
        let commas = inner.bytes().filter(|&c| c == b',').count() as u64;
        return Some(if inner.trim().is_empty() {
            0
        } else {
            commas + 1
        });
    }
    struct Count;
    impl<'de> serde::de::Visitor<'de> for Count {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
            let mut n = 0;
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                n += 1;
            }
            Ok(n)
        }
    }
    use serde::Deserializer as _;
    serde_json::Deserializer::from_str(json)
        .deserialize_seq(Count)
        .ok()
}

/// What one pass over a file's token and merge lists finds: their fingerprints (for the pair
/// check), malformed merges and repeated token strings (for `APRL-M014`). Computed once per view
/// (`ModelView::tokenizer_scan`): a 150k vocabulary is walked once, not once per check.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenizerScan {
    /// FNV-1a fingerprint and count of the token strings (see [`fingerprint_of`]).
    pub tokens: (u64, u64),
    /// The same over the merges.
    pub merges: (u64, u64),
    /// Merges that are not `"left right"` with two non-empty parts, as llama.cpp splits them.
    pub bad_merges: u64,
    /// The first few of them: (rank, text).
    pub bad_merge_examples: Vec<(u64, String)>,
    /// Token strings equal to an earlier non-empty one (GGUF only: llama.cpp aborts on them).
    pub duplicate_tokens: u64,
    /// The first: (id, text).
    pub first_duplicate: Option<(u64, String)>,
}

/// The starting state of a list fingerprint.
const LIST_SEED: u64 = 0x243f_6a88_85a3_08d3;
/// Odd 64-bit constants (the fractional digits of the golden ratio and of π).
const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0x1319_8a2e_0370_7344 | 1;

/// The 128-bit product of `a` and `b`, its two halves xor-ed (a "folded multiply": every input
/// bit reaches every output bit in one multiplication).
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// A 64-bit hash of one string, its length included, read 8 bytes at a time (one multiplication
/// per 8 bytes, where FNV-1a needs one per byte).
fn str_hash(s: &str) -> u64 {
    let b = s.as_bytes();
    let mut h = fold_mul(b.len() as u64 ^ K2, K1);
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        let mut x = [0u8; 8];
        x.copy_from_slice(w);
        h = fold_mul(h ^ u64::from_le_bytes(x), K1);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut x = [0u8; 8];
        x[..rest.len()].copy_from_slice(rest);
        h = fold_mul(h ^ u64::from_le_bytes(x), K1);
    }
    h
}

/// Fold one string's hash into a list fingerprint (order matters).
fn list_fold(h: u64, s_hash: u64) -> u64 {
    fold_mul(h ^ s_hash, K2)
}

/// How llama.cpp reads a merge: split at the first space after the first byte; both parts must be
/// non-empty.
pub fn is_merge(m: &str) -> bool {
    match m.as_bytes().iter().skip(1).position(|&b| b == b' ') {
        Some(p) => p + 2 < m.len(),
        None => false,
    }
}

/// How many strings equal an earlier one with the same key, and the first such id: the answer of
/// walking `keyed` (key, id) in id order with a map from each key to the first id that had it,
/// comparing the strings when a key comes back (a collision of different strings hides a later
/// repeat of that key: at most a missed finding, never a false one). Computed by bucketing on the
/// key's top bits and sorting each bucket, so the work stays in cache: a 150k-entry hash map misses
/// the cache on almost every insert, which made this check a quarter of a whole lint's CPU time.
fn repeats(strings: &[&str], keyed: Vec<(u64, u32)>) -> (u64, Option<usize>) {
    const BITS: u32 = 12;
    let bucket_of = |k: u64| (k >> (64 - BITS)) as usize;
    let mut start = vec![0usize; (1 << BITS) + 1];
    for &(k, _) in &keyed {
        start[bucket_of(k) + 1] += 1;
    }
    for i in 1..start.len() {
        start[i] += start[i - 1];
    }
    let mut next = start.clone();
    let mut sorted = vec![(0u64, 0u32); keyed.len()];
    // In id order, so each bucket keeps id order among equal keys.
    for e in keyed {
        let b = bucket_of(e.0);
        sorted[next[b]] = e;
        next[b] += 1;
    }
    let (mut n, mut first) = (0u64, None::<usize>);
    for b in 0..1usize << BITS {
        let bucket = &mut sorted[start[b]..start[b + 1]];
        bucket.sort_unstable();
        let mut i = 0;
        while i < bucket.len() {
            let mut j = i + 1;
            while j < bucket.len() && bucket[j].0 == bucket[i].0 {
                j += 1;
            }
            let earliest = strings[bucket[i].1 as usize];
            for &(_, id) in &bucket[i + 1..j] {
                if strings[id as usize] == earliest {
                    n += 1;
                    first = Some(first.map_or(id as usize, |f| f.min(id as usize)));
                }
            }
            i = j;
        }
    }
    (n, first)
}

impl TokenizerScan {
    /// The scan of lists already in memory (a `tokenizer.json`'s): fingerprints and malformed
    /// merges (repeated tokens are llama.cpp's concern, not counted here).
    pub fn of_lists(tokens: &[String], merges: &[String]) -> TokenizerScan {
        let mut s = TokenizerScan::default();
        s.scan_merges(&|f| merges.iter().for_each(|m| f(m)), &mut |_, _| {});
        s.tokens = (fingerprint(tokens), tokens.len() as u64);
        s
    }

    fn scan_merges(&mut self, visit: VisitList<'_>, tee: Tee<'_>) {
        const EXAMPLES: usize = 3;
        let (mut h, mut n) = (LIST_SEED, 0u64);
        visit(&mut |m| {
            h = list_fold(h, str_hash(m));
            tee(true, m);
            if !is_merge(m) {
                self.bad_merges += 1;
                if self.bad_merge_examples.len() < EXAMPLES {
                    self.bad_merge_examples.push((n, m.to_owned()));
                }
            }
            n += 1;
        });
        self.merges = (h, n);
    }

    /// One pass over the container's token and merge lists.
    pub fn of(c: &Container) -> TokenizerScan {
        Self::of_teed(c, &mut |_, _| {})
    }

    /// [`Self::of`], handing every merge (`tee(true, m)`, in rank order) and every token string
    /// (`tee(false, t)`, in id order) to `tee` as well, as [`Tokenizer::visit_merges`] and
    /// [`Tokenizer::visit_tokens`] give them: whoever needs the lists too reads them in this pass.
    pub(crate) fn of_teed(c: &Container, tee: Tee<'_>) -> TokenizerScan {
        let mut s = TokenizerScan::default();
        s.scan_merges(&|f| Tokenizer::visit_merges(c, f), tee);
        match c {
            Container::Gguf(g) => {
                let cap = match g.get("tokenizer.ggml.tokens").map(|kv| &kv.value) {
                    Some(Value::Array(a)) => a.len.min(a.span.len / 8) as usize,
                    _ => 0,
                };
                let mut strings: Vec<&str> = Vec::with_capacity(cap);
                gguf_strings(c, "tokenizer.ggml.tokens", &mut |t| strings.push(t));
                let mut h = LIST_SEED;
                let mut keyed: Vec<(u64, u32)> = Vec::with_capacity(strings.len());
                for (id, t) in strings.iter().enumerate() {
                    // One hash per string: the fingerprint's and the repeat test's key.
                    let key = str_hash(t);
                    h = list_fold(h, key);
                    tee(false, t);
                    // llama.cpp renames empty tokens `[EMPTY_<id>]`, so they never collide.
                    if !t.is_empty() {
                        keyed.push((key, id as u32));
                    }
                }
                let (n, first) = repeats(&strings, keyed);
                s.duplicate_tokens = n;
                s.first_duplicate = first.map(|id| (id as u64, strings[id].to_owned()));
                s.tokens = (h, strings.len() as u64);
            }
            Container::Apr(_) | Container::Hf(_) => {
                // What `fingerprint_of(c, false)` computes.
                let (mut h, mut n) = (LIST_SEED, 0u64);
                Tokenizer::visit_tokens(c, &mut |t| {
                    h = list_fold(h, str_hash(t));
                    tee(false, t);
                    n += 1;
                });
                s.tokens = (h, n);
            }
        }
        s
    }
}

/// A fingerprint of every token (or merge) string of a file, in order, and the count: to compare
/// two files' vocabularies or merges without holding them. Each string is hashed with its length,
/// 8 bytes at a time, and the hashes are folded in order; the value is the same whichever format
/// the strings came from (it is compared, never stored).
pub fn fingerprint_of(c: &Container, merges: bool) -> (u64, u64) {
    let mut h = LIST_SEED;
    let mut n = 0u64;
    let mut f = |s: &str| {
        h = list_fold(h, str_hash(s));
        n += 1;
    };
    if merges {
        Tokenizer::visit_merges(c, &mut f);
    } else {
        Tokenizer::visit_tokens(c, &mut f);
    }
    (h, n)
}

/// The same fingerprint over a list of strings.
pub fn fingerprint(items: &[String]) -> u64 {
    items
        .iter()
        .fold(LIST_SEED, |h, s| list_fold(h, str_hash(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde_json's own visitor of `Cow<str>` elements gives: the leading strings.
    fn by_serde(json: &str) -> Vec<String> {
        let v: serde_json::Value = match serde_json::from_str(json) {
            Ok(v) => v,
            Err(_) => return Vec::new(),
        };
        match v {
            serde_json::Value::Array(a) => a
                .into_iter()
                .map_while(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn the_byte_scanner_reads_what_serde_reads() {
        let cases = [
            r#"[]"#,
            r#" [ ] "#,
            r#"["a","b c","Ġt he"]"#,
            "[ \"x\" ,\n\t\"y\" ]",
            r#"["\"", "a\\b", "\u0120x", "tab\there", "\\"]"#,
            r#"["", "é", "日本"]"#,
            r#"["a", 1, "b"]"#,
            r#"[1, "a"]"#,
            r#"["a", null]"#,
            r#"{"a": "b"}"#,
            r#""a""#,
            r#"["a", ["b"]]"#,
        ];
        for json in cases {
            let mut got = Vec::new();
            let (n, whole) = json_strings(json, &mut |s| got.push(s.to_owned()));
            assert_eq!(got, by_serde(json), "{json}");
            assert_eq!(n as usize, got.len(), "{json}");
            let all_strings = matches!(serde_json::from_str::<serde_json::Value>(json),
                Ok(serde_json::Value::Array(a)) if a.iter().all(|x| x.is_string()));
            assert_eq!(whole, all_strings, "{json}");
        }
    }

    #[test]
    fn long_strings_with_quotes_and_escapes_anywhere_read_as_serde_reads_them() {
        // Every position of an escaped quote or backslash in strings of 0..20 bytes (the scan
        // reads eight bytes at a time), non-ASCII bytes included.
        for n in 0..20usize {
            for at in 0..=n {
                for esc in ["\\\"", "\\\\", "\\u00e9", "é"] {
                    let body: String = (0..n)
                        .map(|k| {
                            if k == at {
                                esc.to_owned()
                            } else {
                                "x".to_owned()
                            }
                        })
                        .collect();
                    let json = format!("[\"{body}\", \"{body}y\",\"\"]");
                    let mut got = Vec::new();
                    let (count, whole) = json_strings(&json, &mut |s| got.push(s.to_owned()));
                    assert_eq!(got, by_serde(&json), "{json}");
                    assert_eq!((count, whole), (3, true), "{json}");
                }
            }
        }
        for (b, j) in [(&b"abc"[..], 0), (b"", 0), (b"abcdefghij\"", 3), (b"x", 5)] {
            let naive = (j..b.len()).find(|&i| b[i] == b'"' || b[i] == b'\\');
            assert_eq!(
                quote_or_backslash(b, j),
                naive.unwrap_or(b.len()),
                "{b:?} {j}"
            );
        }
    }

    #[test]
    fn truncated_or_broken_text_stops_without_panicking() {
        for json in [
            r#"["a", "b"#,
            r#"["a\"#,
            r#"["a"#,
            "[",
            r#"["a" "b"]"#,
            r#"["\x"]"#,
        ] {
            let mut got = Vec::new();
            let (_, whole) = json_strings(json, &mut |s| got.push(s.to_owned()));
            assert!(!whole, "{json}");
            assert!(got.len() <= 1, "{json}");
        }
    }

    #[test]
    fn repeats_are_what_a_map_of_first_ids_finds() {
        // Keys chosen by hand: equal strings share a key; "x" and "y" collide on key 7, so the
        // later "x" (id 5) is compared with "y" (id 1), the first with key 7, and not counted.
        let strings = ["a", "y", "b", "a", "x", "x", "a", "b"];
        let key = |s: &str| match s {
            "a" => 3u64 << 60,
            "b" => 3u64 << 60 | 1,
            _ => 7,
        };
        let keyed: Vec<(u64, u32)> = strings
            .iter()
            .enumerate()
            .map(|(id, s)| (key(s), id as u32))
            .collect();
        let mut map = std::collections::HashMap::new();
        let (mut n, mut first) = (0u64, None);
        for &(k, id) in &keyed {
            let f = *map.entry(k).or_insert(id);
            if f != id && strings[f as usize] == strings[id as usize] {
                n += 1;
                first.get_or_insert(id as usize);
            }
        }
        assert_eq!((n, first), (3, Some(3)));
        assert_eq!(repeats(&strings, keyed), (n, first));
        assert_eq!(repeats(&strings, Vec::new()), (0, None));
    }

    #[test]
    fn arrays_are_counted_with_or_without_strings() {
        assert_eq!(count_array(r#"["a", "b", "c"]"#), Some(3));
        assert_eq!(count_array(r#"[1, 2.5, "c", null]"#), Some(4));
        assert_eq!(count_array("[]"), Some(0));
        assert_eq!(count_array(r#""a""#), None);
        // Arrays without strings are counted by their commas; serde_json agrees.
        for json in [
            "[1, 2, 3]",
            " [ 1 ] ",
            "[ ]",
            "[-1.5e3,true,null,0]",
            "[1,\n2]",
        ] {
            let by_serde = serde_json::from_str::<Vec<serde_json::Value>>(json).unwrap();
            assert_eq!(count_array(json), Some(by_serde.len() as u64), "{json}");
        }
        assert_eq!(count_array("[1, [2, 3]]"), Some(2));
        assert_eq!(count_array("[1, {\"a\": 2, \"b\": 3}]"), Some(2));
    }

    #[test]
    fn fingerprints_tell_lists_apart() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let base = fingerprint(&l(&["ab", "c"]));
        assert_eq!(base, fingerprint(&l(&["ab", "c"])));
        // Same bytes, other boundaries; other order; a byte that differs past the first word.
        for other in [
            l(&["a", "bc"]),
            l(&["abc"]),
            l(&["c", "ab"]),
            l(&["ab", "c", ""]),
            l(&["ab\0", "c"]),
        ] {
            assert_ne!(base, fingerprint(&other), "{other:?}");
        }
        assert_ne!(
            fingerprint(&l(&["abcdefgh12345678x"])),
            fingerprint(&l(&["abcdefgh12345679x"]))
        );
    }
}
