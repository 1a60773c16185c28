//! The full differential trace behind `apr-lint rosetta`: the forward pass
//! ([`crate::numeric::forward`]) run on both files with the same token ids, every stage compared
//! ([`crate::numeric::stage`]).
//!
//! `--teacher-forced` feeds each layer of the file under test the reference's input for that
//! layer, so the first failing stage is the root cause rather than an amplified symptom. Takes two
//! views with their rules and the numeric settings; returns a [`Trace`]. Must not emit findings.

use crate::model::ModelView;
use crate::numeric::Settings;
use crate::numeric::forward::{Act, Model, permute, run_all};
use crate::numeric::stage::{Criterion, Stage, activation_cosine};
use crate::numeric::tokens::prompt_tokens;
use crate::rules::Resolved;

/// One compared stage (the probe's record, with the trace's criterion).
pub type TraceStage = Stage;

#[derive(Clone, Debug, serde::Serialize)]
pub struct Trace {
    pub tokens: Vec<u32>,
    pub threshold: f64,
    pub teacher_forced: bool,
    pub criterion: String,
    pub stages: Vec<TraceStage>,
    pub first_divergence: Option<serde_json::Value>,
}

/// Why a trace did not finish: it could not run (inconclusive), or an output could not be written.
#[derive(Clone, Debug, PartialEq)]
pub enum TraceError {
    /// The trace could not run on these files (exit 3).
    Inconclusive(String),
    /// `--save-activations` could not write (exit 2).
    Write(String),
}

impl From<String> for TraceError {
    fn from(s: String) -> Self {
        TraceError::Inconclusive(s)
    }
}

impl From<&str> for TraceError {
    fn from(s: &str) -> Self {
        TraceError::Inconclusive(s.into())
    }
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceError::Inconclusive(s) | TraceError::Write(s) => f.write_str(s),
        }
    }
}

/// The trace `rosetta` runs: the prompt's ids, both models, and the criterion the pair's dtypes
/// call for (`--threshold` when every role has the same dtype on both sides, else the rules'
/// cosine tolerance for activations).
pub fn run(
    (a, ra): (&ModelView, &Resolved<'_>),
    (b, rb): (&ModelView, &Resolved<'_>),
    settings: &Settings,
    teacher_forced: bool,
    save: Option<&std::path::Path>,
) -> Result<Trace, TraceError> {
    let tokens = prompt_tokens(a, b, settings)
        .map_err(|e| format!("{e}; pass `--tokens`"))?
        .ids;
    if tokens.is_empty() {
        return Err("the prompt gives no tokens; pass a non-empty `--prompt` or `--tokens`".into());
    }
    let ma = Model::new(a, ra)?;
    let mb = Model::new(b, rb)?;
    if ma.n_layer != mb.n_layer {
        return Err(format!("layer counts differ ({} vs {})", ma.n_layer, mb.n_layer).into());
    }
    // Same values are expected only when every role has the same dtype on both sides.
    let arch = ra.arch.ok_or("no rule set")?;
    let mut exact = true;
    let mut min_cos: f64 = 0.999;
    for (i, t) in a.tensors.iter().enumerate() {
        let Some((role, layer)) = ra.role_of(i) else {
            continue;
        };
        let Some(j) = rb.find(&role.key, layer) else {
            continue;
        };
        if t.dtype != b.tensors[j].dtype {
            exact = false;
            for d in [t.dtype, b.tensors[j].dtype] {
                if let Some(tol) = arch.tolerance_for(Some(role), d) {
                    min_cos = min_cos.min(tol.cosine);
                }
            }
        }
    }
    if let Some(dir) = save {
        std::fs::create_dir_all(dir)
            .map_err(|e| TraceError::Write(format!("cannot create {}: {e}", dir.display())))?;
    }
    let crit = Criterion {
        exact,
        threshold: settings.threshold,
        min_cosine: activation_cosine(min_cos),
    };
    trace(&ma, &mb, &tokens, &crit, teacher_forced, save)
}

/// Compare both files stage by stage under `crit`.
pub fn trace(
    a: &Model<'_>,
    b: &Model<'_>,
    tokens: &[u32],
    crit: &Criterion,
    teacher_forced: bool,
    save: Option<&std::path::Path>,
) -> Result<Trace, TraceError> {
    let n = tokens.len();
    let ra = if teacher_forced {
        None
    } else {
        Some(run_all(a, tokens)?)
    };
    let rb = run_all(b, tokens)?;
    let acts_a = match ra {
        Some(x) => x,
        None => {
            // Each layer of A gets B's input for that layer.
            let mut out = vec![Act {
                stage: "embedding",
                layer: None,
                values: a.embed(tokens)?,
                width: a.hidden(),
            }];
            let mut input = rb[0].values.clone();
            for l in 0..a.n_layer {
                out.extend(a.layer(l, &input, n)?);
                input = rb
                    .iter()
                    .find(|x| x.layer == Some(l) && x.stage == "layer_out")
                    .map(|x| x.values.clone())
                    .unwrap_or_default();
            }
            out.extend(a.head(&input, n)?);
            out
        }
    };
    let permute = a.rope_type() != b.rope_type();
    let hd = a.head_dim();
    let criterion = crit.summary();
    let mut stages = Vec::new();
    let mut first = None;
    for (x, y) in acts_a.iter().zip(&rb) {
        let xs = if permute && matches!(x.stage, "q" | "k" | "q_rope" | "k_rope") {
            permute::to_other_order(&x.values, x.width, hd, a.rope_type())
        } else {
            x.values.clone()
        };
        let st = crit.judge(
            x.stage,
            x.layer,
            (&xs, &y.values),
            (vec![n, x.width], vec![n, y.width]),
            |_| criterion.clone(),
        );
        if !st.pass && first.is_none() {
            first = Some(serde_json::json!({"layer": x.layer, "stage": x.stage}));
        }
        if let Some(dir) = save {
            let name = |side: &str| match x.layer {
                Some(l) => format!("{side}-{l:03}-{}.npy", x.stage),
                None => format!("{side}-{}.npy", x.stage),
            };
            for (side, act) in [("a", x), ("b", y)] {
                let mut buf = Vec::new();
                let _ = crate::format::npy::write_f32(
                    &mut buf,
                    &[n as u64, act.width as u64],
                    &act.values,
                );
                let path = dir.join(name(side));
                std::fs::write(&path, buf).map_err(|e| {
                    TraceError::Write(format!("cannot write {}: {e}", path.display()))
                })?;
            }
        }
        stages.push(st);
    }

    Ok(Trace {
        tokens: tokens.to_vec(),
        threshold: crit.threshold,
        teacher_forced,
        criterion,
        stages,
        first_divergence: first,
    })
}
