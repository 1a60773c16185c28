//! `apr-lint.toml` and the severity overrides: the config file found (or given), its
//! `deny/warn/allow` lists with the line each entry is on, and `-D/-W/-A`, every word checked
//! against the registry. Never prints; a problem is a coded `Finding` (exit 2 for the caller).

use std::path::{Path, PathBuf};

use crate::diag::{Finding, Severity};
use crate::registry;
use crate::tool::UNKNOWN_CODE;

/// A severity override: `-D`/`deny`, `-W`/`warn`, `-A`/`allow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Override {
    /// Make the code's findings errors.
    Deny,
    /// Make the code's findings warnings.
    Warn,
    /// Drop the code's findings (they are listed under `allowed` in JSON).
    Allow,
}

/// The config file in force: its path and how many codes it denies, warns and allows.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConfigInfo {
    /// The path as shown (`./apr-lint.toml`).
    pub path: String,
    /// How many codes or classes it denies.
    pub deny: usize,
    /// How many it warns.
    pub warn: usize,
    /// How many it allows.
    pub allow: usize,
}

impl ConfigInfo {
    /// `./apr-lint.toml (2 allows)`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (n, what) in [
            (self.deny, "deny"),
            (self.warn, "warn"),
            (self.allow, "allow"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}{}", if n == 1 { "" } else { "s" }));
            }
        }
        if parts.is_empty() {
            parts.push("no severity overrides".into());
        }
        format!("{} ({})", self.path, parts.join(", "))
    }
}

/// A config problem: one coded finding (boxed: it is large).
pub type Error = Box<Finding>;

/// Severity overrides in order (later wins) and, for each, where it came from.
pub type Overrides = (Vec<(String, Override)>, Vec<String>);

/// Settings from `apr-lint.toml`: `deny/warn/allow = ["CODE", …]`, `rules = "DIR"`.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    rules: Option<PathBuf>,
    #[serde(default)]
    deny: Vec<toml::Spanned<String>>,
    #[serde(default)]
    warn: Vec<toml::Spanned<String>>,
    #[serde(default)]
    allow: Vec<toml::Spanned<String>>,
    /// `[[pair]] test = "out/model.apr" reference = "src/model.gguf"` (batch mode).
    #[serde(default)]
    pair: Vec<toml::Spanned<PairEntry>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PairEntry {
    test: PathBuf,
    reference: PathBuf,
}

/// A pair declared in the config: the file under test and its reference, both relative to the
/// config file's directory, and where it was declared (`./apr-lint.toml line 4`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclaredPair {
    /// The file under test.
    pub test: PathBuf,
    /// Its reference.
    pub reference: PathBuf,
    /// Where the pair was declared (`./apr-lint.toml line 4`).
    pub origin: String,
}

/// A config file that was read: where it is, its rule directory and its overrides, each with the
/// origin `-A`-style reports name (`./apr-lint.toml line 3 (`allow` "APRL-N020")`).
#[derive(Debug, Default)]
pub struct Config {
    /// Where it is and how many overrides it has.
    pub info: ConfigInfo,
    /// `rules = "DIR"`, relative to the config file's directory.
    pub rules: Option<PathBuf>,
    /// Code or class, override, origin (`./apr-lint.toml line 3 (`allow` "APRL-N020")`), in file order.
    pub overrides: Vec<(String, Override, String)>,
    /// `[[pair]]` entries, in file order.
    pub pairs: Vec<DeclaredPair>,
}

/// A path as the user would type it: `./apr-lint.toml` when under the current directory.
pub fn shown_path(p: &Path) -> String {
    if let Ok(cwd) = std::env::current_dir()
        && let Ok(rel) = p.strip_prefix(&cwd)
    {
        return format!("./{}", rel.display());
    }
    p.display().to_string()
}

/// `explicit`, else `apr-lint.toml` found upward from the current directory; `None` without one.
pub fn find(explicit: Option<&Path>) -> Result<Option<Config>, Error> {
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let mut dir = std::env::current_dir().ok();
            let mut found = None;
            while let Some(d) = dir {
                let c = d.join("apr-lint.toml");
                if c.is_file() {
                    found = Some(c);
                    break;
                }
                dir = d.parent().map(Path::to_path_buf);
            }
            found
        }
    };
    let Some(p) = path else { return Ok(None) };
    let text = std::fs::read_to_string(&p)
        .map_err(|e| config_error(&p, format!("cannot read config {}: {e}", p.display())))?;
    parse(&p, &text).map(Some)
}

fn config_error(p: &Path, msg: String) -> Error {
    Box::new(
        Finding::new(&crate::rules::lints::SYNTAX, msg)
            .severity(Severity::Error)
            .file(p),
    )
}

/// Parse a config file's text (`path` names it in messages and origins).
pub fn parse(path: &Path, text: &str) -> Result<Config, Error> {
    let cfg: ConfigFile = toml::from_str(text)
        .map_err(|e| config_error(path, format!("config {}: {}", path.display(), e.message())))?;
    let shown = shown_path(path);
    let mut overrides = Vec::new();
    for (list, key, o) in [
        (&cfg.deny, "deny", Override::Deny),
        (&cfg.warn, "warn", Override::Warn),
        (&cfg.allow, "allow", Override::Allow),
    ] {
        for w in list {
            let line = text[..w.span().start.min(text.len())].matches('\n').count() + 1;
            let origin = format!("{shown} line {line} (`{key}` \"{}\")", w.get_ref());
            check_word(w.get_ref(), &origin)?;
            overrides.push((w.get_ref().clone(), o, origin));
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let pairs = cfg
        .pair
        .iter()
        .map(|p| {
            let line = text[..p.span().start.min(text.len())].matches('\n').count() + 1;
            DeclaredPair {
                test: dir.join(&p.get_ref().test),
                reference: dir.join(&p.get_ref().reference),
                origin: format!("{shown} line {line}"),
            }
        })
        .collect();
    Ok(Config {
        pairs,
        info: ConfigInfo {
            path: shown,
            deny: cfg.deny.len(),
            warn: cfg.warn.len(),
            allow: cfg.allow.len(),
        },
        rules: cfg.rules.map(|r| dir.join(r)),
        overrides,
    })
}

/// A `-D/-W/-A` or config word must be a registered code or class: else `APRL-T003`, with the
/// nearest code or class suggested.
pub fn check_word(word: &str, origin: &str) -> Result<(), Error> {
    if registry::is_code_or_class(word) {
        return Ok(());
    }
    let near = registry::suggest(word);
    Err(Box::new(
        Finding::new(
            &UNKNOWN_CODE,
            format!(
                "{origin}: `{word}` is not an apr-lint code or class{}",
                if near.is_empty() {
                    "; `apr-lint rules` lists them".to_string()
                } else {
                    format!("; did you mean {}?", near.join(", "))
                }
            ),
        )
        .severity(Severity::Error),
    ))
}

/// The config's overrides, then `-D`, `-W`, `-A` (later wins), with their origins.
pub fn overrides(
    config: Option<&Config>,
    deny: &[String],
    warn: &[String],
    allow: &[String],
) -> Result<Overrides, Error> {
    let mut list = Vec::new();
    let mut origins = Vec::new();
    for (w, o, origin) in config.into_iter().flat_map(|c| c.overrides.iter()) {
        list.push((w.clone(), *o));
        origins.push(origin.clone());
    }
    for (words, flag, o) in [
        (deny, "-D", Override::Deny),
        (warn, "-W", Override::Warn),
        (allow, "-A", Override::Allow),
    ] {
        for w in words {
            let origin = format!("{flag} {w}");
            check_word(w, &origin)?;
            list.push((w.clone(), o));
            origins.push(origin);
        }
    }
    Ok((list, origins))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_counts() {
        let c = parse(
            Path::new("/x/apr-lint.toml"),
            "# c\ndeny = [\"APRL-L001\"]\nallow = [\n  \"dims-reversed\",\n  \"APRL-N020\",\n]\n",
        )
        .unwrap();
        assert_eq!(c.info.deny, 1);
        assert_eq!(c.info.allow, 2);
        assert_eq!(c.info.describe(), "/x/apr-lint.toml (1 deny, 2 allows)");
        assert!(c.overrides[0].2.contains("line 2"), "{:?}", c.overrides);
        assert!(c.overrides[2].2.contains("line 5"), "{:?}", c.overrides);
    }

    #[test]
    fn pairs_are_relative_to_the_config_file() {
        let c = parse(
            Path::new("/x/apr-lint.toml"),
            "allow = []\n\n[[pair]]\ntest = \"out/m.apr\"\nreference = \"src/m.gguf\"\n",
        )
        .unwrap();
        assert_eq!(c.pairs.len(), 1);
        assert_eq!(c.pairs[0].test, Path::new("/x/out/m.apr"));
        assert_eq!(c.pairs[0].reference, Path::new("/x/src/m.gguf"));
        assert!(c.pairs[0].origin.ends_with("line 3"), "{:?}", c.pairs);
        // A misspelt key is refused, not ignored.
        assert!(
            parse(
                Path::new("c.toml"),
                "[[pair]]\ntest = \"a\"\nrefrence = \"b\"\n"
            )
            .is_err()
        );
    }

    #[test]
    fn unknown_words_are_refused_with_a_suggestion() {
        let e = parse(Path::new("c.toml"), "warn = [\"trasposed\"]\n").unwrap_err();
        assert_eq!(e.code, "APRL-T003");
        assert!(
            e.message.contains("did you mean transposed"),
            "{}",
            e.message
        );
        let e = overrides(None, &[], &[], &["L001".into()]).unwrap_err();
        assert!(e.message.contains("APRL-L001"), "{}", e.message);
        assert!(overrides(None, &["APRL-L001".into()], &["transposed".into()], &[]).is_ok());
    }
}
