//! Each file's own tokenizer, as llama.cpp runs it: byte-level BPE (`gpt2`) with the qwen2,
//! llama-bpe (Llama 3), smollm and default GPT-2 pre-tokenizers, and SentencePiece (`llama`) with
//! byte fallback. Enough to turn a probe prompt into the ids the model would see; special tokens in
//! the text are not parsed.

use std::collections::HashMap;

use crate::format::Container;
use crate::model::tokenizer::{Tokenizer, TokenizerScan};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    /// `tokenizer.ggml.pre = qwen2`: digits one at a time.
    Qwen2,
    /// `llama-bpe` (Llama 3): digits in groups of up to three.
    Llama3,
    /// `smollm`: digits one at a time, then the GPT-2 pattern.
    Smollm,
    /// GPT-2's own pattern (the default).
    Gpt2,
}

#[derive(Debug)]
pub enum Engine {
    Bpe {
        pre: PreTokenizer,
        ranks: HashMap<(String, String), usize>,
    },
    Spm {
        scores: Vec<f32>,
    },
}

#[derive(Debug)]
pub struct TextTokenizer {
    engine: Engine,
    vocab: HashMap<String, u32>,
    bos: Option<u32>,
    add_bos: bool,
}

/// Calls its argument on every string of a list, in order.
type VisitStrings<'a> = &'a dyn Fn(&mut dyn FnMut(&str));

/// What a tokenizer is built from, whichever file it came from.
struct Parts<'a> {
    /// `gpt2` (byte-level BPE) or `llama` (SentencePiece); None means `gpt2`.
    model: Option<&'a str>,
    /// The pre-tokenizer name, as GGUF's `tokenizer.ggml.pre`.
    pre: Option<&'a str>,
    bos: Option<u32>,
    add_bos: Option<bool>,
    /// Calls its argument on every token string, in id order.
    visit_tokens: VisitStrings<'a>,
    /// Calls its argument on every merge (`"a b"`), in rank order.
    visit_merges: VisitStrings<'a>,
    /// The SentencePiece scores of `n` tokens.
    scores: &'a dyn Fn(usize) -> Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TokenizeError {
    NoTokenizer,
    Unsupported(String),
}

impl std::fmt::Display for TokenizeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenizeError::NoTokenizer => f.write_str("the file carries no tokenizer"),
            TokenizeError::Unsupported(m) => write!(
                f,
                "tokenizer model `{m}` is not supported (gpt2 and llama are)"
            ),
        }
    }
}

impl TextTokenizer {
    /// The whole tokenizer of a file.
    pub fn from_container(c: &Container) -> Result<TextTokenizer, TokenizeError> {
        Self::build(c, &Tokenizer::read(c), None)
    }

    /// Tokenize one text with a file's tokenizer, keeping only the vocabulary entries and merges
    /// that can occur in it (a 150k-token vocabulary is scanned once, not copied into maps).
    pub fn tokenize(c: &Container, text: &str) -> Result<Vec<u32>, TokenizeError> {
        Self::tokenize_with(c, &Tokenizer::read(c), text)
    }

    /// [`Self::tokenize`] with the file's tokenizer summary already read (the view keeps one).
    pub fn tokenize_with(
        c: &Container,
        summary: &Tokenizer,
        text: &str,
    ) -> Result<Vec<u32>, TokenizeError> {
        Ok(Self::build(c, summary, Some(text))?.encode(text))
    }

    fn build(
        c: &Container,
        summary: &Tokenizer,
        only_for: Option<&str>,
    ) -> Result<TextTokenizer, TokenizeError> {
        Self::build_from(
            &Parts {
                model: summary.model.as_deref(),
                pre: summary.pre.as_deref(),
                bos: summary.bos.map(|b| b as u32),
                add_bos: summary.add_bos,
                visit_tokens: &|f| Tokenizer::visit_tokens(c, f),
                visit_merges: &|f| Tokenizer::visit_merges(c, f),
                scores: &|n| scores(c, n),
            },
            only_for,
        )
    }

    /// The tokenizer of a Hugging Face `tokenizer.json` (read by `model::hf_tokenizer`), built as
    /// a GGUF's or APR's is: the same token strings, merges, pre-tokenizer name and BOS.
    pub fn from_hf(
        t: &crate::model::hf_tokenizer::HfTokenizer,
    ) -> Result<TextTokenizer, TokenizeError> {
        Self::build_hf(t, None)
    }

    /// Tokenize one text with a `tokenizer.json`'s tokenizer, built only for the pieces `text`
    /// needs (as `tokenize` does for a GGUF's or APR's).
    pub fn tokenize_hf(
        t: &crate::model::hf_tokenizer::HfTokenizer,
        text: &str,
    ) -> Result<Vec<u32>, TokenizeError> {
        Ok(Self::build_hf(t, Some(text))?.encode(text))
    }

    fn build_hf(
        t: &crate::model::hf_tokenizer::HfTokenizer,
        only_for: Option<&str>,
    ) -> Result<TextTokenizer, TokenizeError> {
        Self::build_from(
            &Parts {
                model: Some(t.model.as_str()),
                pre: t.pre.as_deref(),
                bos: t.bos,
                add_bos: t.add_bos,
                visit_tokens: &|f| t.tokens.iter().for_each(|s| f(s)),
                visit_merges: &|f| t.merges.iter().for_each(|s| f(s)),
                scores: &|n| {
                    let mut v = t.scores.clone();
                    v.resize(n, 0.0);
                    v
                },
            },
            only_for,
        )
    }

    fn build_from(p: &Parts<'_>, only_for: Option<&str>) -> Result<TextTokenizer, TokenizeError> {
        let model = p.model.unwrap_or("gpt2");
        let pre = pre_tokenizer(p.pre);
        let haystacks = only_for.map(|text| haystacks(model, pre, text));
        let mut b = Builder::new(model, pre, p.bos, p.add_bos, haystacks.as_deref());
        (p.visit_tokens)(&mut |t| b.token(t));
        if b.n_tokens == 0 {
            return Err(TokenizeError::NoTokenizer);
        }
        if b.bpe {
            (p.visit_merges)(&mut |m| b.merge(m));
        }
        b.finish(p.scores)
    }

    /// The file's token and merge lists scanned ([`TokenizerScan::of`]) and `text` tokenized
    /// ([`Self::tokenize_with`]) in one pass over the lists: each string is read once and handed
    /// to both. Gives exactly what the two calls give.
    pub(crate) fn scan_and_tokenize(
        c: &Container,
        summary: &Tokenizer,
        text: &str,
    ) -> (TokenizerScan, Result<Vec<u32>, TokenizeError>) {
        let model = summary.model.as_deref().unwrap_or("gpt2");
        let pre = pre_tokenizer(summary.pre.as_deref());
        let haystacks = haystacks(model, pre, text);
        let mut b = Builder::new(
            model,
            pre,
            summary.bos.map(|b| b as u32),
            summary.add_bos,
            Some(&haystacks),
        );
        let scan = TokenizerScan::of_teed(c, &mut |merge, s| {
            if merge { b.merge(s) } else { b.token(s) }
        });
        let ids = b.finish(&|n| scores(c, n)).map(|t| t.encode(text));
        (scan, ids)
    }

    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        if self.add_bos
            && let Some(b) = self.bos
        {
            out.push(b);
        }
        match &self.engine {
            Engine::Bpe { pre, ranks } => {
                for piece in pre_tokenize(text, *pre) {
                    let mapped: String = piece.bytes().map(byte_to_unicode).collect();
                    for sym in bpe(&mapped, ranks) {
                        match self.vocab.get(&sym) {
                            Some(&id) => out.push(id),
                            None => out.extend(
                                sym.chars()
                                    .filter_map(|ch| self.vocab.get(&ch.to_string()).copied()),
                            ),
                        }
                    }
                }
            }
            Engine::Spm { scores } => out.extend(self.spm(text, scores)),
        }
        out
    }

    fn spm(&self, text: &str, scores: &[f32]) -> Vec<u32> {
        let text = format!(" {text}").replace(' ', "\u{2581}");
        let mut syms: Vec<String> = text.chars().map(|c| c.to_string()).collect();
        // Merge the adjacent pair whose merged piece has the highest score, leftmost on ties.
        loop {
            let mut best: Option<(usize, f32)> = None;
            for i in 0..syms.len().saturating_sub(1) {
                let merged = format!("{}{}", syms[i], syms[i + 1]);
                if let Some(&id) = self.vocab.get(&merged) {
                    let s = scores.get(id as usize).copied().unwrap_or(0.0);
                    if best.is_none_or(|(_, bs)| s > bs) {
                        best = Some((i, s));
                    }
                }
            }
            let Some((i, _)) = best else { break };
            let right = syms.remove(i + 1);
            syms[i].push_str(&right);
        }
        let mut out = Vec::new();
        for s in syms {
            match self.vocab.get(&s) {
                Some(&id) => out.push(id),
                None => {
                    for b in s.bytes() {
                        if let Some(&id) = self.vocab.get(&format!("<0x{b:02X}>")) {
                            out.push(id);
                        }
                    }
                }
            }
        }
        out
    }
}

fn scores(c: &Container, n: usize) -> Vec<f32> {
    match c {
        Container::Gguf(g) => match g.get("tokenizer.ggml.scores").map(|kv| &kv.value) {
            Some(crate::format::gguf::Value::Array(a)) => {
                g.array_numbers(a).into_iter().map(|x| x as f32).collect()
            }
            _ => vec![0.0; n],
        },
        Container::Apr(a) => a
            .get_value("tokenizer.scores")
            .and_then(|v| {
                v.as_array().map(|arr| {
                    arr.iter()
                        .map(|x| x.as_f64().unwrap_or(0.0) as f32)
                        .collect()
                })
            })
            .unwrap_or_else(|| vec![0.0; n]),
        // `TextTokenizer::from_hf` takes a checkpoint's scores from its `tokenizer.json`.
        Container::Hf(_) => vec![0.0; n],
    }
}

/// The pre-tokenizer a `tokenizer.ggml.pre` name stands for.
fn pre_tokenizer(pre: Option<&str>) -> PreTokenizer {
    match pre {
        Some("qwen2") | Some("deepseek-r1-qwen") => PreTokenizer::Qwen2,
        Some("llama-bpe") | Some("llama3") => PreTokenizer::Llama3,
        Some("smollm") => PreTokenizer::Smollm,
        _ => PreTokenizer::Gpt2,
    }
}

/// The strings a kept vocabulary entry or merge must occur in, for tokenizing `text`.
fn haystacks(model: &str, pre: PreTokenizer, text: &str) -> Vec<String> {
    match model {
        "llama" => vec![format!(" {text}").replace(' ', "\u{2581}")],
        _ => pre_tokenize(text, pre)
            .iter()
            .map(|p| p.bytes().map(byte_to_unicode).collect())
            .collect(),
    }
}

/// A tokenizer being built, fed one token string (in id order) and one merge (in rank order) at
/// a time, so that whoever walks the lists can build it on the way. With haystacks, it keeps
/// only the entries that can occur in them.
struct Builder<'a> {
    model: &'a str,
    pre: PreTokenizer,
    /// The model is byte-level BPE (`gpt2`): merges are read.
    bpe: bool,
    filter: Option<Substrings<'a>>,
    vocab: HashMap<String, u32>,
    n_tokens: u32,
    ranks: HashMap<(String, String), usize>,
    rank: usize,
    joined: String,
    bos: Option<u32>,
    add_bos: Option<bool>,
}

impl<'a> Builder<'a> {
    fn new(
        model: &'a str,
        pre: PreTokenizer,
        bos: Option<u32>,
        add_bos: Option<bool>,
        haystacks: Option<&'a [String]>,
    ) -> Builder<'a> {
        Builder {
            model,
            pre,
            bpe: model == "gpt2",
            filter: haystacks.map(Substrings::new),
            vocab: HashMap::new(),
            n_tokens: 0,
            ranks: HashMap::new(),
            rank: 0,
            joined: String::new(),
            bos,
            add_bos,
        }
    }

    fn wanted(&self, t: &str) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| f.contains(t) || (t.starts_with("<0x") && t.len() == 6))
    }

    fn token(&mut self, t: &str) {
        if self.wanted(t) {
            self.vocab.entry(t.to_owned()).or_insert(self.n_tokens);
        }
        self.n_tokens += 1;
    }

    /// One merge (ignored unless the model is byte-level BPE).
    fn merge(&mut self, m: &str) {
        if !self.bpe {
            return;
        }
        // Most merges can be ruled out from `m` itself, before splitting and joining: the joined
        // pair is one byte shorter and starts with `m`'s first byte.
        let quick_no = self.filter.as_ref().is_some_and(|f| !f.may_hold_merge(m));
        if quick_no && m.len() != 7 {
            // (7: "<0x" + 4 bytes joins to a 6-byte `<0x..>`, which `wanted` keeps.)
        } else if let Some((x, y)) = m.split_once(' ') {
            self.joined.clear();
            self.joined.push_str(x);
            self.joined.push_str(y);
            if self.wanted(&self.joined) {
                self.ranks
                    .entry((x.to_string(), y.to_string()))
                    .or_insert(self.rank);
            }
        }
        self.rank += 1;
    }

    fn finish(self, scores: &dyn Fn(usize) -> Vec<f32>) -> Result<TextTokenizer, TokenizeError> {
        if self.n_tokens == 0 {
            return Err(TokenizeError::NoTokenizer);
        }
        let engine = match self.model {
            "gpt2" => Engine::Bpe {
                pre: self.pre,
                ranks: self.ranks,
            },
            "llama" => Engine::Spm {
                scores: scores(self.n_tokens as usize),
            },
            other => return Err(TokenizeError::Unsupported(other.into())),
        };
        Ok(TextTokenizer {
            engine,
            vocab: self.vocab,
            bos: self.bos,
            add_bos: self.add_bos.unwrap_or(self.model == "llama"),
        })
    }
}

/// "Is `t` a substring of one of these texts?", asked of every entry of a 150k-token vocabulary:
/// answered from the length and first byte for almost every entry, and from a set of every
/// substring of short texts (a hash lookup) for the rest, instead of one substring search per
/// text per entry. Gives exactly `texts.iter().any(|h| h.contains(t))`.
struct Substrings<'a> {
    texts: &'a [String],
    longest: usize,
    /// Bytes that start some substring of some text (every byte of every text).
    first_bytes: [bool; 256],
    /// Every substring of every text (at char boundaries, where a `str` can match), while they
    /// are few; None: search the texts.
    all: Option<std::collections::HashSet<&'a str>>,
}

impl<'a> Substrings<'a> {
    /// Substrings kept in the set at most (a long prompt falls back to searching the texts).
    const MAX_SET: usize = 1 << 16;
    /// Bytes hashed to build the set, at most.
    const MAX_SET_BYTES: u128 = 1 << 20;

    fn new(texts: &'a [String]) -> Substrings<'a> {
        let mut first_bytes = [false; 256];
        for t in texts {
            for &b in t.as_bytes() {
                first_bytes[b as usize] = true;
            }
        }
        // Substrings of an L-byte text: L(L+1)/2, of L(L+1)(L+2)/6 bytes in all (hashed once).
        let l = |t: &String| t.len() as u128;
        let pairs: u128 = texts.iter().map(|t| l(t) * (l(t) + 1) / 2 + 1).sum();
        let bytes: u128 = texts
            .iter()
            .map(|t| l(t) * (l(t) + 1) * (l(t) + 2) / 6)
            .sum();
        let small = pairs <= Self::MAX_SET as u128 && bytes <= Self::MAX_SET_BYTES;
        let all = small.then(|| {
            let pairs = pairs as usize;
            let mut set = std::collections::HashSet::with_capacity(pairs);
            for t in texts {
                set.insert(&t[..0]);
                for i in (0..t.len()).filter(|&i| t.is_char_boundary(i)) {
                    for j in (i + 1..=t.len()).filter(|&j| t.is_char_boundary(j)) {
                        set.insert(&t[i..j]);
                    }
                }
            }
            set
        });
        Substrings {
            texts,
            longest: texts.iter().map(String::len).max().unwrap_or(0),
            first_bytes,
            all,
        }
    }

    /// False when the merge `m` (`"left right"`, split at its first space) cannot join into a
    /// substring of the texts: the joined pair is `m.len() - 1` bytes and starts with `m`'s first
    /// byte unless `m` starts with the space. True means "maybe".
    fn may_hold_merge(&self, m: &str) -> bool {
        if self.texts.is_empty() || m.len().saturating_sub(1) > self.longest {
            return false;
        }
        match m.as_bytes().first() {
            Some(&b) if b != b' ' => self.first_bytes[b as usize],
            _ => true,
        }
    }

    fn contains(&self, t: &str) -> bool {
        if self.texts.is_empty() || t.len() > self.longest {
            return false;
        }
        match t.as_bytes().first() {
            None => return true,
            Some(&b) if !self.first_bytes[b as usize] => return false,
            Some(_) => {}
        }
        match &self.all {
            Some(set) => set.contains(t),
            None => self.texts.iter().any(|h| h.contains(t)),
        }
    }
}

/// GPT-2's reversible byte → printable-char map.
pub fn byte_to_unicode(b: u8) -> char {
    let printable =
        (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    if printable {
        return char::from(b);
    }
    // Non-printable bytes map to 256 + their rank among non-printables.
    let mut n = 0u32;
    for x in 0..b {
        let p =
            (b'!'..=b'~').contains(&x) || (0xA1..=0xAC).contains(&x) || (0xAE..=0xFF).contains(&x);
        if !p {
            n += 1;
        }
    }
    char::from_u32(256 + n).unwrap_or('?')
}

fn bpe(word: &str, ranks: &HashMap<(String, String), usize>) -> Vec<String> {
    let mut syms: Vec<String> = word.chars().map(|c| c.to_string()).collect();
    loop {
        let mut best: Option<(usize, usize)> = None;
        for i in 0..syms.len().saturating_sub(1) {
            if let Some(&r) = ranks.get(&(syms[i].clone(), syms[i + 1].clone()))
                && best.is_none_or(|(_, br)| r < br)
            {
                best = Some((i, r));
            }
        }
        let Some((i, _)) = best else { break };
        let right = syms.remove(i + 1);
        syms[i].push_str(&right);
    }
    syms
}

fn is_l(c: char) -> bool {
    c.is_alphabetic()
}
fn is_n(c: char) -> bool {
    c.is_numeric()
}
fn is_nl(c: char) -> bool {
    c == '\r' || c == '\n'
}

/// Split text as the pre-tokenizer regex would.
pub fn pre_tokenize(text: &str, pre: PreTokenizer) -> Vec<String> {
    let cs: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let n = match pre {
            PreTokenizer::Qwen2 | PreTokenizer::Llama3 => {
                match_llama3(&cs, i, if pre == PreTokenizer::Qwen2 { 1 } else { 3 })
            }
            PreTokenizer::Gpt2 | PreTokenizer::Smollm => {
                match_gpt2(&cs, i, pre == PreTokenizer::Smollm)
            }
        }
        .max(1);
        out.push(cs[i..i + n].iter().collect());
        i += n;
    }
    out
}

fn contraction(cs: &[char], i: usize) -> usize {
    if cs[i] != '\'' {
        return 0;
    }
    let lower: String = cs[i + 1..(i + 3).min(cs.len())]
        .iter()
        .flat_map(|c| c.to_lowercase())
        .collect();
    if lower.starts_with("re") || lower.starts_with("ve") || lower.starts_with("ll") {
        3
    } else if lower.starts_with('s')
        || lower.starts_with('t')
        || lower.starts_with('m')
        || lower.starts_with('d')
    {
        2
    } else {
        0
    }
}

fn whitespace(cs: &[char], i: usize) -> usize {
    let mut j = i;
    while j < cs.len() && cs[j].is_whitespace() {
        j += 1;
    }
    let run = j - i;
    if run == 0 {
        return 0;
    }
    // \s+(?!\S): give the last space to the following word.
    if j < cs.len() && run > 1 {
        run - 1
    } else {
        run
    }
}

/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
fn match_llama3(cs: &[char], i: usize, max_digits: usize) -> usize {
    let c = contraction(cs, i);
    if c > 0 {
        return c;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    let mut j = i;
    if !is_nl(cs[j]) && !is_l(cs[j]) && !is_n(cs[j]) && j + 1 < cs.len() && is_l(cs[j + 1]) {
        j += 1;
    }
    if is_l(cs[j]) {
        while j < cs.len() && is_l(cs[j]) {
            j += 1;
        }
        return j - i;
    }
    if is_n(cs[i]) {
        let mut j = i;
        while j < cs.len() && is_n(cs[j]) && j - i < max_digits {
            j += 1;
        }
        return j - i;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    let mut j = i;
    if cs[j] == ' ' && j + 1 < cs.len() {
        j += 1;
    }
    let st = j;
    while j < cs.len() && !cs[j].is_whitespace() && !is_l(cs[j]) && !is_n(cs[j]) {
        j += 1;
    }
    if j > st {
        while j < cs.len() && is_nl(cs[j]) {
            j += 1;
        }
        return j - i;
    }
    // \s*[\r\n]+ : the longest whitespace prefix ending in a newline.
    let mut j = i;
    let mut last_nl = None;
    while j < cs.len() && cs[j].is_whitespace() {
        if is_nl(cs[j]) {
            last_nl = Some(j);
        }
        j += 1;
    }
    if let Some(k) = last_nl {
        return k + 1 - i;
    }
    whitespace(cs, i)
}

/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` (smollm first splits digits).
fn match_gpt2(cs: &[char], i: usize, single_digits: bool) -> usize {
    if single_digits && is_n(cs[i]) {
        return 1;
    }
    let c = contraction(cs, i);
    if c > 0 {
        return c;
    }
    let st = if cs[i] == ' ' && i + 1 < cs.len() {
        i + 1
    } else {
        i
    };
    for class in [is_l as fn(char) -> bool, is_n] {
        if is_n(cs[st]) && single_digits {
            break;
        }
        let mut j = st;
        while j < cs.len() && class(cs[j]) {
            j += 1;
        }
        if j > st {
            return j - i;
        }
    }
    let mut j = st;
    while j < cs.len() && !cs[j].is_whitespace() && !is_l(cs[j]) && !is_n(cs[j]) {
        j += 1;
    }
    if j > st {
        return j - i;
    }
    whitespace(cs, i)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn the_substring_filter_answers_as_str_contains_does() {
        let texts: Vec<String> = ["2", "+", "Ġhello", "▁日本語", "ab"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let long: Vec<String> = vec!["x".repeat(400), "Ġworldwide".into()];
        let probes = [
            "", "2", "22", "+", "Ġ", "Ġh", "hello", "Ġhello", "Ġhellox", "llo", "日本", "本語",
            "▁", "▁日", "語", "ab", "ba", "b", "x", "xx", "Ġworld", "wide", "<0x41>", "é",
        ];
        for ts in [&texts, &long, &Vec::new()] {
            let f = Substrings::new(ts);
            assert_eq!(f.all.is_some(), !std::ptr::eq(ts, &long), "set or search");
            for p in probes {
                assert_eq!(
                    f.contains(p),
                    ts.iter().any(|h| h.contains(p)),
                    "{p:?} in {ts:?}"
                );
            }
        }
    }

    #[test]
    fn pre_tokenizers() {
        assert_eq!(
            pre_tokenize("Hello my name is Tiny", PreTokenizer::Qwen2),
            vec!["Hello", " my", " name", " is", " Tiny"]
        );
        assert_eq!(
            pre_tokenize("2+2=", PreTokenizer::Qwen2),
            vec!["2", "+", "2", "="]
        );
        assert_eq!(
            pre_tokenize("x  12345", PreTokenizer::Llama3),
            vec!["x", " ", " ", "123", "45"]
        );
        assert_eq!(
            pre_tokenize("it's\n\n ok", PreTokenizer::Gpt2),
            vec!["it", "'s", "\n\n", " ok"]
        );
        assert_eq!(byte_to_unicode(b' '), 'Ġ');
        assert_eq!(byte_to_unicode(b'\n'), 'Ċ');
    }
}
