//! The prompt's token ids for a pair: `--tokens` when given, else the prompt through each file's own
//! tokenizer. The one place the probe and the trace get their ids.
//!
//! Takes the two views and the settings; returns the ids to run and both tokenizations (for the
//! probe's tokenizer findings). Must not emit findings.

use crate::model::ModelView;
use crate::numeric::Settings;

/// The ids a pair runs, and how each file tokenized the prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptTokens {
    /// The reference's ids (the file under test's when only it can tokenize; `--tokens` if given).
    pub ids: Vec<u32>,
    /// Both files' ids when both could tokenize the prompt (file under test, reference).
    pub both: Option<(Vec<u32>, Vec<u32>)>,
}

/// `--tokens`, or the prompt through the reference's tokenizer, else the file under test's; the
/// error is the file under test's when neither can tokenize.
pub fn prompt_tokens(a: &ModelView, b: &ModelView, s: &Settings) -> Result<PromptTokens, String> {
    if let Some(t) = &s.tokens {
        return Ok(PromptTokens {
            ids: t.clone(),
            both: None,
        });
    }
    let (ta, tb) = rayon::join(|| a.tokenize(&s.prompt), || b.tokenize(&s.prompt));
    match (ta, tb) {
        (Ok(x), Ok(y)) => Ok(PromptTokens {
            ids: y.clone(),
            both: Some((x, y)),
        }),
        (_, Ok(y)) => Ok(PromptTokens { ids: y, both: None }),
        (Ok(x), Err(_)) => Ok(PromptTokens { ids: x, both: None }),
        (Err(e), Err(_)) => Err(e.to_string()),
    }
}
