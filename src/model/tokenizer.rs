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
