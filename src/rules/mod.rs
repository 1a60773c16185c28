//! The declarative rule set: one TOML file per architecture (`rules/`), compiled into the binary and
//! loadable from a directory (`--rules DIR`). A rule file states how each tensor role is named in
//! both formats, whether it is per-layer and required, its canonical `[out, in]` dims as formulas of
//! the config, the RoPE row order of GGUF Q/K, and default numeric tolerances.
//!
//! Takes TOML text; returns a validated `RuleSet` that checks can trust, or `RuleError`s pointing at
//! TOML lines. `resolve` maps a `ModelView`'s tensor names to (role, layer) and evaluates formulas.
//! Must not read tensor data or print.

// The rule engine's parts: used by the stages, reports and tests; not part of the documented API.
#[doc(hidden)]
pub mod formula;
#[doc(hidden)]
pub mod lints;
#[doc(hidden)]
pub mod resolve;
#[doc(hidden)]
pub mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diag::Lint;
use crate::model::RopeType;
use crate::quant::DType;
use formula::Expr;
pub use resolve::{Resolved, TensorRole};
pub use schema::ToleranceDef;

/// The rule files shipped in the binary.
pub const BUILTIN: &[(&str, &str)] = &[
    ("llama.toml", include_str!("../../rules/llama.toml")),
    ("mistral.toml", include_str!("../../rules/mistral.toml")),
    ("qwen2.toml", include_str!("../../rules/qwen2.toml")),
    ("qwen3.toml", include_str!("../../rules/qwen3.toml")),
];

/// A problem in a rule file, with its line.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleError {
    /// The rule-file lint (`APRL-R…`).
    pub lint: &'static Lint,
    /// The rule file.
    pub file: PathBuf,
    /// The line, where one is known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for RuleError {}

impl miette::Diagnostic for RuleError {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(self.lint.code))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(
            "see the rule schema in the README, or `apr-lint rules --arch qwen2` for a complete example",
        ))
    }
}

/// A name template: `blk.{i}.attn_q.weight` split at `{i}`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Template {
    /// The template as written (`blk.{i}.attn_q.weight`).
    pub text: String,
    #[serde(skip)]
    prefix: String,
    #[serde(skip)]
    suffix: Option<String>,
}

impl Template {
    fn new(text: &str) -> Template {
        match text.split_once("{i}") {
            Some((p, s)) => Template {
                text: text.into(),
                prefix: p.into(),
                suffix: Some(s.into()),
            },
            None => Template {
                text: text.into(),
                prefix: text.into(),
                suffix: None,
            },
        }
    }
    /// Whether it has an `{i}` (one tensor per layer).
    pub fn is_per_layer(&self) -> bool {
        self.suffix.is_some()
    }
    /// `Some(None)` for a global match, `Some(Some(i))` for layer i.
    pub fn matches(&self, name: &str) -> Option<Option<u32>> {
        match &self.suffix {
            None => (name == self.prefix).then_some(None),
            Some(suf) => {
                let mid = name
                    .strip_prefix(self.prefix.as_str())?
                    .strip_suffix(suf.as_str())?;
                if mid.is_empty()
                    || !mid.bytes().all(|b| b.is_ascii_digit())
                    || (mid.len() > 1 && mid.starts_with('0'))
                {
                    return None;
                }
                mid.parse().ok().map(Some)
            }
        }
    }
    /// The tensor name for `layer` (`{i}` replaced; a global template as is).
    pub fn instantiate(&self, layer: Option<u32>) -> String {
        match (&self.suffix, layer) {
            (Some(s), Some(i)) => format!("{}{i}{s}", self.prefix),
            _ => self.text.clone(),
        }
    }
}

/// One tensor role of an architecture (`attn_q`, `token_embd` …): its names, dims and tolerances.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Role {
    /// The TOML role key (`attn_q`).
    pub key: String,
    /// One tensor per layer (the templates have `{i}`).
    pub per_layer: bool,
    /// A file without it is a finding.
    pub required: bool,
    /// Name templates in llama.cpp's scheme (`blk.{i}.attn_q.weight`).
    pub gguf: Vec<Template>,
    /// Name templates in Hugging Face's scheme (`model.layers.{i}.self_attn.q_proj.weight`).
    pub hf: Vec<Template>,
    /// Formula text, canonical order.
    pub dims: Vec<String>,
    /// The `dims` formulas, parsed.
    #[serde(skip)]
    pub dims_expr: Vec<Expr>,
    /// `n_head` or `n_head_kv` when the rows are RoPE-ordered per head.
    pub rope_rows: Option<String>,
    /// The role whose tensor this one may share (a tied output matrix).
    pub tied_to: Option<String>,
    /// Per-dtype tolerances of this role, overriding the architecture's.
    pub tolerance: BTreeMap<String, ToleranceDef>,
    /// Line of the role's table in its rule file.
    pub line: usize,
}

/// The rules of one architecture (one TOML file).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Arch {
    /// Its name (`qwen2`).
    pub arch: String,
    /// Other names files use for it (GGUF `general.architecture`, APR `architecture`, HF class).
    pub names: Vec<String>,
    /// The RoPE rotation its loaders apply.
    pub rope_type: RopeType,
    /// The Q/K row order llama.cpp's converter writes into a GGUF of it.
    pub gguf_qk_order: RopeType,
    /// Config formulas as written, by symbol.
    pub config: BTreeMap<String, String>,
    /// The same, parsed.
    #[serde(skip)]
    pub config_expr: BTreeMap<String, Expr>,
    /// Its tensor roles, in file order.
    pub roles: Vec<Role>,
    /// Per-dtype tolerances of the weight comparison (by dtype name).
    pub tolerance: BTreeMap<String, ToleranceDef>,
    /// The rule file it was read from.
    pub file: PathBuf,
}

impl Role {
    /// The role's name templates for a file whose names follow `naming` (its schemes, in order).
    pub fn templates<'a>(
        &'a self,
        naming: &'a [crate::model::NamingScheme],
    ) -> impl Iterator<Item = &'a Template> + 'a {
        naming
            .iter()
            .flat_map(move |n| self.templates_of(*n).iter())
    }
    /// The role's name templates in one naming scheme.
    pub fn templates_of(&self, scheme: crate::model::NamingScheme) -> &[Template] {
        match scheme {
            crate::model::NamingScheme::Gguf => &self.gguf,
            crate::model::NamingScheme::Hf => &self.hf,
        }
    }
}

impl Arch {
    /// The rotation `v`'s loader applies under this architecture.
    pub fn rope_of(&self, v: &crate::model::ModelView) -> RopeType {
        v.rope_rotation(self.rope_type)
    }
    /// The Q/K row order `v` holds as stored under this architecture.
    pub fn qk_order_of(&self, v: &crate::model::ModelView) -> RopeType {
        v.qk_order(self.rope_type, self.gguf_qk_order)
    }
    /// The role with TOML key `key`.
    pub fn role(&self, key: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.key == key)
    }
    /// The tolerance for a dtype (role override first).
    pub fn tolerance_for(&self, role: Option<&Role>, dtype: DType) -> Option<ToleranceDef> {
        role.and_then(|r| r.tolerance.get(dtype.name()).copied())
            .or_else(|| self.tolerance.get(dtype.name()).copied())
    }
}

/// Every architecture's rules: the built-in set (`RuleSet::builtin()`) or a `--rules DIR`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RuleSet {
    /// One entry per rule file.
    pub archs: Vec<Arch>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map(|s| s.matches('\n').count() + 1)
        .unwrap_or(1)
}

fn parse_rope(
    s: &toml::Spanned<String>,
    text: &str,
    file: &Path,
    errs: &mut Vec<RuleError>,
    what: &str,
) -> RopeType {
    match s.get_ref().as_str() {
        "norm" => RopeType::Norm,
        "neox" => RopeType::Neox,
        other => {
            errs.push(RuleError {
                lint: &lints::BAD_VALUE,
                file: file.into(),
                line: Some(line_of(text, s.span().start)),
                message: format!("`{what}` is `{other}`; expected `norm` or `neox`"),
            });
            RopeType::Norm
        }
    }
}

impl RuleSet {
    /// The rule files compiled into the binary.
    pub fn builtin() -> RuleSet {
        let files: Vec<(PathBuf, String)> = BUILTIN
            .iter()
            .map(|(n, t)| (PathBuf::from(format!("rules/{n}")), t.to_string()))
            .collect();
        // The built-in files are tested; a failure here is a bug in a shipped rule file.
        Self::from_texts(&files).expect("built-in rule files are valid (tested in rules_file.rs)")
    }

    /// Every `*.toml` in `dir`, in name order.
    pub fn from_dir(dir: &Path) -> Result<RuleSet, Vec<RuleError>> {
        let err = |m: String| {
            vec![RuleError {
                lint: &lints::SYNTAX,
                file: dir.into(),
                line: None,
                message: m,
            }]
        };
        let rd =
            std::fs::read_dir(dir).map_err(|e| err(format!("cannot read rule directory: {e}")))?;
        let mut paths: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(err("no *.toml rule files in this directory".into()));
        }
        let mut files = Vec::new();
        for p in paths {
            let t = std::fs::read_to_string(&p).map_err(|e| {
                vec![RuleError {
                    lint: &lints::SYNTAX,
                    file: p.clone(),
                    line: None,
                    message: format!("cannot read: {e}"),
                }]
            })?;
            files.push((p, t));
        }
        Self::from_texts(&files)
    }

    /// Parse and validate rule files; every problem is reported with its line.
    pub fn from_texts(files: &[(PathBuf, String)]) -> Result<RuleSet, Vec<RuleError>> {
        let mut errs = Vec::new();
        let mut archs: Vec<Arch> = Vec::new();
        for (file, text) in files {
            match toml::from_str::<schema::RuleFile>(text) {
                Err(e) => errs.push(RuleError {
                    lint: &lints::SYNTAX,
                    file: file.clone(),
                    line: e.span().map(|s| line_of(text, s.start)),
                    message: e.message().trim().to_string(),
                }),
                Ok(rf) => {
                    if let Some(a) = validate(rf, text, file, &mut errs) {
                        if let Some(prev) = archs.iter().find(|p| {
                            p.arch == a.arch || p.names.iter().any(|n| a.names.contains(n))
                        }) {
                            errs.push(RuleError {
                                lint: &lints::BAD_VALUE,
                                file: file.clone(),
                                line: Some(1),
                                message: format!("architecture `{}` (or one of its names) is already defined in {}", a.arch, prev.file.display()),
                            });
                        }
                        archs.push(a);
                    }
                }
            }
        }
        if errs.is_empty() {
            Ok(RuleSet { archs })
        } else {
            Err(errs)
        }
    }

    /// The rule set for an architecture name (GGUF `general.architecture`, APR `architecture`, HF class).
    pub fn arch(&self, name: &str) -> Option<&Arch> {
        self.archs
            .iter()
            .find(|a| a.arch == name || a.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
    }

    /// The architectures' names, in order.
    pub fn arch_names(&self) -> Vec<&str> {
        self.archs.iter().map(|a| a.arch.as_str()).collect()
    }
}

fn validate(
    rf: schema::RuleFile,
    text: &str,
    file: &Path,
    errs: &mut Vec<RuleError>,
) -> Option<Arch> {
    let n0 = errs.len();
    let line = |off: usize| Some(line_of(text, off));
    let known: Vec<&str> = formula::SYMBOLS.iter().map(|(s, _)| *s).collect();
    let check_formula = |f: &toml::Spanned<String>, errs: &mut Vec<RuleError>| -> Option<Expr> {
        match Expr::parse(f.get_ref()) {
            Err(m) => {
                errs.push(RuleError {
                    lint: &lints::FORMULA,
                    file: file.into(),
                    line: line(f.span().start),
                    message: format!("formula `{}`: {m}", f.get_ref()),
                });
                None
            }
            Ok(e) => {
                let mut syms = Vec::new();
                e.symbols(&mut syms);
                for s in syms {
                    if !known.contains(&s.as_str()) {
                        errs.push(RuleError {
                            lint: &lints::FORMULA,
                            file: file.into(),
                            line: line(f.span().start),
                            message: format!(
                                "formula `{}` uses `{s}`, which is not a known symbol ({})",
                                f.get_ref(),
                                known.join(", ")
                            ),
                        });
                        return None;
                    }
                }
                Some(e)
            }
        }
    };
    let rope_type = parse_rope(&rf.rope_type, text, file, errs, "rope_type");
    let gguf_qk_order = parse_rope(&rf.gguf_qk_order, text, file, errs, "gguf_qk_order");
    let mut config = BTreeMap::new();
    let mut config_expr = BTreeMap::new();
    for (k, v) in &rf.config {
        if !known.contains(&k.as_str()) {
            errs.push(RuleError {
                lint: &lints::BAD_VALUE,
                file: file.into(),
                line: line(v.span().start),
                message: format!(
                    "[config] key `{k}` is not a known symbol ({})",
                    known.join(", ")
                ),
            });
            continue;
        }
        if let Some(e) = check_formula(v, errs) {
            config.insert(k.clone(), v.get_ref().clone());
            config_expr.insert(k.clone(), e);
        }
    }
    let tol = |m: &BTreeMap<String, toml::Spanned<ToleranceDef>>,
               errs: &mut Vec<RuleError>|
     -> BTreeMap<String, ToleranceDef> {
        let mut out = BTreeMap::new();
        for (k, v) in m {
            match DType::from_name(k) {
                Some(d) => {
                    out.insert(d.name().to_string(), *v.get_ref());
                }
                None => errs.push(RuleError {
                    lint: &lints::BAD_VALUE,
                    file: file.into(),
                    line: line(v.span().start),
                    message: format!("[tolerance] `{k}` is not a dtype name"),
                }),
            }
        }
        out
    };
    let tolerance = tol(&rf.tolerance, errs);
    let mut roles = Vec::new();
    for (key, def) in &rf.roles {
        let role_line = line_of(text, def.span().start);
        let d = def.get_ref();
        // A scheme may have no name for a role (Hugging Face stores no `rope_freqs`); a role with
        // no name in any scheme can match nothing.
        if d.gguf.is_empty() && d.hf.is_empty() {
            errs.push(RuleError {
                lint: &lints::BAD_VALUE,
                file: file.into(),
                line: Some(role_line),
                message: format!("role `{key}` has no name template (`gguf` and `hf` are empty)"),
            });
        }
        let templates =
            |list: &Vec<toml::Spanned<String>>, errs: &mut Vec<RuleError>| -> Vec<Template> {
                list.iter()
                    .map(|t| {
                        let tp = Template::new(t.get_ref());
                        if tp.is_per_layer() != d.per_layer {
                            errs.push(RuleError {
                            lint: &lints::BAD_VALUE,
                            file: file.into(),
                            line: line(t.span().start),
                            message: if d.per_layer {
                                format!(
                                    "role `{key}` is per_layer but template `{}` has no `{{i}}`",
                                    t.get_ref()
                                )
                            } else {
                                format!(
                                    "template `{}` has `{{i}}` but role `{key}` is not per_layer",
                                    t.get_ref()
                                )
                            },
                        });
                        }
                        tp
                    })
                    .collect()
            };
        let gguf = templates(&d.gguf, errs);
        let hf = templates(&d.hf, errs);
        let dims_expr: Vec<Expr> = d
            .dims
            .get_ref()
            .iter()
            .filter_map(|f| check_formula(f, errs))
            .collect();
        if d.dims.get_ref().is_empty() {
            errs.push(RuleError {
                lint: &lints::BAD_VALUE,
                file: file.into(),
                line: line(d.dims.span().start),
                message: format!("role `{key}` has empty dims"),
            });
        }
        if let Some(r) = &d.rope_rows
            && !matches!(r.get_ref().as_str(), "n_head" | "n_head_kv")
        {
            errs.push(RuleError {
                lint: &lints::BAD_VALUE,
                file: file.into(),
                line: line(r.span().start),
                message: format!(
                    "rope_rows is `{}`; expected `n_head` or `n_head_kv`",
                    r.get_ref()
                ),
            });
        }
        if let Some(t) = &d.tied_to
            && !rf.roles.contains_key(t.get_ref())
        {
            errs.push(RuleError {
                lint: &lints::BAD_VALUE,
                file: file.into(),
                line: line(t.span().start),
                message: format!(
                    "tied_to names `{}`, which is not a role of this file",
                    t.get_ref()
                ),
            });
        }
        roles.push(Role {
            key: key.clone(),
            per_layer: d.per_layer,
            required: d.required,
            gguf,
            hf,
            dims: d
                .dims
                .get_ref()
                .iter()
                .map(|s| s.get_ref().clone())
                .collect(),
            dims_expr,
            rope_rows: d.rope_rows.as_ref().map(|s| s.get_ref().clone()),
            tied_to: d.tied_to.as_ref().map(|s| s.get_ref().clone()),
            tolerance: tol(&d.tolerance, errs),
            line: role_line,
        });
    }
    roles.sort_by_key(|r| r.line);
    if errs.len() > n0 {
        return None;
    }
    Some(Arch {
        arch: rf.arch.get_ref().clone(),
        names: rf.names.iter().map(|s| s.get_ref().clone()).collect(),
        rope_type,
        gguf_qk_order,
        config,
        config_expr,
        roles,
        tolerance,
        file: file.into(),
    })
}

impl RuleSet {
    /// The same tensor's name in the other naming scheme (GGUF ↔ Hugging Face), from the roles' name
    /// templates: `blk.0.attn_q.weight` → `model.layers.0.self_attn.q_proj.weight` (and back).
    pub fn other_scheme_names(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        for a in &self.archs {
            for r in &a.roles {
                for (from, to) in [(&r.gguf, &r.hf), (&r.hf, &r.gguf)] {
                    for layer in from.iter().filter_map(|t| t.matches(name)) {
                        for u in to {
                            let n = u.instantiate(layer);
                            if n != name && !out.contains(&n) {
                                out.push(n);
                            }
                        }
                    }
                }
            }
        }
        out
    }
}
