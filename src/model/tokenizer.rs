//! A tokenizer summary from each format's own keys: GGUF `tokenizer.ggml.*`, APR `tokenizer.*`.
//! Token and merge lists are decoded on demand (150k strings are not needed by `inspect`).

use crate::format::Container;
use crate::format::gguf::Value;

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Tokenizer {
    /// `gpt2` (byte-level BPE), `llama` (SentencePiece), …
    pub model: Option<String>,
    /// GGUF `tokenizer.ggml.pre` / APR `tokenizer.pre_type`.
    pub pre: Option<String>,
    pub n_tokens: Option<u64>,
    pub n_merges: Option<u64>,
    pub bos: Option<u64>,
    pub eos: Option<u64>,
    pub add_bos: Option<bool>,
}

impl Tokenizer {
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
        Container::Gguf(g) => {
            if let Some(Value::Array(a)) = g.get(gguf_key).map(|kv| &kv.value) {
                for s in g.array_strings(a) {
                    f(s);
                }
            }
        }
        Container::Apr(a) => {
            if let Some(e) = a.get(apr_key) {
                use serde::Deserializer as _;
                let mut de = serde_json::Deserializer::from_str(e.raw.get());
                let _ = de.deserialize_seq(StrVisitor(f));
            }
        }
        // In `tokenizer.json`, which the view reads (`ModelView::token_strings`).
        Container::Hf(_) => {}
    }
}

/// The length of a JSON array, without building its elements (a 150k-token vocabulary is counted
/// in a few ms instead of parsed into values). None when `json` is not an array.
pub(crate) fn count_array(json: &str) -> Option<u64> {
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

/// Calls its argument on every string of a list, in order.
type VisitList<'a> = &'a dyn Fn(&mut dyn FnMut(&str));

/// Visits a JSON array of strings, borrowing each one unless it has escapes.
struct StrVisitor<'f>(&'f mut dyn FnMut(&str));

impl<'de> serde::de::Visitor<'de> for StrVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of strings")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(s) = seq.next_element::<std::borrow::Cow<'de, str>>()? {
            (self.0)(&s);
        }
        Ok(())
    }
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

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// Fold `s` and a 0 byte into the running FNV-1a state `h`.
fn fnv_fold(mut h: u64, s: &str) -> u64 {
    for &b in s.as_bytes().iter().chain(std::iter::once(&0u8)) {
        h ^= b as u64;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// How llama.cpp reads a merge: split at the first space after the first byte; both parts must be
/// non-empty.
pub fn is_merge(m: &str) -> bool {
    match m.as_bytes().iter().skip(1).position(|&b| b == b' ') {
        Some(p) => p + 2 < m.len(),
        None => false,
    }
}

/// Keys of a map that are already hashes: used as they are.
#[derive(Default)]
struct Prehashed(u64);
impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

impl TokenizerScan {
    /// The scan of lists already in memory (a `tokenizer.json`'s): fingerprints and malformed
    /// merges (repeated tokens are llama.cpp's concern, not counted here).
    pub fn of_lists(tokens: &[String], merges: &[String]) -> TokenizerScan {
        let mut s = TokenizerScan::default();
        s.scan_merges(&|f| merges.iter().for_each(|m| f(m)));
        s.tokens = (fingerprint(tokens), tokens.len() as u64);
        s
    }

    fn scan_merges(&mut self, visit: VisitList<'_>) {
        const EXAMPLES: usize = 3;
        let (mut h, mut n) = (FNV_OFFSET, 0u64);
        visit(&mut |m| {
            h = fnv_fold(h, m);
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

    pub fn of(c: &Container) -> TokenizerScan {
        let mut s = TokenizerScan::default();
        s.scan_merges(&|f| Tokenizer::visit_merges(c, f));
        match c {
            Container::Gguf(g) => {
                let strings = match g.get("tokenizer.ggml.tokens").map(|kv| &kv.value) {
                    Some(Value::Array(a)) => g.array_strings(a),
                    _ => Vec::new(),
                };
                let mut first_with: std::collections::HashMap<
                    u64,
                    u32,
                    std::hash::BuildHasherDefault<Prehashed>,
                > = std::collections::HashMap::with_capacity_and_hasher(
                    strings.len(),
                    Default::default(),
                );
                let mut h = FNV_OFFSET;
                for (id, t) in strings.iter().enumerate() {
                    h = fnv_fold(h, t);
                    // llama.cpp renames empty tokens `[EMPTY_<id>]`, so they never collide.
                    if t.is_empty() {
                        continue;
                    }
                    let key = fnv_fold(FNV_OFFSET, t);
                    match first_with.entry(key) {
                        std::collections::hash_map::Entry::Vacant(e) => {
                            e.insert(id as u32);
                        }
                        // Equal hashes: a repeat only if the strings are equal. (A collision of
                        // different strings hides a later repeat of the same hash: at most a
                        // missed finding, never a false one.)
                        std::collections::hash_map::Entry::Occupied(e) => {
                            if strings[*e.get() as usize] == *t {
                                s.duplicate_tokens += 1;
                                s.first_duplicate
                                    .get_or_insert((id as u64, (*t).to_owned()));
                            }
                        }
                    }
                }
                s.tokens = (h, strings.len() as u64);
            }
            Container::Apr(_) | Container::Hf(_) => s.tokens = fingerprint_of(c, false),
        }
        s
    }
}

/// FNV-1a 64 over every token (or merge) string of a file, each followed by a 0 byte, and the
/// count: a fingerprint to compare two files' vocabularies or merges without holding them.
pub fn fingerprint_of(c: &Container, merges: bool) -> (u64, u64) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut n = 0u64;
    let mut f = |s: &str| {
        for &b in s.as_bytes().iter().chain(std::iter::once(&0u8)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        n += 1;
    };
    if merges {
        Tokenizer::visit_merges(c, &mut f);
    } else {
        Tokenizer::visit_tokens(c, &mut f);
    }
    (h, n)
}

/// FNV-1a 64 over a list of strings (each followed by a 0 byte): a stable fingerprint to compare two
/// files' vocabularies or merges.
pub fn fingerprint(items: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for s in items {
        for &b in s.as_bytes().iter().chain(std::iter::once(&0u8)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}
