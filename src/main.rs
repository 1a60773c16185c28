//! The `apr-lint` command line: clap args → pipeline → renderer → the one Outcome-to-exit-code match.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use apr_lint::check;
use apr_lint::diag::ReadError;
use apr_lint::format::{Container, Format, npy};
use apr_lint::model::ModelView;
use apr_lint::pipeline::{self, Options, Outcome, Override, Verdict};
use apr_lint::report;
use apr_lint::rules::{Resolved, RuleSet};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "apr-lint", version, about = "Catch layout bugs between an .apr model and the .gguf it was converted from", long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum OutFormat {
    Human,
    Json,
    Sarif,
    Github,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Args, Clone)]
struct Common {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutFormat::Human, global = true)]
    format: OutFormat,
    /// Config file (default: apr-lint.toml found upward from the current directory).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Rule files to use instead of the built-in set.
    #[arg(long, global = true)]
    rules: Option<PathBuf>,
    /// Silence the [APR-LOAD] log and non-error output.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Show info findings.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    color: Color,
    /// Treat CODE (or class) as an error.
    #[arg(short = 'D', value_name = "CODE", global = true)]
    deny: Vec<String>,
    /// Treat CODE (or class) as a warning.
    #[arg(short = 'W', value_name = "CODE", global = true)]
    warn: Vec<String>,
    /// Verify the APR footer CRC of files above 32 MiB too (reads every byte).
    #[arg(long, global = true)]
    verify_footer: bool,
    /// Drop findings of CODE (or class).
    #[arg(short = 'A', value_name = "CODE", global = true)]
    allow: Vec<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Lint one file, or a pair (the main job; the default command).
    Lint {
        model: PathBuf,
        /// The reference file (usually the GGUF the APR was converted from).
        #[arg(long)]
        against: Option<PathBuf>,
        /// Prompt for the probe.
        #[arg(long, default_value = "2+2=")]
        prompt: String,
        /// Token ids for the probe, instead of a prompt.
        #[arg(long, value_delimiter = ',')]
        tokens: Option<Vec<u32>>,
        /// Divergence threshold where both sides hold the same values.
        #[arg(long, default_value_t = 1e-3)]
        threshold: f64,
        #[arg(long)]
        no_probe: bool,
        /// Check every value of both files (not a sample), compare same-dtype pairs whole, verify the APR footer CRC.
        #[arg(long)]
        deep: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Full per-layer differential trace of two files: the first divergence and its cause.
    Rosetta {
        a: PathBuf,
        b: PathBuf,
        #[arg(long, default_value = "2+2=")]
        prompt: String,
        #[arg(long, value_delimiter = ',')]
        tokens: Option<Vec<u32>>,
        /// Exit 1 on a divergence.
        #[arg(long)]
        assert_match: bool,
        #[arg(long, default_value_t = 1e-3)]
        threshold: f64,
        /// Feed each layer of A the reference's input for that layer.
        #[arg(long)]
        teacher_forced: bool,
        /// Write every compared stage of both sides as .npy.
        #[arg(long)]
        save_activations: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Header, metadata and tensor table of one file.
    Inspect {
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Write one tensor, dequantized to f32, as .npy (shape = canonical dims).
    Dump {
        file: PathBuf,
        tensor: String,
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// What a finding code means and how to fix it.
    Explain {
        code: String,
        #[command(flatten)]
        common: Common,
    },
    /// The rule set in force.
    Rules {
        #[arg(long)]
        arch: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

/// Print to stdout; a closed pipe (`apr-lint … | head`) is not an error worth a panic.
macro_rules! out {
    ($($t:tt)*) => {{
        let _ = std::io::stdout().lock().write_all(format!($($t)*).as_bytes());
    }};
}
macro_rules! outln {
    ($($t:tt)*) => {{
        let mut s = format!($($t)*);
        s.push('\n');
        let _ = std::io::stdout().lock().write_all(s.as_bytes());
    }};
}

const SUBCOMMANDS: &[&str] = &[
    "lint",
    "rosetta",
    "inspect",
    "dump",
    "explain",
    "rules",
    "help",
    "-h",
    "--help",
    "-V",
    "--version",
];

fn main() -> ExitCode {
    // A mapped input that shrinks under us raises SIGBUS: exit 2 with a code, not a crash.
    #[cfg(unix)]
    apr_lint::format::source::install_sigbus_guard();
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `apr-lint model.apr --against x.gguf`: the main job is the default subcommand.
    if args.len() > 1 && !SUBCOMMANDS.iter().any(|s| args[1] == *s) {
        args.insert(1, "lint".into());
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
    }
}

fn color_on(c: Color) -> bool {
    match c {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal(),
    }
}

fn report_read_error(e: &ReadError, common: &Common) -> u8 {
    if common.format == OutFormat::Json {
        let doc = serde_json::json!({"schema_version": 1, "tool": {"name": "apr-lint", "version": env!("CARGO_PKG_VERSION")},
            "error": report::json::finding(&e.to_finding())});
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    let handler = miette::GraphicalReportHandler::new_themed(if color_on(common.color) {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    });
    let mut s = String::new();
    let _ = handler.render_report(&mut s, e);
    eprint!("{s}");
    2
}

/// Settings from `apr-lint.toml`: `[lint] deny/warn/allow = ["CODE", …]`, `rules = "DIR"`.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    rules: Option<PathBuf>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    warn: Vec<String>,
    #[serde(default)]
    allow: Vec<String>,
}

fn find_config(explicit: &Option<PathBuf>) -> Result<Option<(PathBuf, ConfigFile)>, String> {
    let path = match explicit {
        Some(p) => Some(p.clone()),
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
        .map_err(|e| format!("error[APRL-R001]: cannot read config {}: {e}", p.display()))?;
    let cfg: ConfigFile = toml::from_str(&text)
        .map_err(|e| format!("error[APRL-R001]: {}: {}", p.display(), e.message()))?;
    Ok(Some((p, cfg)))
}

fn options(common: &Common) -> Result<Options, String> {
    let cfg = find_config(&common.config)?;
    let rules_dir = common.rules.clone().or_else(|| {
        cfg.as_ref().and_then(|(p, c)| {
            c.rules
                .as_ref()
                .map(|r| p.parent().unwrap_or(Path::new(".")).join(r))
        })
    });
    let rules = match rules_dir {
        None => RuleSet::builtin(),
        Some(d) => RuleSet::from_dir(&d).map_err(|errs| {
            errs.iter()
                .map(|e| format!("error[{}]: {e}", e.lint.code))
                .collect::<Vec<_>>()
                .join("\n")
        })?,
    };
    let mut overrides = Vec::new();
    if let Some((_, c)) = &cfg {
        overrides.extend(c.deny.iter().map(|x| (x.clone(), Override::Deny)));
        overrides.extend(c.warn.iter().map(|x| (x.clone(), Override::Warn)));
        overrides.extend(c.allow.iter().map(|x| (x.clone(), Override::Allow)));
    }
    overrides.extend(common.deny.iter().map(|x| (x.clone(), Override::Deny)));
    overrides.extend(common.warn.iter().map(|x| (x.clone(), Override::Warn)));
    overrides.extend(common.allow.iter().map(|x| (x.clone(), Override::Allow)));
    Ok(Options {
        rules,
        overrides,
        ..Options::default()
    })
}

/// Open a file; for APR files print the [APR-LOAD] block (unless quiet).
fn load(path: &Path, rules: &RuleSet, common: &Common) -> Result<ModelView, u8> {
    let mut view = ModelView::open(path).map_err(|e| report_read_error(&e, common))?;
    if common.verify_footer {
        view.verify_footer();
    }
    if view.format() == Format::Apr && !common.quiet {
        let r = Resolved::new(&view, rules);
        let text = report::load_log::render(&check::layout::load_lines(&view, &r));
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
    }
    Ok(view)
}

/// Open the file under test and, if given, its reference, the APR side first (`order_pair`).
fn load_pair(
    model: &Path,
    against: Option<&Path>,
    rules: &RuleSet,
    common: &Common,
) -> Result<(ModelView, Option<ModelView>), u8> {
    let a = load(model, rules, common)?;
    match against {
        None => Ok((a, None)),
        Some(p) => {
            let (x, y) = pipeline::order_pair(a, load(p, rules, common)?);
            Ok((x, Some(y)))
        }
    }
}

fn exit_code(o: &Outcome) -> u8 {
    match o.verdict {
        Verdict::Pass => 0,
        Verdict::Fail => 1,
        Verdict::Inconclusive => 3,
    }
}

fn run(cli: Cli) -> Result<u8, String> {
    match cli.cmd {
        Cmd::Lint {
            model,
            against,
            prompt,
            tokens,
            threshold,
            no_probe,
            deep,
            common,
        } => {
            let mut opts = options(&common)?;
            opts.prompt = prompt;
            opts.tokens = tokens;
            opts.threshold = threshold;
            opts.no_probe = no_probe;
            opts.deep = deep;
            if deep && !common.quiet && std::io::stderr().is_terminal() {
                opts.progress = Some(report::progress::stderr_bar());
            }
            let (a, b) = match load_pair(&model, against.as_deref(), &opts.rules, &common) {
                Ok(x) => x,
                Err(c) => return Ok(c),
            };
            let outcome = pipeline::lint(&a, b.as_ref(), &opts);
            let sources: Vec<_> = std::iter::once(&a)
                .chain(b.as_ref())
                .map(|v| v.source().clone())
                .collect();
            let timings = std::env::var_os("APR_LINT_NO_TIMINGS").is_none();
            match common.format {
                OutFormat::Json => outln!(
                    "{}",
                    serde_json::to_string_pretty(&report::json::outcome(&outcome, timings))
                        .unwrap_or_default()
                ),
                OutFormat::Sarif => outln!(
                    "{}",
                    serde_json::to_string_pretty(&report::sarif::outcome(&outcome))
                        .unwrap_or_default()
                ),
                OutFormat::Github => out!("{}", report::github::outcome(&outcome)),
                OutFormat::Human => {
                    if !common.quiet || outcome.verdict != Verdict::Pass {
                        out!(
                            "{}",
                            report::human::render(
                                &outcome,
                                &sources,
                                color_on(common.color),
                                common.verbose
                            )
                        );
                    }
                }
            }
            Ok(exit_code(&outcome))
        }
        Cmd::Rosetta {
            a,
            b,
            prompt,
            tokens,
            assert_match,
            threshold,
            teacher_forced,
            save_activations,
            common,
        } => {
            let mut opts = options(&common)?;
            opts.prompt = prompt;
            opts.tokens = tokens;
            opts.threshold = threshold;
            let (va, vb) = match load_pair(&a, Some(&b), &opts.rules, &common) {
                Ok((x, Some(y))) => (x, y),
                Ok(_) => return Ok(2),
                Err(c) => return Ok(c),
            };
            let r = pipeline::rosetta(&va, &vb, &opts, teacher_forced, save_activations.as_deref());
            let timings = std::env::var_os("APR_LINT_NO_TIMINGS").is_none();
            match common.format {
                OutFormat::Json => outln!(
                    "{}",
                    serde_json::to_string_pretty(&report::rosetta::trace_json(&r, timings))
                        .unwrap_or_default()
                ),
                _ => out!("{}", report::rosetta::render_trace(&r, common.verbose)),
            }
            Ok(if r.trace.is_err() {
                3
            } else if r.diverged() && assert_match {
                1
            } else {
                0
            })
        }
        Cmd::Inspect { file, common } => {
            let opts = options(&common)?;
            let v = match load(&file, &opts.rules, &common) {
                Ok(v) => v,
                Err(c) => return Ok(c),
            };
            let r = Resolved::new(&v, &opts.rules);
            match common.format {
                OutFormat::Json => outln!(
                    "{}",
                    serde_json::to_string_pretty(&report::inspect::json(&v, &r))
                        .unwrap_or_default()
                ),
                _ => out!("{}", report::inspect::human(&v, &r)),
            }
            Ok(0)
        }
        Cmd::Dump {
            file,
            tensor,
            output,
            common,
        } => {
            let opts = options(&common)?;
            let v = match load(&file, &opts.rules, &common) {
                Ok(v) => v,
                Err(c) => return Ok(c),
            };
            dump(&v, &file, &tensor, &output)
        }
        Cmd::Explain { code, common } => match apr_lint::registry::find(&code) {
            Some(l) => {
                if common.format == OutFormat::Json {
                    outln!(
                        "{}",
                        serde_json::json!({"code": l.code, "class": l.class, "severity": l.severity, "family": apr_lint::registry::family(l.code), "summary": l.summary, "explain": l.explain})
                    );
                } else {
                    outln!(
                        "{} [{}] {} ({}, default {})\n\n{}",
                        l.code,
                        l.class,
                        l.summary,
                        apr_lint::registry::family(l.code),
                        l.severity,
                        l.explain
                    );
                }
                Ok(0)
            }
            None => Err(format!(
                "error[APRL-T003]: `{code}` is not an apr-lint code; `apr-lint rules` lists the checks"
            )),
        },
        Cmd::Rules { arch, common } => {
            let opts = options(&common)?;
            let archs: Vec<_> = opts
                .rules
                .archs
                .iter()
                .filter(|a| {
                    arch.as_deref()
                        .is_none_or(|x| a.arch == x || a.names.iter().any(|n| n == x))
                })
                .collect();
            if archs.is_empty() {
                return Err(format!(
                    "error[APRL-R003]: no rule set for `{}` (known: {})",
                    arch.unwrap_or_default(),
                    opts.rules.arch_names().join(", ")
                ));
            }
            if common.format == OutFormat::Json {
                let lints: Vec<_> = apr_lint::registry::all().iter().map(|l| serde_json::json!({"code": l.code, "class": l.class, "severity": l.severity, "summary": l.summary})).collect();
                outln!("{}", serde_json::to_string_pretty(&serde_json::json!({"schema_version": 1, "architectures": archs, "lints": lints})).unwrap_or_default());
            } else {
                for a in archs {
                    outln!(
                        "{} ({}) — names {:?}, rope {}, GGUF Q/K rows in {} order",
                        a.arch,
                        a.file.display(),
                        a.names,
                        a.rope_type.as_str(),
                        a.gguf_qk_order.as_str()
                    );
                    for (k, v) in &a.config {
                        outln!("  config {k} = {v} (when the file does not give it)");
                    }
                    for r in &a.roles {
                        outln!(
                            "  {:<12} {:<9} {:<8} dims [{}]{}{}\n    gguf: {}\n    apr:  {}",
                            r.key,
                            if r.per_layer { "per-layer" } else { "global" },
                            if r.required { "required" } else { "optional" },
                            r.dims.join(", "),
                            r.rope_rows
                                .as_ref()
                                .map(|x| format!(", RoPE rows per {x}"))
                                .unwrap_or_default(),
                            r.tied_to
                                .as_ref()
                                .map(|x| format!(", may be tied to {x}"))
                                .unwrap_or_default(),
                            r.gguf
                                .iter()
                                .map(|t| t.text.as_str())
                                .collect::<Vec<_>>()
                                .join(" | "),
                            r.apr
                                .iter()
                                .map(|t| t.text.as_str())
                                .collect::<Vec<_>>()
                                .join(" | "),
                        );
                    }
                    outln!(
                        "  tolerances: {}",
                        a.tolerance
                            .iter()
                            .map(|(k, t)| format!("{k} nmse≤{} cos≥{}", t.nmse, t.cosine))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                outln!("\nchecks:");
                for l in apr_lint::registry::all() {
                    outln!(
                        "  {} {:<8} {:<22} {}",
                        l.code,
                        l.severity.as_str(),
                        l.class,
                        l.summary
                    );
                }
            }
            Ok(0)
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn dump(v: &ModelView, file: &Path, tensor: &str, output: &Path) -> Result<u8, String> {
    if same_file(file, output) {
        return Err("error[APRL-T004]: the output path is the input file; apr-lint never writes to an input".into());
    }
    let Some(t) = v.tensor(tensor) else {
        let near: Vec<&str> = v
            .tensors
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| n.contains(tensor.rsplit('.').nth(1).unwrap_or(tensor)))
            .take(5)
            .collect();
        return Err(format!(
            "error[APRL-T005]: no tensor `{tensor}` in {}{}",
            file.display(),
            if near.is_empty() {
                String::new()
            } else {
                format!("; similar: {}", near.join(", "))
            }
        ));
    };
    if !t.size_ok() {
        return Err(format!(
            "error[APRL-F031]: tensor `{tensor}` holds {} bytes, which does not match {} {:?}; refusing to decode it",
            t.data.len, t.dtype, t.dims
        ));
    }
    let values = v
        .dequantize(t)
        .map_err(|e| format!("error[APRL-T006]: `{tensor}`: {e}"))?;
    let _ = matches!(v.container, Container::Gguf(_));
    let f = std::fs::File::create(output)
        .map_err(|e| format!("error[APRL-F001]: cannot create {}: {e}", output.display()))?;
    let mut w = std::io::BufWriter::new(f);
    npy::write_f32(&mut w, &t.dims, &values)
        .and_then(|_| w.flush())
        .map_err(|e| format!("error[APRL-F001]: cannot write {}: {e}", output.display()))?;
    Ok(0)
}
