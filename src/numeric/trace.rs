//! The full differential trace behind `apr-lint rosetta`: the forward pass
//! ([`crate::numeric::forward`]) run on both files with the same token ids, every stage compared
//! ([`crate::numeric::stage`]).
//!
//! `--teacher-forced` feeds each layer of the file under test the reference's input for that
//! layer, so the first failing stage is the root cause rather than an amplified symptom. Takes two
//! views with their rules and the numeric settings; returns a [`Trace`]. Must not emit findings.

use crate::model::ModelView;
use crate::numeric::Settings;
use crate::numeric::forward::exact::{Mode, PathUse, paths};
use crate::numeric::forward::{Act, Logits, Model, permute};
use crate::numeric::stage::{Criterion, Stage, activation_cosine};
use crate::numeric::tokens::prompt_tokens;
use crate::rules::Resolved;
use rayon::prelude::*;

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
    /// Why the trace ended before its last stage (`null`: it ran to the logits, or could not run).
    pub stopped: Option<Stop>,
    /// How linear layers were computed (`--mode`).
    pub mode: Mode,
    /// Whose logits were computed and compared (`--logits`): every position's or the last one's.
    pub logits: Logits,
    /// In the `ggml` mode, which linear weights of each side (`a`, `b`) ran integer kernels,
    /// rounded activations or the f32 product; empty in the `f32` mode.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub linear_paths: Vec<(String, Vec<PathUse>)>,
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
    opts: &TraceOptions<'_>,
    obs: &mut dyn Observer,
) -> Result<Trace, TraceError> {
    let tokens = prompt_tokens(a, b, settings)
        .map_err(|e| format!("{e}; pass `--tokens`"))?
        .ids;
    if tokens.is_empty() {
        return Err("the prompt gives no tokens; pass a non-empty `--prompt` or `--tokens`".into());
    }
    let ma = Model::new(a, ra)?.with_mode(opts.mode);
    let mb = Model::new(b, rb)?.with_mode(opts.mode);
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
    if let Some(dir) = opts.save {
        std::fs::create_dir_all(dir)
            .map_err(|e| TraceError::Write(format!("cannot create {}: {e}", dir.display())))?;
    }
    let crit = Criterion {
        exact,
        threshold: settings.threshold,
        min_cosine: activation_cosine(min_cos),
    };
    trace_with(&ma, &mb, &tokens, &crit, opts, obs)
}

/// How `rosetta` runs the trace.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceOptions<'p> {
    /// Feed each layer of the file under test the reference's input for that layer.
    pub teacher_forced: bool,
    /// End the trace at the first divergent stage (`--stop-at-first`).
    pub stop_at_first: bool,
    /// `--save-activations DIR`: every compared stage of both sides as `.npy`.
    pub save: Option<&'p std::path::Path>,
    /// `--mode`: how linear layers are computed.
    pub mode: Mode,
    /// `--logits`: every position's logits, or the last one's.
    pub logits: Logits,
}

/// Why a trace ended before its last stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// `--stop-at-first`: the last stage compared is the first divergent one.
    FirstDivergence,
    /// The observer asked it to stop (Ctrl-C): the stages compared until then.
    Interrupted,
}

/// One step of the trace: both files run it, then its stages are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Embedding,
    Layer(u32),
    /// Final norm and logits.
    Head,
}

/// What the trace will do, for a progress line: the number of layers and the weight values each
/// step reads (both files), the work an estimate of the time left can be proportional to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub n_layer: u32,
    /// Weight values read by the embedding step, each layer that has weights, and the head (a map,
    /// not a `Vec` sized by the header's layer count).
    pub embedding_values: u64,
    pub layer_values: std::collections::BTreeMap<u32, u64>,
    pub head_values: u64,
}

impl Plan {
    /// All weight values the trace reads.
    pub fn total_values(&self) -> u64 {
        self.embedding_values
            .saturating_add(
                self.layer_values
                    .values()
                    .fold(0, |s, v| s.saturating_add(*v)),
            )
            .saturating_add(self.head_values)
    }
    /// Weight values read once `step` is done (inclusive).
    pub fn values_done(&self, step: Step) -> u64 {
        match step {
            Step::Embedding => self.embedding_values,
            Step::Layer(l) => self
                .layer_values
                .range(..=l)
                .fold(self.embedding_values, |s, (_, v)| s.saturating_add(*v)),
            Step::Head => self.total_values(),
        }
    }
}

/// Told what the trace does as it goes (the CLI streams the report and draws the progress line);
/// asked whether to stop. Every method has a default that does nothing.
pub trait Observer {
    /// The trace is set up (tokens, criterion) and about to run its first step.
    fn started(&mut self, _trace: &Trace, _plan: &Plan) {}
    /// About to run `step` on both files.
    fn running(&mut self, _step: Step) {}
    /// `step` ran on both files and was compared: the stages it added (ending at the first
    /// divergent one with `--stop-at-first`).
    fn compared(&mut self, _step: Step, _stages: &[TraceStage]) {}
    /// Asked before each step and once both files have run it, before it is compared: `true` ends
    /// the trace there ([`Stop::Interrupted`]), with the stages compared so far.
    fn stop_requested(&mut self) -> bool {
        false
    }
}

/// An observer that is told nothing and never stops the trace.
pub struct Silent;

impl Observer for Silent {}

/// The weight values (elements) each step of one file reads: every tensor a role of the rules names,
/// by layer; the head's norm and output projection (the embedding matrix when tied).
fn plan_of(m: &Model<'_>) -> Plan {
    let view = m.view;
    let mut layer_values = std::collections::BTreeMap::<u32, u64>::new();
    // The embedding step reads one row per token: nothing next to a layer.
    let (embedding_values, mut head_values) = (0u64, 0u64);
    // Dims from a hostile header may overflow a product.
    let elems = |i: usize| {
        view.tensors[i]
            .dims
            .iter()
            .fold(1u64, |p, d| p.saturating_mul(*d))
    };
    for i in 0..view.tensors.len() {
        let Some((role, layer)) = m.r.role_of(i) else {
            continue;
        };
        match layer {
            Some(l) => {
                let v = layer_values.entry(l).or_insert(0);
                *v = v.saturating_add(elems(i));
            }
            None if role.key == "token_embd" => {}
            None => head_values = head_values.saturating_add(elems(i)),
        }
    }
    // A tied head reads the embedding matrix as its output projection.
    let tied =
        m.r.find("output", None)
            .is_none_or(|i| view.tensors[i].data.len == 0);
    if tied && let Some(i) = m.r.find("token_embd", None) {
        head_values = head_values.saturating_add(elems(i));
    }
    Plan {
        n_layer: m.n_layer,
        embedding_values,
        layer_values,
        head_values,
    }
}

/// Both files' plans added up.
fn plan_of_pair(a: &Model<'_>, b: &Model<'_>) -> Plan {
    let (pa, pb) = (plan_of(a), plan_of(b));
    Plan {
        n_layer: pa.n_layer,
        embedding_values: pa.embedding_values.saturating_add(pb.embedding_values),
        layer_values: {
            let mut sum = pa.layer_values;
            for (l, v) in pb.layer_values {
                let x = sum.entry(l).or_insert(0);
                *x = x.saturating_add(v);
            }
            sum
        },
        head_values: pa.head_values.saturating_add(pb.head_values),
    }
}

/// Compare both files stage by stage under `crit` (no observer, no early stop).
pub fn trace(
    a: &Model<'_>,
    b: &Model<'_>,
    tokens: &[u32],
    crit: &Criterion,
    teacher_forced: bool,
    save: Option<&std::path::Path>,
) -> Result<Trace, TraceError> {
    let opts = TraceOptions {
        teacher_forced,
        stop_at_first: false,
        save,
        ..Default::default()
    };
    trace_with(a, b, tokens, crit, &opts, &mut Silent)
}

/// The stage comparison of one step, shared by every step of [`trace_with`].
struct Judge<'x> {
    crit: &'x Criterion,
    criterion: String,
    n: usize,
    permute: bool,
    head_dim: usize,
    rope: crate::model::RopeType,
    save: Option<&'x std::path::Path>,
}

impl Judge<'_> {
    /// Compare the stages of one step (A's and B's, in the same order) into `t.stages`; with
    /// `stop_at_first`, stop after the first divergent one. Returns whether the trace ends here.
    fn step(
        &self,
        t: &mut Trace,
        acts_a: &[Act],
        acts_b: &[Act],
        stop_at_first: bool,
    ) -> Result<bool, TraceError> {
        // A stage's positions: every token's, or one (the last position's logits).
        let rows = |a: &Act| a.values.len().checked_div(a.width).unwrap_or(self.n);
        // Every stage of the step judged at once on the pool (the logits' comparison alone is
        // the size of a linear layer's output), then recorded in order below.
        let judged: Vec<Stage> = acts_a
            .par_iter()
            .zip(acts_b)
            .map(|(x, y)| {
                // A copy only where the rows are put in the other RoPE order (not of the logits).
                let xs = if self.permute && matches!(x.stage, "q" | "k" | "q_rope" | "k_rope") {
                    std::borrow::Cow::Owned(permute::to_other_order(
                        &x.values,
                        x.width,
                        self.head_dim,
                        self.rope,
                    ))
                } else {
                    std::borrow::Cow::Borrowed(&x.values[..])
                };
                self.crit.judge(
                    x.stage,
                    x.layer,
                    (&xs, &y.values),
                    (vec![rows(x), x.width], vec![rows(y), y.width]),
                    |_| self.criterion.clone(),
                )
            })
            .collect();
        for ((x, y), st) in acts_a.iter().zip(acts_b).zip(judged) {
            let diverged = !st.pass;
            if diverged && t.first_divergence.is_none() {
                t.first_divergence = Some(serde_json::json!({"layer": x.layer, "stage": x.stage}));
            }
            if let Some(dir) = self.save {
                let name = |side: &str| match x.layer {
                    Some(l) => format!("{side}-{l:03}-{}.npy", x.stage),
                    None => format!("{side}-{}.npy", x.stage),
                };
                for (side, act) in [("a", x), ("b", y)] {
                    let mut buf = Vec::new();
                    let _ = crate::format::npy::write_f32(
                        &mut buf,
                        &[rows(act) as u64, act.width as u64],
                        &act.values,
                    );
                    let path = dir.join(name(side));
                    std::fs::write(&path, buf).map_err(|e| {
                        TraceError::Write(format!("cannot write {}: {e}", path.display()))
                    })?;
                }
            }
            t.stages.push(st);
            if diverged && stop_at_first {
                t.stopped = Some(Stop::FirstDivergence);
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The tensors each step of one file reads, by layer (`None`: the tensors of no layer), as
/// indices into the view's tensors.
fn tensors_by_layer(m: &Model<'_>) -> std::collections::BTreeMap<Option<u32>, Vec<usize>> {
    let mut by_layer = std::collections::BTreeMap::<Option<u32>, Vec<usize>>::new();
    for i in 0..m.view.tensors.len() {
        if let Some((_, l)) = m.r.role_of(i) {
            by_layer.entry(l).or_default().push(i);
        }
    }
    by_layer
}

/// One file's weights of one layer (or of no layer), for mapping them ahead of the step and
/// dropping them after it.
struct LayerPages<'m> {
    view: &'m ModelView,
    by_layer: std::collections::BTreeMap<Option<u32>, Vec<usize>>,
}

impl LayerPages<'_> {
    fn of<'m>(m: &Model<'m>) -> LayerPages<'m> {
        LayerPages {
            view: m.view,
            by_layer: tensors_by_layer(m),
        }
    }
    /// Map `layer`'s weight pages in a few calls before the layer reads them.
    fn populate(&self, layer: Option<u32>) {
        if let Some(ix) = self.by_layer.get(&layer) {
            self.view.populate_all(ix);
        }
    }
    /// Drop `layer`'s weight pages from this process: the forward pass releases each matrix after
    /// reading it, and this makes sure nothing of a layer stays mapped once the trace has moved
    /// past it, whatever the kernels do.
    fn release(&self, layer: Option<u32>) {
        if let Some(ix) = self.by_layer.get(&layer) {
            self.view.release_all(ix);
        }
    }
}

/// Both files' activations of one step (A's, B's).
type StepActs = (Vec<Act>, Vec<Act>);

/// One file's part of a step, run on the thread pool beside the other file's.
type StepRun<'r> = dyn Fn() -> Result<Vec<Act>, String> + Sync + 'r;

/// The trace with both files in step: the embedding, then layer *l* of A and of B (run at once on
/// the thread pool, compared in order), before layer *l + 1*, then the head (A, then B). Only the current step's activations are held (the
/// layers' weight pages are released by the forward pass as it reads them), so memory does not
/// grow with the depth. `obs` is told each step as soon as it is compared and may stop the trace.
pub fn trace_with(
    a: &Model<'_>,
    b: &Model<'_>,
    tokens: &[u32],
    crit: &Criterion,
    opts: &TraceOptions<'_>,
    obs: &mut dyn Observer,
) -> Result<Trace, TraceError> {
    let n = tokens.len();
    let judge = Judge {
        crit,
        criterion: crit.summary(),
        n,
        permute: a.rope_type() != b.rope_type(),
        head_dim: a.head_dim(),
        rope: a.rope_type(),
        save: opts.save,
    };
    let (pages_a, pages_b) = (LayerPages::of(a), LayerPages::of(b));
    let mut t = Trace {
        tokens: tokens.to_vec(),
        threshold: crit.threshold,
        teacher_forced: opts.teacher_forced,
        criterion: judge.criterion.clone(),
        stages: Vec::new(),
        first_divergence: None,
        stopped: None,
        mode: a.mode(),
        logits: opts.logits,
        linear_paths: if a.mode() == Mode::Ggml {
            vec![
                ("a".into(), paths(a.view, a.r)),
                ("b".into(), paths(b.view, b.r)),
            ]
        } else {
            Vec::new()
        },
    };
    obs.started(&t, &plan_of_pair(a, b));
    // Runs one step on both files at once, compares it and tells the observer; `Ok(None)` ends
    // the trace, else both sides' activations of the step.
    let mut step = |t: &mut Trace,
                    step: Step,
                    run_a: &StepRun<'_>,
                    run_b: &StepRun<'_>|
     -> Result<Option<StepActs>, TraceError> {
        if obs.stop_requested() {
            t.stopped = Some(Stop::Interrupted);
            return Ok(None);
        }
        obs.running(step);
        // A's and B's step share the pool: while one side is in a serial part (quantizing
        // activations, a norm, RoPE, the fork and join of a linear), the other's tiles run. Only
        // the computing overlaps; everything observable happens here, in the order of a run of A
        // then B: A's error first, the stop asked between the two sides, then B's error, then the
        // stages compared in order. The head runs A then B: its output matrix (the vocabulary's
        // rows, the largest weight of either file) stays mapped until its product is done, so
        // both at once would hold both files' matrices, and its product has no serial part to
        // hide behind the other side's.
        let (res_a, res_b) = if matches!(step, Step::Head) {
            (run_a(), None)
        } else {
            let (x, y) = rayon::join(run_a, run_b);
            (x, Some(y))
        };
        let acts_a = res_a?;
        if obs.stop_requested() {
            t.stopped = Some(Stop::Interrupted);
            return Ok(None);
        }
        let acts_b = res_b.unwrap_or_else(run_b)?;
        let before = t.stages.len();
        let end = judge.step(t, &acts_a, &acts_b, opts.stop_at_first)?;
        obs.compared(step, &t.stages[before..]);
        Ok((!end).then_some((acts_a, acts_b)))
    };
    let embed = |m: &Model<'_>| -> Result<Vec<Act>, String> {
        Ok(vec![Act {
            stage: "embedding",
            layer: None,
            values: m.embed(tokens)?,
            width: m.hidden(),
        }])
    };
    let Some((ea, eb)) = step(&mut t, Step::Embedding, &|| embed(a), &|| embed(b))? else {
        return Ok(t);
    };
    // The residual stream of each side; teacher-forced, A's layers and head read B's.
    let last = |mut acts: Vec<Act>| acts.pop().map(|x| x.values).unwrap_or_default();
    let (mut xa, mut xb) = (last(ea), last(eb));
    // Each layer's pages are mapped ahead in a few calls and released after it in a few calls
    // (`LayerPages`); the forward pass's own release after each matrix would add a `madvise` and
    // a TLB shootdown per matrix without lowering the peak (the whole layer is mapped at once).
    let held = (a.view.hold_pages(), b.view.hold_pages());
    for l in 0..a.n_layer {
        let input_a = if opts.teacher_forced { &xb } else { &xa };
        let Some((la, lb)) = step(
            &mut t,
            Step::Layer(l),
            &|| {
                pages_a.populate(Some(l));
                a.layer(l, input_a, n)
            },
            &|| {
                pages_b.populate(Some(l));
                b.layer(l, &xb, n)
            },
        )?
        else {
            return Ok(t);
        };
        (xa, xb) = (last(la), last(lb));
        pages_a.release(Some(l));
        pages_b.release(Some(l));
    }
    // The head releases its output matrix as soon as its product is done, before the other
    // file's head maps its own.
    drop(held);
    let input_a = if opts.teacher_forced { &xb } else { &xa };
    step(
        &mut t,
        Step::Head,
        &|| a.head(input_a, n, opts.logits),
        &|| b.head(&xb, n, opts.logits),
    )?;
    pages_a.release(None);
    pages_b.release(None);
    Ok(t)
}
