//! Rule-file lints (`APRL-R…`): problems in a `rules/*.toml` file. They stop the run (exit 2) and
//! point at the TOML line.

use crate::diag::Lint;

use crate::diag::lint;

lint!(SYNTAX, "APRL-R001", "container", Error, "a rule file is not valid TOML or has an unknown or missing key",
"What it catches: TOML syntax errors, keys the rule schema does not know (typos such as `per_layers`), required keys that are missing, and values of the wrong type.
Why it matters: a silently ignored key would make a rule check less than its author meant.
How to fix: compare with the schema in the README (`apr-lint rules --arch qwen2` shows a complete example).
Precedent: —");

lint!(FORMULA, "APRL-R002", "container", Error, "a dims formula does not parse or names an unknown symbol",
"What it catches: a formula in `dims` or `[config]` that is not `+ - * /` over integers and the known symbols (hidden, n_layer, n_head, n_head_kv, head_dim, vocab, ffn).
Why it matters: the rule could not be evaluated for any model.
How to fix: fix the formula; `apr-lint rules` lists the symbols.
Precedent: —");

lint!(BAD_VALUE, "APRL-R003", "container", Error, "a rule value is not one of the allowed ones",
"What it catches: a `rope_type` or `gguf_qk_order` other than `norm`/`neox`, a `rope_rows` other than `n_head`/`n_head_kv`, a per-layer template without `{i}`, a `tied_to` naming no role, an unknown dtype in `[tolerance]`, an architecture defined twice.
Why it matters: the rule set would be ambiguous.
How to fix: use one of the values the README lists.
Precedent: —");

pub static ALL: &[&Lint] = &[&SYNTAX, &FORMULA, &BAD_VALUE];
