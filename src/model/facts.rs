//! Per-file facts the checks, numerics and reports need, stated without naming a container: the
//! naming schemes a file's tensor names may use, the loader it is written for (which decides its RoPE
//! rotation, the order its Q/K rows hold and which keys it can record), its Llama 3 RoPE divisors,
//! and the text tokenizer built from its vocabulary.
//!
//! This is the one place (with `describe.rs`) that turns "GGUF" or "APR" into such facts: adding a
//! reference format is one arm per fact here.

use super::ModelView;
use super::config::{RopeScaling, RopeType};
use super::hf_tokenizer::HfTokenizer;
use super::tokenize::{TextTokenizer, TokenizeError};
use super::tokenizer::{Tokenizer, TokenizerScan, fingerprint_of};
use crate::format::Container;

/// A family of tensor names: the rules hold one list of name templates per scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamingScheme {
    /// llama.cpp's `blk.{i}.attn_q.weight`.
    Gguf,
    /// Hugging Face's `model.layers.{i}.self_attn.q_proj.weight`.
    Hf,
}

/// The runtime whose loader reads the file: it decides the rotation, the keys the file can record
/// and what the loader refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// llama.cpp (GGUF): the architecture fixes the rotation; its converter permutes Q/K rows.
    LlamaCpp,
    /// aprender / realizar (APR): the file declares its rotation; its metadata is Hugging Face's.
    Aprender,
    /// transformers (a Hugging Face checkpoint): rotates pairs (i, i + d/2) (`rotate_half`, NEOX)
    /// on Q/K rows in Hugging Face order; `config.json` holds the hyperparameters.
    Transformers,
}

impl Runtime {
    /// Which side of a pair is under test: an APR before a GGUF before a Hugging Face checkpoint
    /// (the checkpoint is where conversions start).
    pub fn test_order(self) -> u8 {
        match self {
            Runtime::Aprender => 0,
            Runtime::LlamaCpp => 1,
            Runtime::Transformers => 2,
        }
    }
}

impl ModelView {
    /// Format name for display (`gguf`, `apr`, `hf`).
    pub fn format_name(&self) -> &'static str {
        self.format().as_str()
    }

    /// The loader the file is written for.
    pub fn runtime(&self) -> Runtime {
        match &self.container {
            Container::Gguf(_) => Runtime::LlamaCpp,
            Container::Apr(_) => Runtime::Aprender,
            Container::Hf(_) => Runtime::Transformers,
        }
    }

    /// The naming schemes the file's tensor names may follow, in the order to try them: a GGUF
    /// names its tensors llama.cpp's way; an APR either way (upstream writes both).
    pub fn naming_schemes(&self) -> &'static [NamingScheme] {
        match &self.container {
            Container::Gguf(_) => &[NamingScheme::Gguf],
            Container::Apr(_) => &[NamingScheme::Hf, NamingScheme::Gguf],
            Container::Hf(_) => &[NamingScheme::Hf],
        }
    }

    /// The rotation the file's loader applies, given its architecture's (`arch_rope`): llama.cpp
    /// takes the architecture's; aprender the file's declared `rope_type` (else the architecture's);
    /// transformers always rotates NEOX (`rotate_half`).
    pub fn rope_rotation(&self, arch_rope: RopeType) -> RopeType {
        match self.runtime() {
            Runtime::LlamaCpp => arch_rope,
            Runtime::Transformers => RopeType::Neox,
            Runtime::Aprender => self
                .config
                .rope_type
                .as_ref()
                .and_then(|c| RopeType::from_code(c.value))
                .unwrap_or(arch_rope),
        }
    }

    /// The Q/K row order the file holds as stored, given its architecture's rotation and the order
    /// llama.cpp's converter writes for it (`converter_order`, the rules' `gguf_qk_order`): a GGUF
    /// holds the converter's order; an APR the order its declared rotation needs; a Hugging Face
    /// checkpoint Hugging Face order (the one NEOX rotates: no llama.cpp permutation).
    pub fn qk_order(&self, arch_rope: RopeType, converter_order: RopeType) -> RopeType {
        match self.runtime() {
            Runtime::LlamaCpp => converter_order,
            Runtime::Aprender | Runtime::Transformers => self.rope_rotation(arch_rope),
        }
    }

    /// The file can record a RoPE scaling `attn_factor` (APR metadata has no key for it).
    pub fn records_rope_attn_factor(&self) -> bool {
        self.runtime() == Runtime::LlamaCpp
    }

    /// The file's format has a tied-embeddings flag its loader reads (APR `tied_embeddings`,
    /// `config.json` `tie_word_embeddings`).
    pub fn has_tied_flag(&self) -> bool {
        self.tied_flag_key().is_some()
    }

    /// The key of that flag (None for a GGUF: llama.cpp ties when `output.weight` is absent).
    pub fn tied_flag_key(&self) -> Option<&'static str> {
        match self.runtime() {
            Runtime::LlamaCpp => None,
            Runtime::Aprender => Some("tied_embeddings"),
            Runtime::Transformers => Some("tie_word_embeddings"),
        }
    }

    /// With the flag set, the loader uses the embedding as the output matrix even when the file
    /// stores one (transformers' `tie_weights`): the stored output bytes are never read.
    pub fn tie_replaces_stored_head(&self) -> bool {
        self.runtime() == Runtime::Transformers
    }

    /// The file's Hugging Face `llama3` RoPE scaling, if it records one for a loader that runs it
    /// (in a GGUF llama.cpp refuses that type: `APRL-M013`).
    pub fn llama3_scaling(&self) -> Option<&RopeScaling> {
        if self.runtime() == Runtime::LlamaCpp {
            return None;
        }
        self.config
            .rope_scaling
            .as_ref()
            .map(|s| &s.value)
            .filter(|s| s.kind == "llama3")
    }

    /// The divisors the file's `llama3` `rope_scaling` stands for, for `hd`-wide heads (None without
    /// such scaling, or for a head wider than any model's).
    pub fn llama3_divisors(&self, hd: usize) -> Option<Vec<f32>> {
        if hd > 1 << 16 {
            return None;
        }
        self.llama3_scaling()?
            .llama3_factors(self.config.rope_base(), hd)
    }

    /// The text tokenizer of the file's vocabulary.
    pub fn text_tokenizer(&self) -> Result<TextTokenizer, TokenizeError> {
        match &self.container {
            Container::Hf(_) => match &self.hf_tokenizer {
                Some(t) => TextTokenizer::from_hf(t),
                None => Err(TokenizeError::NoTokenizer),
            },
            _ => TextTokenizer::from_container(&self.container),
        }
    }

    /// `text` as token ids, by the file's own tokenizer (built only for the pieces `text` needs).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, TokenizeError> {
        // In a batch, the ids another view of the same tokenizer records already made.
        match self.tokenized.get() {
            Some(shared) => shared.get_or(text, || self.tokenize_here(text)),
            None => self.tokenize_here(text),
        }
    }

    fn tokenize_here(&self, text: &str) -> Result<Vec<u32>, TokenizeError> {
        match &self.container {
            Container::Hf(_) => match &self.hf_tokenizer {
                Some(t) => TextTokenizer::tokenize_hf(t, text),
                None => Err(TokenizeError::NoTokenizer),
            },
            _ => match self.prompt_ids.get() {
                // Tokenized in the pass that scanned the lists (`tokenizer_scan_for`).
                Some((prompt, ids)) if prompt == text => ids.clone(),
                _ => TextTokenizer::tokenize_with(&self.container, &self.tokenizer, text),
            },
        }
    }

    /// The token strings, in id order.
    pub fn token_strings(&self) -> Vec<String> {
        match &self.container {
            Container::Hf(_) => self.hf_lists(|t| &t.tokens),
            _ => Tokenizer::tokens(&self.container),
        }
    }

    /// The merge list, in file order (empty for a vocabulary without merges).
    pub fn merge_strings(&self) -> Vec<String> {
        match &self.container {
            Container::Hf(_) => self.hf_lists(|t| &t.merges),
            _ => Tokenizer::merges(&self.container),
        }
    }

    fn hf_lists(&self, list: impl Fn(&HfTokenizer) -> &Vec<String>) -> Vec<String> {
        self.hf_tokenizer
            .as_deref()
            .map(|t| list(t).clone())
            .unwrap_or_default()
    }

    /// Read the config again from the records (what `open` did once; for benchmarks).
    pub fn read_config(&self) -> super::Config {
        super::Config::read(&self.container, &self.tensors)
    }

    /// Read the tokenizer summary again from the records (for benchmarks).
    pub fn read_tokenizer(&self) -> Tokenizer {
        match &self.container {
            Container::Hf(_) => self.tokenizer.clone(),
            _ => Tokenizer::read(&self.container),
        }
    }

    /// A fresh pass over the token and merge lists (what `tokenizer_scan` keeps; for benchmarks).
    pub fn scan_tokenizer(&self) -> TokenizerScan {
        match &self.container {
            Container::Hf(_) => {
                let t = self.hf_tokenizer.as_deref();
                let empty = Vec::new();
                TokenizerScan::of_lists(
                    t.map_or(&empty, |t| &t.tokens),
                    t.map_or(&empty, |t| &t.merges),
                )
            }
            _ => TokenizerScan::of(&self.container),
        }
    }

    /// Fingerprint and length of the token list (`merges`: the merge list) without the scan.
    pub fn tokenizer_fingerprint(&self, merges: bool) -> (u64, u64) {
        match &self.container {
            Container::Hf(_) => {
                let list = self.hf_lists(|t| if merges { &t.merges } else { &t.tokens });
                (super::tokenizer::fingerprint(&list), list.len() as u64)
            }
            _ => fingerprint_of(&self.container, merges),
        }
    }

    /// Check the footer CRC over every byte and return it (for benchmarks; does not record a
    /// finding). None when the file has no footer to check.
    pub fn footer_crc_check(&self) -> Option<bool> {
        match &self.container {
            Container::Apr(a) => Some(a.verify_footer() == crate::format::apr::Footer::Valid),
            Container::Gguf(_) | Container::Hf(_) => None,
        }
    }

    /// The footer CRC's state as the reader left it: `absent`, `valid`, `invalid` or `unverified`
    /// (an APR above the size the reader checks); None for a format without a footer.
    pub fn footer_state(&self) -> Option<&'static str> {
        use crate::format::apr::Footer;
        match &self.container {
            Container::Apr(a) => Some(match a.footer {
                Footer::Absent => "absent",
                Footer::Valid => "valid",
                Footer::Invalid { .. } => "invalid",
                Footer::Unverified => "unverified",
            }),
            Container::Gguf(_) | Container::Hf(_) => None,
        }
    }

    /// For a footer the reader left unverified: the length of the body it covers (every byte but
    /// the last four) and the CRC stored in those four. None otherwise.
    pub fn unverified_footer(&self) -> Option<(u64, u32)> {
        if self.footer_state() != Some("unverified") {
            return None;
        }
        let bytes = self.source().bytes();
        let n = bytes.len();
        if n < 4 {
            return None;
        }
        let stored = u32::from_le_bytes(bytes[n - 4..].try_into().ok()?);
        Some((n as u64 - 4, stored))
    }
}
