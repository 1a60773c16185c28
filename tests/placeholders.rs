//! The repository's public URL is unknown: every place that needs it says `OWNER`, and the README's
//! "Placeholders to fill in before publishing" table lists each one, so the maintainer has a single
//! list to work through. A new `OWNER` anywhere else, or a listed one that no longer exists, fails.

use std::path::{Path, PathBuf};

const WORD: &str = "OWNER";
const SECTION: &str = "### Placeholders to fill in before publishing";

/// Text files of the checkout (no build output, no Git internals, no binary fixtures).
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !matches!(name.as_str(), "target" | ".git" | "fixtures") {
                files(&p, out);
            }
        } else if p.is_file() {
            out.push(p);
        }
    }
}

fn has_word(line: &str) -> bool {
    line.match_indices(WORD).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + WORD.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// The code spans of the placeholder table that hold the word, and the README's other lines that do.
fn readme_parts(readme: &str) -> (Vec<String>, Vec<String>) {
    let start = readme
        .find(SECTION)
        .expect("the README has the placeholder section");
    let rest = &readme[start + SECTION.len()..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    let section = &rest[..end];
    let listed = section
        .lines()
        .filter(|l| l.starts_with('|'))
        .flat_map(|l| l.split('`').skip(1).step_by(2).map(str::to_owned))
        .filter(|span| has_word(span))
        .collect();
    let outside = readme[..start]
        .lines()
        .chain(rest[end..].lines())
        .filter(|l| has_word(l))
        .map(str::to_owned)
        .collect();
    (listed, outside)
}

#[test]
fn every_owner_placeholder_is_listed_in_the_readme() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = Vec::new();
    files(root, &mut all);
    let this = Path::new(file!()).file_name().unwrap();
    let elsewhere: Vec<String> = all
        .iter()
        // The changelog may name the word when it records the list.
        .filter(|p| {
            p.file_name() != Some(this) && !p.ends_with("README.md") && !p.ends_with("CHANGELOG.md")
        })
        .filter_map(|p| {
            let text = std::fs::read_to_string(p).ok()?;
            text.lines().any(has_word).then(|| p.display().to_string())
        })
        .collect();
    assert!(
        elsewhere.is_empty(),
        "`{WORD}` placeholders outside README.md (keep them in the README and list them): {elsewhere:?}"
    );

    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let (listed, outside) = readme_parts(&readme);
    assert!(!listed.is_empty(), "the placeholder table lists nothing");
    for line in &outside {
        assert!(
            listed.iter().any(|span| line.contains(span.as_str())),
            "README line with `{WORD}` not in the placeholder table: {line:?} (listed: {listed:?})"
        );
    }
    for span in &listed {
        assert!(
            outside.iter().any(|l| l.contains(span.as_str())),
            "the placeholder table lists `{span}`, which the README no longer has"
        );
    }
}

#[test]
fn the_word_check_sees_whole_words_only() {
    assert!(has_word("uses: OWNER/apr-lint@main"));
    assert!(has_word("https://github.com/OWNER/apr-lint"));
    assert!(!has_word("OWNERSHIP"));
    assert!(!has_word("the owner"));
}
