//! Name → role resolution and formula evaluation for one file.

use std::collections::BTreeMap;

use crate::model::{Config, ModelView};
use crate::rules::formula::EvalError;
use crate::rules::{Arch, Role, RuleSet};

/// The role a tensor plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorRole {
    /// Index into `Arch::roles`.
    pub role: usize,
    pub layer: Option<u32>,
}

/// A file seen through its architecture's rules.
#[derive(Clone, Debug)]
pub struct Resolved<'r> {
    pub arch: Option<&'r Arch>,
    /// Config symbols with known values (`hidden`, `n_head`, …), derived ones included.
    pub env: BTreeMap<&'static str, u64>,
    /// Per tensor of the view (same order): its role, if any template claims it.
    pub roles: Vec<Option<TensorRole>>,
}

impl<'r> Resolved<'r> {
    pub fn new(view: &ModelView, rules: &'r RuleSet) -> Resolved<'r> {
        let arch = view.config.arch().and_then(|a| rules.arch(a));
        let env = env_of(&view.config, arch, None);
        let roles = match arch {
            None => vec![None; view.tensors.len()],
            Some(a) => view
                .tensors
                .iter()
                .map(|t| resolve_name(a, view.naming_schemes(), &t.name))
                .collect(),
        };
        Resolved { arch, env, roles }
    }

    pub fn role_of(&self, i: usize) -> Option<(&'r Role, Option<u32>)> {
        let a = self.arch?;
        let tr = self.roles.get(i).copied().flatten()?;
        a.roles.get(tr.role).map(|r| (r, tr.layer))
    }

    /// Index of the tensor holding `role` in `layer`.
    pub fn find(&self, role_key: &str, layer: Option<u32>) -> Option<usize> {
        let a = self.arch?;
        let ri = a.roles.iter().position(|r| r.key == role_key)?;
        self.roles
            .iter()
            .position(|x| matches!(x, Some(tr) if tr.role == ri && tr.layer == layer))
    }

    /// The role's canonical dims for this file's config.
    pub fn expected_dims(&self, role: &Role) -> Result<Vec<u64>, EvalError> {
        role.dims_expr.iter().map(|e| e.eval(&self.env)).collect()
    }

    pub fn n_layers(&self) -> Option<u64> {
        self.env.get("n_layer").copied()
    }
}

/// The config symbols of `c` (derived ones included); `replace` sets one stated symbol to another
/// value first (what-if: which head count would the tensor shapes agree on).
pub fn env_of(
    c: &Config,
    arch: Option<&Arch>,
    replace: Option<(&'static str, u64)>,
) -> BTreeMap<&'static str, u64> {
    let mut env: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut put = |k: &'static str, v: Option<u64>| {
        let v = match replace {
            Some((r, x)) if r == k => Some(x),
            _ => v,
        };
        if let Some(v) = v {
            env.insert(k, v);
        }
    };
    put("hidden", c.hidden.as_ref().map(|v| v.value));
    put("n_layer", c.layers.as_ref().map(|v| v.value));
    put("n_head", c.heads.as_ref().map(|v| v.value));
    let n_head = match replace {
        Some(("n_head", x)) => Some(x),
        _ => c.heads.as_ref().map(|v| v.value),
    };
    put("n_head_kv", c.kv_heads.as_ref().map(|v| v.value).or(n_head));
    put(
        "head_dim",
        c.head_dim
            .as_ref()
            .filter(|v| !v.key.starts_with("derived"))
            .map(|v| v.value),
    );
    put("vocab", c.vocab.as_ref().map(|v| v.value));
    put("ffn", c.ffn.as_ref().map(|v| v.value));
    if let Some(a) = arch {
        for (k, e) in &a.config_expr {
            let Some(sym) = crate::rules::formula::SYMBOLS
                .iter()
                .map(|(s, _)| *s)
                .find(|s| s == k)
            else {
                continue;
            };
            if !env.contains_key(sym)
                && let Ok(v) = e.eval(&env)
            {
                env.insert(sym, v);
            }
        }
    }
    env
}

/// The role and layer a tensor name plays under an architecture's templates for the naming
/// schemes `naming` (a file's `ModelView::naming_schemes`).
pub fn resolve_name(
    arch: &Arch,
    naming: &[crate::model::NamingScheme],
    name: &str,
) -> Option<TensorRole> {
    for (ri, r) in arch.roles.iter().enumerate() {
        for t in r.templates(naming) {
            if let Some(layer) = t.matches(name) {
                return Some(TensorRole { role: ri, layer });
            }
        }
    }
    None
}
