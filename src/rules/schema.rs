//! The on-disk shape of a rule file (`rules/<arch>.toml`), deserialized strictly
//! (`deny_unknown_fields`) with spans kept where a later validation error must point.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The rule set's name (`qwen2`).
    pub arch: Spanned<String>,
    /// Architecture names that select this rule set: GGUF `general.architecture`, APR
    /// `architecture`, Hugging Face class names.
    #[serde(default)]
    pub names: Vec<Spanned<String>>,
    /// The rotation the architecture's reference (GGUF) runtime applies: `norm` or `neox`.
    pub rope_type: Spanned<String>,
    /// The row order of Q/K in GGUF files of this architecture: `norm` (llama.cpp permuted the rows
    /// per head) or `neox` (Hugging Face order).
    pub gguf_qk_order: Spanned<String>,
    /// Derived config quantities used when a file does not give them: `head_dim = "hidden / n_head"`.
    #[serde(default)]
    pub config: BTreeMap<String, Spanned<String>>,
    pub roles: BTreeMap<String, Spanned<RoleDef>>,
    /// Default numeric tolerances per dtype name.
    #[serde(default)]
    pub tolerance: BTreeMap<String, Spanned<ToleranceDef>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    /// One tensor per block (`{i}` in the templates is the block index).
    #[serde(default)]
    pub per_layer: bool,
    /// Must be present (in every block when per-layer). Default true.
    #[serde(default = "yes")]
    pub required: bool,
    /// Name templates in llama.cpp's naming scheme (`blk.{i}.…`): GGUF files, and APR files
    /// converted with GGUF names.
    pub gguf: Vec<Spanned<String>>,
    /// Name templates in Hugging Face's naming scheme (`model.layers.{i}.…`): APR files converted
    /// from a Hugging Face checkpoint. Empty for a tensor Hugging Face does not store.
    pub hf: Vec<Spanned<String>>,
    /// Canonical dims `[out, in]` (outermost first) as formulas of the config.
    pub dims: Spanned<Vec<Spanned<String>>>,
    /// Q/K rows ordered for RoPE per head: `n_head` (Q) or `n_head_kv` (K).
    pub rope_rows: Option<Spanned<String>>,
    /// This role may be absent when tied to another (lm_head ↔ embedding).
    pub tied_to: Option<Spanned<String>>,
    /// Tolerance overrides for this role.
    #[serde(default)]
    pub tolerance: BTreeMap<String, Spanned<ToleranceDef>>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ToleranceDef {
    /// Largest normalised mean squared error: sum((a-b)²) / sum(b²).
    pub nmse: f64,
    /// Smallest cosine similarity.
    pub cosine: f64,
}
