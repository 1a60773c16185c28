//! Dimension formulas: `n_head * head_dim`, `hidden / n_head`, `(ffn + 255) / 256 * 256`.
//! Integers, symbols, `+ - * /` (integer division, exact only), parentheses.

use std::collections::BTreeMap;

/// The symbols a formula may use, and their meaning.
pub const SYMBOLS: &[(&str, &str)] = &[
    (
        "hidden",
        "embedding width (GGUF `<arch>.embedding_length`, APR `hidden_size`)",
    ),
    (
        "n_layer",
        "number of blocks (`<arch>.block_count`, `num_layers`)",
    ),
    (
        "n_head",
        "attention heads (`<arch>.attention.head_count`, `num_heads`)",
    ),
    (
        "n_head_kv",
        "key/value heads (`<arch>.attention.head_count_kv`, `num_kv_heads`)",
    ),
    (
        "head_dim",
        "per-head width (`<arch>.attention.key_length`, `head_dim`; else the [config] rule)",
    ),
    (
        "vocab",
        "vocabulary size (`<arch>.vocab_size` or the token list, `vocab_size`)",
    ),
    (
        "ffn",
        "feed-forward width (`<arch>.feed_forward_length`, `intermediate_size`)",
    ),
];

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Num(u64),
    Sym(String),
    Bin(Box<Expr>, char, Box<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum EvalError {
    Missing(String),
    Inexact { num: u64, den: u64 },
    Overflow,
    DivZero,
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvalError::Missing(s) => write!(f, "`{s}` is not known for this file"),
            EvalError::Inexact { num, den } => write!(f, "{num} is not divisible by {den}"),
            EvalError::Overflow => f.write_str("overflow"),
            EvalError::DivZero => f.write_str("division by zero"),
        }
    }
}

impl Expr {
    pub fn parse(s: &str) -> Result<Expr, String> {
        let toks = lex(s)?;
        // Bounded so that parsing, evaluating and dropping the tree cannot exhaust the stack.
        if toks.len() > MAX_TOKENS {
            return Err(format!(
                "formula has {} tokens; at most {MAX_TOKENS} are allowed",
                toks.len()
            ));
        }
        let mut p = Parser {
            toks,
            pos: 0,
            depth: 0,
        };
        let e = p.sum()?;
        if p.pos != p.toks.len() {
            return Err(format!("unexpected `{}` in `{s}`", p.toks[p.pos]));
        }
        Ok(e)
    }

    pub fn symbols(&self, out: &mut Vec<String>) {
        match self {
            Expr::Num(_) => {}
            Expr::Sym(s) => out.push(s.clone()),
            Expr::Bin(a, _, b) => {
                a.symbols(out);
                b.symbols(out);
            }
        }
    }

    pub fn eval(&self, env: &BTreeMap<&str, u64>) -> Result<u64, EvalError> {
        match self {
            Expr::Num(n) => Ok(*n),
            Expr::Sym(s) => env
                .get(s.as_str())
                .copied()
                .ok_or_else(|| EvalError::Missing(s.clone())),
            Expr::Bin(a, op, b) => {
                let (x, y) = (a.eval(env)?, b.eval(env)?);
                match op {
                    '+' => x.checked_add(y).ok_or(EvalError::Overflow),
                    '-' => x.checked_sub(y).ok_or(EvalError::Overflow),
                    '*' => x.checked_mul(y).ok_or(EvalError::Overflow),
                    _ => {
                        if y == 0 {
                            Err(EvalError::DivZero)
                        } else if x % y != 0 {
                            Err(EvalError::Inexact { num: x, den: y })
                        } else {
                            Ok(x / y)
                        }
                    }
                }
            }
        }
    }
}

impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expr::Num(n) => write!(f, "{n}"),
            Expr::Sym(s) => f.write_str(s),
            Expr::Bin(a, op, b) => write!(f, "({a} {op} {b})"),
        }
    }
}

fn lex(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if "+-*/()".contains(c) {
            out.push(c.to_string());
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let st = i;
            while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '_') {
                i += 1;
            }
            out.push(cs[st..i].iter().collect());
        } else {
            return Err(format!("unexpected character `{c}` in `{s}`"));
        }
    }
    if out.is_empty() {
        return Err("empty formula".into());
    }
    Ok(out)
}

/// Longest formula, in tokens, and deepest parenthesis nesting.
const MAX_TOKENS: usize = 256;
const MAX_DEPTH: usize = 32;

struct Parser {
    toks: Vec<String>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.pos).map(|s| s.as_str())
    }
    fn sum(&mut self) -> Result<Expr, String> {
        let mut e = self.product()?;
        while let Some(op @ ("+" | "-")) = self.peek() {
            let op = op.chars().next().unwrap_or('+');
            self.pos += 1;
            e = Expr::Bin(Box::new(e), op, Box::new(self.product()?));
        }
        Ok(e)
    }
    fn product(&mut self) -> Result<Expr, String> {
        let mut e = self.atom()?;
        while let Some(op @ ("*" | "/")) = self.peek() {
            let op = op.chars().next().unwrap_or('*');
            self.pos += 1;
            e = Expr::Bin(Box::new(e), op, Box::new(self.atom()?));
        }
        Ok(e)
    }
    fn atom(&mut self) -> Result<Expr, String> {
        let t = self.peek().ok_or("formula ends too early")?.to_owned();
        self.pos += 1;
        if t == "(" {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(format!("parentheses nested deeper than {MAX_DEPTH}"));
            }
            let e = self.sum()?;
            self.depth -= 1;
            if self.peek() != Some(")") {
                return Err("missing `)`".into());
            }
            self.pos += 1;
            return Ok(e);
        }
        if let Ok(n) = t.parse::<u64>() {
            return Ok(Expr::Num(n));
        }
        if t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        {
            return Ok(Expr::Sym(t));
        }
        Err(format!("unexpected `{t}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parses_and_evaluates() {
        let env: BTreeMap<&str, u64> = [("n_head", 12), ("head_dim", 128), ("hidden", 1536)].into();
        assert_eq!(
            Expr::parse("n_head * head_dim").unwrap().eval(&env),
            Ok(1536)
        );
        assert_eq!(Expr::parse("hidden / n_head").unwrap().eval(&env), Ok(128));
        assert_eq!(
            Expr::parse("(hidden + 64) / 2 - 1").unwrap().eval(&env),
            Ok(799)
        );
        assert_eq!(
            Expr::parse("hidden / 7").unwrap().eval(&env),
            Err(EvalError::Inexact { num: 1536, den: 7 })
        );
        assert!(Expr::parse("hidden *").is_err());
        assert!(Expr::parse("hidden $ 2").is_err());
        assert!(Expr::parse("(hidden").is_err());
        assert!(
            Expr::parse(&format!(
                "{}hidden{}",
                "(".repeat(100_000),
                ")".repeat(100_000)
            ))
            .is_err()
        );
        assert!(Expr::parse(&vec!["hidden"; 100_000].join(" + ")).is_err());
    }
}
