//! The `apr-lint` command line: arguments → pipeline → renderer. Every ending goes through one of two
//! doors: a `Verdict` (its exit code) or a fatal `Finding` reported in the requested format (exit 2).

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use apr_lint::config;
use apr_lint::diag::{Finding, Lint, Severity};
use apr_lint::format::npy;
use apr_lint::model::ModelView;
use apr_lint::numeric::forward::{Logits, Mode};
use apr_lint::numeric::trace::{Plan, Step, Trace, TraceOptions, TraceStage};
use apr_lint::pipeline::{
    self, BAD_USAGE, CANNOT_DECODE, CANNOT_WRITE, ConfigInfo, NO_SUCH_TENSOR, OUTPUT_IS_INPUT,
    Options, Outcome, UNKNOWN_CODE,
};
use apr_lint::registry;
use apr_lint::report;
use apr_lint::rules::{Resolved, RuleSet};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "apr-lint",
    version,
    about = "Catch layout bugs between an .apr or .gguf model and the .gguf or Hugging Face checkpoint it was converted from",
    override_usage = "apr-lint [OPTIONS] <MODEL> --against <REFERENCE>   (the main job)\n       apr-lint [OPTIONS] <MODEL>\n       apr-lint [OPTIONS] <PATH>...   (batch mode: files and directories, each model paired with its reference)\n       apr-lint [OPTIONS] <COMMAND> …",
    after_help = "The main job is the default command: `apr-lint MODEL --against REFERENCE` is `apr-lint lint MODEL --against REFERENCE`.\nOptions may come before or after the command; `apr-lint help lint` lists the main job's options, `apr-lint help COMMAND` any command's.\nExit codes: 0 pass, 1 fail, 2 error (unreadable input, bad usage, unwritable output), 3 inconclusive, 130 interrupted (`rosetta` stopped by Ctrl-C)."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// `rosetta --mode`: how the trace computes linear layers.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
enum TraceMode {
    // Dequantized weights times f32 activations (the reference). Plain comments: doc comments
    // here would turn `--help` into clap's long form.
    #[default]
    F32,
    // Activations rounded as ggml rounds them, integer dot products (llama.cpp's numbers).
    Ggml,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
enum TraceLogits {
    // Every position's logits, each compared.
    #[default]
    All,
    // The last position's only: the output product for one token.
    Last,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
enum Output {
    #[default]
    Human,
    Json,
    Sarif,
    Github,
}

impl Output {
    fn parse(s: &str) -> Option<Output> {
        Output::from_str(s, true).ok()
    }
    fn name(self) -> &'static str {
        match self {
            Output::Human => "human",
            Output::Json => "json",
            Output::Sarif => "sarif",
            Output::Github => "github",
        }
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
enum Color {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Args, Clone, Default)]
struct FormatOpt {
    /// Output format (a fatal error is reported in it too).
    #[arg(long, value_enum, default_value_t = Output::Human)]
    format: Output,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
enum LoadLog {
    // A summary line and the tensors that are not OK (doc comments here would switch clap's
    // help to the long layout).
    #[default]
    Summary,
    // Every tensor.
    Full,
}

#[derive(Args, Clone, Default)]
struct QuietOpt {
    /// Silence the [APR-LOAD] log and the report's decoration; the verdict line stays.
    #[arg(short, long)]
    quiet: bool,
    /// [APR-LOAD] log: a summary line and the tensors that are not OK, or every tensor.
    #[arg(long, value_enum, default_value_t = LoadLog::Summary)]
    load_log: LoadLog,
}

#[derive(Args, Clone, Default)]
struct ColorOpt {
    /// Colour on stderr and in the human report (NO_COLOR is honoured).
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

#[derive(Args, Clone, Default)]
struct RuleOpts {
    /// Config file (default: apr-lint.toml found upward from the current directory).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory of rule files to use instead of the built-in set.
    #[arg(long)]
    rules: Option<PathBuf>,
}

#[derive(Args, Clone, Default)]
struct ReadOpts {
    /// Verify the APR footer CRC of files above 32 MiB too (reads every byte).
    #[arg(long)]
    verify_footer: bool,
}

#[derive(Args, Clone, Default)]
struct FindingOpts {
    /// Show info findings and every stage.
    #[arg(short, long)]
    verbose: bool,
    /// Treat CODE (or class) as an error.
    #[arg(short = 'D', value_name = "CODE")]
    deny: Vec<String>,
    /// Treat CODE (or class) as a warning.
    #[arg(short = 'W', value_name = "CODE")]
    warn: Vec<String>,
    /// Drop findings of CODE (or class).
    #[arg(short = 'A', value_name = "CODE")]
    allow: Vec<String>,
}

/// `-v` in the commands that only load a file: the whole [APR-LOAD] log.
const LOAD_LOG_VERBOSE: &str = "Print every tensor's [APR-LOAD] lines (as `--load-log full`)";

#[derive(Subcommand)]
enum Cmd {
    /// Lint one file, or a pair (the main job; the default command); several files or directories: batch mode.
    Lint {
        /// The file under test (.apr, .gguf or SafeTensors, recognised by its first bytes; or a Hugging Face checkpoint directory or `model.safetensors.index.json`); several files or directories: batch mode, each model paired with its reference.
        #[arg(value_name = "MODEL", required = true, num_args = 1..)]
        models: Vec<PathBuf>,
        /// The reference (the GGUF or Hugging Face checkpoint the file under test was converted from); in batch mode, of every model.
        #[arg(long, value_name = "REFERENCE")]
        against: Option<PathBuf>,
        /// Batch mode: pair each named file with its reference found beside it, even when only one side is named (the pre-commit hook).
        #[arg(long)]
        find_references: bool,
        /// Prompt for the probe (must not be empty).
        #[arg(long, default_value = "2+2=")]
        prompt: String,
        /// Token ids for the probe, instead of a prompt (each below the vocabulary size).
        #[arg(long, value_delimiter = ',', value_name = "ID,ID,…")]
        tokens: Option<Vec<u32>>,
        /// Divergence threshold where both sides hold the same values (finite, > 0 and < 1).
        #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
        threshold: f64,
        /// Skip the probe (layer 0's embedding, Q, K, V on the prompt).
        #[arg(long)]
        no_probe: bool,
        /// Check every value of both files (not a sample), compare same-dtype pairs whole, verify the APR footer CRC.
        #[arg(long)]
        deep: bool,
        #[command(flatten)]
        format: FormatOpt,
        #[command(flatten)]
        quiet: QuietOpt,
        #[command(flatten)]
        findings: FindingOpts,
        #[command(flatten)]
        rules: RuleOpts,
        #[command(flatten)]
        read: ReadOpts,
        #[command(flatten)]
        color: ColorOpt,
    },
    /// Full per-layer differential trace of two files: the first divergence and its cause.
    Rosetta {
        /// The file under test.
        a: PathBuf,
        /// The reference file.
        b: PathBuf,
        /// Prompt to trace (must not be empty).
        #[arg(long, default_value = "2+2=")]
        prompt: String,
        /// Token ids to trace, instead of a prompt (each below the vocabulary size).
        #[arg(long, value_delimiter = ',', value_name = "ID,ID,…")]
        tokens: Option<Vec<u32>>,
        /// Exit 1 on a divergence (without it the trace reports and exits 0).
        #[arg(long)]
        assert_match: bool,
        /// Divergence threshold where both sides hold the same values (finite, > 0 and < 1).
        #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
        threshold: f64,
        /// Feed each layer of A the reference's input for that layer.
        #[arg(long)]
        teacher_forced: bool,
        /// End the trace at the first divergent stage.
        #[arg(long)]
        stop_at_first: bool,
        /// Write every compared stage of both sides as .npy into DIR.
        #[arg(long, value_name = "DIR")]
        save_activations: Option<PathBuf>,
        /// Linear layers as f32 (the reference) or as ggml computes them (llama.cpp's numbers)
        #[arg(long, value_enum, default_value = "f32")]
        mode: TraceMode,
        /// Logits of every position, or of the last one only (as an engine computes them)
        #[arg(long, value_enum, default_value = "all")]
        logits: TraceLogits,
        #[command(flatten)]
        format: FormatOpt,
        #[command(flatten)]
        quiet: QuietOpt,
        #[command(flatten)]
        findings: FindingOpts,
        #[command(flatten)]
        rules: RuleOpts,
        #[command(flatten)]
        read: ReadOpts,
        #[command(flatten)]
        color: ColorOpt,
    },
    /// Header, metadata and tensor table of one file (human or json).
    #[command(
        mut_arg("verbose", |a| a.help(LOAD_LOG_VERBOSE)),
        mut_arg("deny", |a| a.hide(true)),
        mut_arg("warn", |a| a.hide(true)),
        mut_arg("allow", |a| a.hide(true))
    )]
    Inspect {
        /// The file to show.
        file: PathBuf,
        #[command(flatten)]
        format: FormatOpt,
        #[command(flatten)]
        quiet: QuietOpt,
        #[command(flatten)]
        rules: RuleOpts,
        #[command(flatten)]
        read: ReadOpts,
        #[command(flatten)]
        color: ColorOpt,
        #[command(flatten)]
        findings: FindingOpts,
    },
    /// Write one tensor, dequantized to f32, as .npy (shape = canonical dims).
    #[command(
        mut_arg("format", |a| a.hide(true)),
        mut_arg("verbose", |a| a.help(LOAD_LOG_VERBOSE)),
        mut_arg("deny", |a| a.hide(true)),
        mut_arg("warn", |a| a.hide(true)),
        mut_arg("allow", |a| a.hide(true))
    )]
    Dump {
        /// The file to read.
        file: PathBuf,
        /// The tensor's name, as the file writes it.
        tensor: String,
        /// The .npy to write; `-` writes it to stdout.
        #[arg(short, long, value_name = "OUT.npy")]
        output: PathBuf,
        #[command(flatten)]
        format: FormatOpt,
        #[command(flatten)]
        findings: FindingOpts,
        #[command(flatten)]
        quiet: QuietOpt,
        #[command(flatten)]
        rules: RuleOpts,
        #[command(flatten)]
        read: ReadOpts,
        #[command(flatten)]
        color: ColorOpt,
    },
    /// What a finding code means and how to fix it (human or json).
    #[command(
        mut_arg("quiet", |a| a.hide(true)),
        mut_arg("load_log", |a| a.hide(true)),
        mut_arg("config", |a| a.hide(true)),
        mut_arg("rules", |a| a.hide(true)),
        mut_arg("verify_footer", |a| a.hide(true)),
        mut_arg("verbose", |a| a.hide(true)),
        mut_arg("deny", |a| a.hide(true)),
        mut_arg("warn", |a| a.hide(true)),
        mut_arg("allow", |a| a.hide(true))
    )]
    Explain {
        /// A code (`APRL-L001`).
        code: String,
        #[command(flatten)]
        format: FormatOpt,
        #[command(flatten)]
        color: ColorOpt,
        #[command(flatten)]
        quiet: QuietOpt,
        #[command(flatten)]
        rules: RuleOpts,
        #[command(flatten)]
        findings: FindingOpts,
        #[command(flatten)]
        read: ReadOpts,
    },
    /// The rule set in force and every check (human or json).
    #[command(
        mut_arg("quiet", |a| a.hide(true)),
        mut_arg("load_log", |a| a.hide(true)),
        mut_arg("verify_footer", |a| a.hide(true)),
        mut_arg("verbose", |a| a.hide(true)),
        mut_arg("deny", |a| a.hide(true)),
        mut_arg("warn", |a| a.hide(true)),
        mut_arg("allow", |a| a.hide(true))
    )]
    Rules {
        /// Show only this architecture.
        #[arg(long)]
        arch: Option<String>,
        #[command(flatten)]
        format: FormatOpt,
        #[command(flatten)]
        rules: RuleOpts,
        #[command(flatten)]
        color: ColorOpt,
        #[command(flatten)]
        quiet: QuietOpt,
        #[command(flatten)]
        findings: FindingOpts,
        #[command(flatten)]
        read: ReadOpts,
    },
    // --- shell completions and man page (issue 14 §4) ---
    /// Print a completion script for SHELL to stdout (`apr-lint completions bash > …`).
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff) to stdout: `apr-lint man | man -l -`; `apr-lint man lint` for a
    /// command's own page.
    Man {
        /// The command whose page to print (default: the top-level page).
        command: Option<String>,
    },
}

/// The options every command's reporting needs, whatever subset the command accepts.
#[derive(Clone, Default)]
struct Ctx {
    format: Output,
    quiet: bool,
    color: Color,
    verbose: bool,
    load_log: LoadLog,
    verify_footer: bool,
    config: Option<ConfigInfo>,
    /// The config's `[[pair]]` entries (batch mode).
    pairs: Vec<apr_lint::config::DeclaredPair>,
}

impl Ctx {
    fn color_on(&self) -> bool {
        match self.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
            }
        }
    }
}

/// A fatal error: one coded finding, reported in the requested format, exit 2.
type Fatal = Box<Finding>;

/// A fatal finding; its help is the lint's own "How to fix" line until the caller gives a better one.
fn fatal(lint: &'static Lint, message: impl Into<String>) -> Fatal {
    let help = lint
        .explain
        .lines()
        .find_map(|l| l.strip_prefix("How to fix: "))
        .unwrap_or_default();
    Box::new(
        Finding::new(lint, message)
            .severity(Severity::Error)
            .help(help),
    )
}

const SUBCOMMANDS: &[&str] = &[
    "lint",
    "rosetta",
    "inspect",
    "dump",
    "explain",
    "rules",
    "help",
    // issue 14 §4
    "completions",
    "man",
];

/// Options that take a value, so the word after them is not a positional argument.
const VALUE_OPTS: &[&str] = &[
    "--format",
    "--config",
    "--rules",
    "--color",
    "-D",
    "-W",
    "-A",
    "--against",
    "--prompt",
    "--tokens",
    "--threshold",
    "-o",
    "--output",
    "--save-activations",
    "--arch",
];

/// The `--format` asked for anywhere on the line (so a usage error is reported in it too).
fn scan_format(args: &[OsString]) -> Output {
    let mut it = args.iter().skip(1).map(|a| a.to_string_lossy());
    let mut found = Output::Human;
    while let Some(a) = it.next() {
        if a == "--format" {
            if let Some(v) = it.next().and_then(|v| Output::parse(&v)) {
                found = v;
            }
        } else if let Some(v) = a.strip_prefix("--format=").and_then(Output::parse) {
            found = v;
        }
    }
    found
}

/// Put the command first: options given before it move after it (`apr-lint -q inspect F` is
/// `apr-lint inspect -q F`), and a line without a command is the main job (`lint`). A first word that
/// is no file but nearly a command's name is a typo, not a model path.
fn normalize(mut args: Vec<OsString>) -> Result<Vec<OsString>, Fatal> {
    let mut i = 1;
    let mut first_positional = None;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if a == "--" {
            first_positional = (i + 1 < args.len()).then_some(i + 1);
            break;
        }
        if a.starts_with('-') && a.len() > 1 {
            i += if VALUE_OPTS.contains(&a.as_ref()) {
                2
            } else {
                1
            };
            continue;
        }
        first_positional = Some(i);
        break;
    }
    let Some(p) = first_positional else {
        // Options but no model: the main job's, so clap names the missing MODEL (or, with
        // `--help`, shows the main job's help) instead of calling the option unexpected. A bare
        // `apr-lint`, `--help` alone and `--version` stay top-level.
        let is = |a: &OsString, names: &[&str]| a.to_str().is_some_and(|a| names.contains(&a));
        if args[1..].iter().any(|a| is(a, &["-V", "--version"])) {
            // `apr-lint -q -V`: the version, whatever global options come with it.
            args.truncate(1);
            args.push("--version".into());
            return Ok(args);
        }
        let top_level = args[1..].iter().all(|a| is(a, &["-h", "--help", "--"]));
        if args.len() > 1 && !top_level {
            args.insert(1, "lint".into());
        }
        return Ok(args);
    };
    let word = args[p].to_string_lossy().into_owned();
    if SUBCOMMANDS.contains(&word.as_str()) {
        let cmd = args.remove(p);
        args.insert(1, cmd);
        return Ok(args);
    }
    if !Path::new(&word).exists() && !word.contains(['/', '\\', '.']) {
        let mut near: Vec<(usize, &str)> = SUBCOMMANDS
            .iter()
            .map(|s| (registry::edit_distance(&word.to_ascii_lowercase(), s), *s))
            .collect();
        near.sort();
        if let Some((d, s)) = near.first()
            && *d <= 2
        {
            return Err(fatal(
                &BAD_USAGE,
                format!(
                    "`{word}` is not a command (and no such file); did you mean `apr-lint {s}`?"
                ),
            ));
        }
    }
    args.insert(1, "lint".into());
    Ok(args)
}

fn main() -> ExitCode {
    // A mapped input that shrinks under us raises SIGBUS: exit 2 with a code, not a crash.
    #[cfg(unix)]
    apr_lint::format::source::install_sigbus_guard();
    let args: Vec<OsString> = std::env::args_os().collect();
    let early = Ctx {
        format: scan_format(&args),
        ..Ctx::default()
    };
    let args = match normalize(args) {
        Ok(a) => a,
        Err(f) => return ExitCode::from(report_fatal(&f, &early)),
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            if early.format == Output::Human {
                let _ = e.print();
                return ExitCode::from(2);
            }
            // clap's whole message up to its usage lines (the first line alone can end in
            // "were not provided:", the missing arguments on the lines after it).
            let text = e.render().to_string();
            let msg = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let msg = match msg.strip_prefix("error: ") {
                Some(m) => m.to_string(),
                None if msg.is_empty() => "bad usage".to_string(),
                None => msg,
            };
            return ExitCode::from(report_fatal(&fatal(&BAD_USAGE, msg), &early));
        }
    };
    let mut ctx = context(&cli.cmd);
    match run(cli.cmd, &mut ctx) {
        Ok(code) => ExitCode::from(code),
        Err(f) => ExitCode::from(report_fatal(&f, &ctx)),
    }
}

fn context(cmd: &Cmd) -> Ctx {
    let mut c = Ctx::default();
    match cmd {
        Cmd::Lint {
            format,
            quiet,
            findings,
            read,
            color,
            ..
        }
        | Cmd::Rosetta {
            format,
            quiet,
            findings,
            read,
            color,
            ..
        } => {
            c.format = format.format;
            c.quiet = quiet.quiet;
            c.load_log = quiet.load_log;
            c.verbose = findings.verbose;
            c.verify_footer = read.verify_footer;
            c.color = color.color;
        }
        Cmd::Inspect {
            format,
            quiet,
            read,
            color,
            findings,
            ..
        }
        | Cmd::Dump {
            format,
            quiet,
            read,
            color,
            findings,
            ..
        } => {
            c.format = format.format;
            c.quiet = quiet.quiet;
            c.load_log = quiet.load_log;
            c.verbose = findings.verbose;
            c.verify_footer = read.verify_footer;
            c.color = color.color;
        }
        Cmd::Explain {
            format,
            quiet,
            read,
            color,
            ..
        }
        | Cmd::Rules {
            format,
            quiet,
            read,
            color,
            ..
        } => {
            c.format = format.format;
            c.quiet = quiet.quiet;
            c.load_log = quiet.load_log;
            c.verify_footer = read.verify_footer;
            c.color = color.color;
        }
        Cmd::Completions { .. } | Cmd::Man { .. } => {}
    }
    c
}

/// Write to stdout. A closed pipe (`apr-lint … | head`) is not an error; any other failure to write
/// the report is (exit 2, `APRL-T007`).
fn emit(text: &str) -> Result<(), Fatal> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(fatal(
            &CANNOT_WRITE,
            format!("cannot write the report to stdout: {e}"),
        )),
    }
}

fn emit_json(v: &serde_json::Value) -> Result<(), Fatal> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    emit(&s)
}

/// Report a fatal error in the requested format (the same envelope as a run, verdict `error`), and
/// always on stderr for a person. Returns the exit code, 2.
fn report_fatal(f: &Finding, ctx: &Ctx) -> u8 {
    let o = Outcome::fatal(f.clone(), ctx.config.clone());
    let _ = match ctx.format {
        Output::Json => emit_json(&report::json::outcome(&o, false)),
        Output::Sarif => emit_json(&report::sarif::outcome(&o)),
        Output::Github => emit(&report::github::outcome(&o)),
        // One verdict line on stdout, as a run has; the diagnostic itself goes to stderr.
        Output::Human => emit(&format!(
            "{}: {} (the command could not do its job; exit 2)\n",
            o.verdict.word(),
            f.code
        )),
    };
    eprint!("{}", report::human::render_error(f, ctx.color_on()));
    o.verdict.exit_code()
}

fn options(rule_opts: &RuleOpts, findings: &FindingOpts, ctx: &mut Ctx) -> Result<Options, Fatal> {
    let cfg = config::find(rule_opts.config.as_deref())?;
    ctx.config = cfg.as_ref().map(|c| c.info.clone());
    ctx.pairs = cfg.as_ref().map(|c| c.pairs.clone()).unwrap_or_default();
    let rules_dir = rule_opts
        .rules
        .clone()
        .or_else(|| cfg.as_ref().and_then(|c| c.rules.clone()));
    let rules = match rules_dir {
        None => RuleSet::builtin(),
        Some(d) => RuleSet::from_dir(&d).map_err(|errs| {
            let lint = errs
                .first()
                .map(|e| e.lint)
                .unwrap_or(&apr_lint::rules::lints::SYNTAX);
            let msg = errs
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            let mut f = Finding::new(lint, msg).severity(Severity::Error);
            if let Some(e) = errs.first() {
                f = f.file(&e.file);
            }
            Box::new(f)
        })?,
    };
    let (overrides, override_origins) = config::overrides(
        cfg.as_ref(),
        &findings.deny,
        &findings.warn,
        &findings.allow,
    )?;
    Ok(Options {
        rules,
        overrides,
        override_origins,
        config: ctx.config.clone(),
        ..Options::default()
    })
}

/// `--threshold` finite, > 0 and < 1; the prompt not empty.
fn check_probe_options(
    threshold: f64,
    prompt: &str,
    tokens: &Option<Vec<u32>>,
) -> Result<(), Fatal> {
    // At 1 or more, `max_diff ≤ threshold × max|ref|` passes an all-zero output: no check at all.
    if !threshold.is_finite() || threshold <= 0.0 || threshold >= 1.0 {
        return Err(fatal(
            &BAD_USAGE,
            format!(
                "`--threshold` must be a finite number > 0 and < 1 (a fraction of the reference's largest value; got {threshold})"
            ),
        ));
    }
    if tokens.is_none() && prompt.is_empty() {
        return Err(fatal(
            &BAD_USAGE,
            "`--prompt` is empty: there is nothing to run; give a prompt or `--tokens`",
        ));
    }
    if tokens.as_ref().is_some_and(|t| t.is_empty()) {
        return Err(fatal(&BAD_USAGE, "`--tokens` lists no token id"));
    }
    Ok(())
}

/// Every `--tokens` id must be below each file's vocabulary size.
fn check_tokens(tokens: &Option<Vec<u32>>, views: &[&ModelView]) -> Result<(), Fatal> {
    let Some(tokens) = tokens else { return Ok(()) };
    for v in views {
        let vocab = v
            .config
            .vocab
            .as_ref()
            .map(|c| c.value)
            .or(v.tokenizer.n_tokens);
        if let Some(n) = vocab
            && let Some(bad) = tokens.iter().find(|&&t| u64::from(t) >= n)
        {
            return Err(fatal(
                &BAD_USAGE,
                format!(
                    "`--tokens`: id {bad} is not below the vocabulary size {n} of {}",
                    v.path().display()
                ),
            ));
        }
    }
    Ok(())
}

/// The format a command cannot produce is refused (exit 2), not printed as something else.
fn refuse_format(cmd: &str, ctx: &Ctx) -> Result<(), Fatal> {
    if matches!(ctx.format, Output::Sarif | Output::Github) {
        return Err(fatal(
            &BAD_USAGE,
            format!(
                "`{cmd}` has no {} output; use `--format human` or `--format json`",
                ctx.format.name()
            ),
        ));
    }
    Ok(())
}

/// Open a file (its [APR-LOAD] log is printed by `print_load_log` once its findings are known).
fn load(path: &Path, ctx: &Ctx) -> Result<ModelView, Fatal> {
    let mut view = ModelView::open(path).map_err(|e| Box::new(e.to_finding()))?;
    if ctx.verify_footer {
        view.verify_footer();
    }
    Ok(view)
}

/// The [APR-LOAD] log of an APR file to stderr (unless quiet), with the words `findings` give
/// (None: the file's own static checks, for commands that compare nothing).
fn print_load_log(
    view: &ModelView,
    rules: &RuleSet,
    findings: Option<&[apr_lint::Finding]>,
    ctx: &Ctx,
) {
    if ctx.quiet || view.runtime() != apr_lint::model::Runtime::Aprender {
        return;
    }
    let own;
    let findings = match findings {
        Some(f) => f,
        None => {
            own = report::load_log::static_findings(view, rules);
            &own
        }
    };
    let mode = if ctx.verbose || ctx.load_log == LoadLog::Full {
        report::load_log::Mode::Full
    } else {
        report::load_log::Mode::Summary
    };
    let mut err = std::io::stderr().lock();
    report::load_log::load_log(view, rules, findings, mode, |l| {
        let _ = writeln!(err, "{l}");
    });
}

/// Open the file under test and its reference, the APR side first (`order_pair`).
fn load_pair(model: &Path, against: &Path, ctx: &Ctx) -> Result<(ModelView, ModelView), Fatal> {
    // Both files at once (one per core); the first file's error wins, as when read in turn.
    let (a, b) = rayon::join(|| load(model, ctx), || load(against, ctx));
    Ok(pipeline::order_pair(a?, b?))
}

/// `APR_LINT_NO_TIMINGS` set: every report shows 0 ms (deterministic output for tests and diffs).
fn timings() -> bool {
    std::env::var_os("APR_LINT_NO_TIMINGS").is_none()
}

fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<u8, Fatal> {
    match cmd {
        Cmd::Lint {
            models,
            against,
            find_references,
            prompt,
            tokens,
            threshold,
            no_probe,
            deep,
            findings,
            rules,
            ..
        } => {
            check_probe_options(threshold, &prompt, &tokens)?;
            let mut opts = options(&rules, &findings, ctx)?;
            opts.prompt = prompt;
            opts.threshold = threshold;
            opts.no_probe = no_probe;
            opts.deep = deep;
            let model = match models.as_slice() {
                // One file, or one Hugging Face checkpoint directory (one model): the single run.
                [m] if !find_references
                    && (!m.is_dir() || apr_lint::format::is_checkpoint_dir(m)) =>
                {
                    m.clone()
                }
                _ => {
                    let request = apr_lint::batch::Request {
                        against: against.as_deref(),
                        declared: &ctx.pairs,
                        find_references,
                    };
                    opts.tokens = tokens;
                    return run_batch(&models, &request, opts, ctx);
                }
            };
            if deep && !ctx.quiet && std::io::stderr().is_terminal() {
                opts.progress = Some(report::progress::stderr_bar());
            }
            let (a, b) = match &against {
                Some(r) => {
                    let (a, b) = load_pair(&model, r, ctx)?;
                    (a, Some(b))
                }
                None => (load(&model, ctx)?, None),
            };
            let views: Vec<&ModelView> = std::iter::once(&a).chain(b.as_ref()).collect();
            check_tokens(&tokens, &views)?;
            opts.tokens = tokens;
            let mut outcome = pipeline::lint(&a, b.as_ref(), &opts);
            for v in &views {
                print_load_log(v, &opts.rules, Some(&outcome.findings), ctx);
            }
            if !timings() {
                outcome.elapsed_ms = 0;
            }
            match ctx.format {
                Output::Json => emit_json(&report::json::outcome(&outcome, timings()))?,
                Output::Sarif => emit_json(&report::sarif::outcome(&outcome))?,
                Output::Github => emit(&report::github::outcome(&outcome))?,
                Output::Human if ctx.quiet => {
                    emit(&report::human::summary_line(&outcome, ctx.verbose))?
                }
                Output::Human => emit(&report::human::render(
                    &outcome,
                    &views,
                    ctx.color_on(),
                    ctx.verbose,
                ))?,
            }
            Ok(outcome.verdict.exit_code())
        }
        Cmd::Rosetta {
            a,
            b,
            prompt,
            tokens,
            assert_match,
            threshold,
            teacher_forced,
            stop_at_first,
            save_activations,
            mode,
            logits,
            findings,
            rules,
            ..
        } => {
            check_probe_options(threshold, &prompt, &tokens)?;
            let mut opts = options(&rules, &findings, ctx)?;
            opts.prompt = prompt;
            opts.threshold = threshold;
            let (va, vb) = load_pair(&a, &b, ctx)?;
            check_tokens(&tokens, &[&va, &vb])?;
            opts.tokens = tokens;
            let how = TraceOptions {
                teacher_forced,
                stop_at_first,
                save: save_activations.as_deref(),
                mode: match mode {
                    TraceMode::F32 => Mode::F32,
                    TraceMode::Ggml => Mode::Ggml,
                },
                logits: match logits {
                    TraceLogits::All => Logits::All,
                    TraceLogits::Last => Logits::Last,
                },
            };
            let mut stream = RosettaStream::new(ctx, &opts.rules, [&va, &vb]);
            let mut r = pipeline::rosetta_with(&va, &vb, &opts, &how, &mut stream);
            let (mut report, written) = stream.end();
            written?;
            r.assert_match = assert_match;
            if !timings() {
                r.lint.elapsed_ms = 0;
            }
            let verdict = r.verdict();
            match ctx.format {
                Output::Json => emit_json(&report::rosetta::trace_json(&r, timings()))?,
                Output::Sarif => emit_json(&report::sarif::log(&r.lint, verdict))?,
                Output::Github => emit(&report::github::outcome(&r.lint))?,
                Output::Human if ctx.quiet => emit(&report::rosetta::verdict_line(&r))?,
                Output::Human => emit(&report.finish(&r))?,
            }
            Ok(verdict.exit_code())
        }
        Cmd::Inspect { file, rules, .. } => {
            refuse_format("inspect", ctx)?;
            let opts = options(&rules, &FindingOpts::default(), ctx)?;
            let v = load(&file, ctx)?;
            print_load_log(&v, &opts.rules, None, ctx);
            let r = Resolved::new(&v, &opts.rules);
            match ctx.format {
                Output::Json => emit_json(&report::inspect::json(&v, &r))?,
                _ => emit(&report::inspect::human(&v, &r))?,
            }
            Ok(0)
        }
        Cmd::Dump {
            file,
            tensor,
            output,
            rules,
            ..
        } => {
            // `dump` writes a .npy (to stdout with `-o -`), not a report: no machine format.
            if !matches!(ctx.format, Output::Human) {
                return Err(fatal(
                    &BAD_USAGE,
                    format!(
                        "`dump` has no {} output (it writes a .npy and one human line); drop `--format`",
                        ctx.format.name()
                    ),
                ));
            }
            let opts = options(&rules, &FindingOpts::default(), ctx)?;
            let v = load(&file, ctx)?;
            print_load_log(&v, &opts.rules, None, ctx);
            dump(&v, &file, &tensor, &output, &opts.rules, ctx.quiet)
        }
        Cmd::Explain { code, .. } => {
            refuse_format("explain", ctx)?;
            let Some(l) = registry::find(&code) else {
                let near = registry::suggest(&code);
                return Err(fatal(
                    &UNKNOWN_CODE,
                    format!(
                        "`{code}` is not an apr-lint code{}",
                        if near.is_empty() {
                            "; `apr-lint rules` lists the checks".to_string()
                        } else if near.len() > 1 || registry::find(&near[0]).is_some() {
                            format!("; did you mean {}?", near.join(", "))
                        } else {
                            format!("; did you mean {}?", near[0])
                        }
                    ),
                ));
            };
            match ctx.format {
                Output::Json => emit(&format!("{}\n", report::catalog::explain_json(l)))?,
                _ => emit(&report::catalog::explain_human(l))?,
            }
            Ok(0)
        }
        Cmd::Rules { arch, rules, .. } => {
            refuse_format("rules", ctx)?;
            let opts = options(&rules, &FindingOpts::default(), ctx)?;
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
                return Err(fatal(
                    &apr_lint::rules::lints::BAD_VALUE,
                    format!(
                        "no rule set for `{}` (known: {})",
                        arch.unwrap_or_default(),
                        opts.rules.arch_names().join(", ")
                    ),
                ));
            }
            match ctx.format {
                Output::Json => emit_json(&report::catalog::rules_json(&archs))?,
                _ => emit(&report::catalog::rules_human(&archs))?,
            }
            Ok(0)
        }
        Cmd::Completions { shell } => {
            emit(&completions(shell))?;
            Ok(0)
        }
        Cmd::Man { command } => {
            emit(&man_page(command.as_deref())?)?;
            Ok(0)
        }
    }
}

// --- shell completions and man page (issue 14 §4): both from the clap definitions above ---

/// The completion script for `shell`, for the binary name `apr-lint`.
fn completions(shell: clap_complete::Shell) -> String {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "apr-lint", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The roff man page of the tool (`None`) or of one of its commands (`apr-lint-lint(1)` …).
fn man_page(command: Option<&str>) -> Result<String, Fatal> {
    use clap::CommandFactory;
    let mut top = Cli::command();
    top.build();
    let cmd = match command {
        None => top,
        Some(name) => {
            let known: Vec<String> = top
                .get_subcommands()
                .filter(|c| !c.is_hide_set())
                .map(|c| c.get_name().to_string())
                .collect();
            match top.find_subcommand(name) {
                Some(c) => c.clone(),
                None => {
                    return Err(fatal(
                        &BAD_USAGE,
                        format!("no command `{name}` (known: {})", known.join(", ")),
                    ));
                }
            }
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .map_err(|e| fatal(&CANNOT_WRITE, format!("cannot render the man page: {e}")))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// What `rosetta` shows while the trace runs: the `[APR-LOAD]` log once the pair's findings are
/// known, the human report's lines of each step as soon as it is compared (stdout, flushed; not
/// with `-q` or a machine format), the progress line (stderr, on a terminal, not with `-q`); and
/// Ctrl-C, which stops the trace at its next step.
struct RosettaStream<'c> {
    ctx: &'c Ctx,
    rules: &'c RuleSet,
    views: [&'c ModelView; 2],
    /// The human report, printed as it goes (`None`: printed whole at the end, or not at all).
    human: Option<report::rosetta::TraceReport>,
    inputs: Vec<pipeline::InputInfo>,
    bar: Option<report::progress::TraceBar>,
    /// Set by the Ctrl-C handler (`None`: no handler could be installed).
    interrupt: Option<Arc<AtomicBool>>,
    /// stdout was closed (`| head`): nothing more is written, the trace goes on.
    closed: bool,
    /// stdout could not be written: the trace stops, the run is an error.
    failed: Option<Fatal>,
    /// `APR_LINT_TEST_STEP_DELAY_MS`: a pause after each layer (cut short by Ctrl-C), so tests can
    /// see the output arrive and interrupt a run on a tiny model; not for users.
    delay: Option<Duration>,
}

impl<'c> RosettaStream<'c> {
    fn new(ctx: &'c Ctx, rules: &'c RuleSet, views: [&'c ModelView; 2]) -> Self {
        RosettaStream {
            ctx,
            rules,
            views,
            human: (ctx.format == Output::Human && !ctx.quiet)
                .then(|| report::rosetta::TraceReport::new(ctx.verbose)),
            inputs: Vec::new(),
            bar: None,
            interrupt: ctrl_c_flag(),
            closed: false,
            failed: None,
            delay: std::env::var("APR_LINT_TEST_STEP_DELAY_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis),
        }
    }

    fn interrupted(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// Write part of the report now, the progress line hidden meanwhile.
    fn print(&mut self, text: &str) {
        if self.closed || self.failed.is_some() || text.is_empty() {
            return;
        }
        let write = || {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|_| out.flush())
        };
        let res = match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        };
        match res {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => self.closed = true,
            Err(e) => {
                self.failed = Some(fatal(
                    &CANNOT_WRITE,
                    format!("cannot write the report to stdout: {e}"),
                ))
            }
        }
    }

    /// The progress line cleared; the human report (what is left of it is printed by its
    /// `finish`), or the error that stopped writing it.
    fn end(mut self) -> (report::rosetta::TraceReport, Result<(), Fatal>) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
        let report = self
            .human
            .take()
            .unwrap_or_else(|| report::rosetta::TraceReport::new(self.ctx.verbose));
        (report, self.failed.take().map_or(Ok(()), Err))
    }
}

impl apr_lint::numeric::trace::Observer for RosettaStream<'_> {
    fn started(&mut self, t: &Trace, plan: &Plan) {
        if let Some(h) = self.human.as_mut() {
            let text = h.header(&self.inputs, t);
            self.print(&text);
        }
        if !self.ctx.quiet && std::io::stderr().is_terminal() {
            self.bar = Some(report::progress::TraceBar::stderr(plan));
        }
    }

    fn running(&mut self, step: Step) {
        if let Some(bar) = &self.bar {
            bar.running(step);
        }
    }

    fn compared(&mut self, step: Step, stages: &[TraceStage]) {
        if let Some(h) = self.human.as_mut() {
            let text = h.stages(stages);
            self.print(&text);
        }
        if let Some(bar) = &self.bar {
            bar.compared(step);
        }
        if let (Some(d), Step::Layer(_)) = (self.delay, step) {
            let until = std::time::Instant::now() + d;
            while std::time::Instant::now() < until && !self.interrupted() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    fn stop_requested(&mut self) -> bool {
        self.interrupted() || self.failed.is_some()
    }
}

impl pipeline::RosettaObserver for RosettaStream<'_> {
    fn linted(&mut self, lint: &Outcome) {
        self.inputs = lint.inputs.clone();
        for v in self.views {
            print_load_log(v, self.rules, Some(&lint.findings), self.ctx);
        }
    }
}

/// Ctrl-C during `rosetta`: the first stops the trace at its next step (the report of what was
/// compared, exit 130); a second ends the process at once, with the same code. `None` when no
/// handler could be installed (Ctrl-C then ends the process as usual).
fn ctrl_c_flag() -> Option<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let seen = flag.clone();
    ctrlc::set_handler(move || {
        if seen.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    })
    .ok()?;
    Some(flag)
}

/// Batch mode: plan the jobs, lint them in parallel, print each job's load log (stderr), then one
/// combined report; the exit code is the worst job's verdict.
fn run_batch(
    paths: &[PathBuf],
    request: &apr_lint::batch::Request,
    mut opts: Options,
    ctx: &Ctx,
) -> Result<u8, Fatal> {
    if opts.tokens.is_some() {
        return Err(fatal(
            &BAD_USAGE,
            "`--tokens` names ids of one vocabulary; in batch mode give `--prompt` (each file tokenizes it)",
        ));
    }
    let t0 = std::time::Instant::now();
    let plan = apr_lint::batch::plan(paths, request);
    opts.verify_footer = ctx.verify_footer;
    let human = ctx.format == Output::Human && !ctx.quiet;
    let color = ctx.color_on();
    let each = |_: &apr_lint::batch::Job, a: &ModelView, b: Option<&ModelView>, o: &Outcome| {
        let mut o = o.clone();
        if !timings() {
            o.elapsed_ms = 0;
        }
        let views: Vec<&ModelView> = std::iter::once(a).chain(b).collect();
        let mut log = String::new();
        if !ctx.quiet {
            let mode = if ctx.verbose || ctx.load_log == LoadLog::Full {
                report::load_log::Mode::Full
            } else {
                report::load_log::Mode::Summary
            };
            for v in views
                .iter()
                .filter(|v| v.runtime() == apr_lint::model::Runtime::Aprender)
            {
                // Several files' logs follow each other: each block says whose it is.
                log.push_str(&format!("[APR-LOAD] File '{}'\n", v.path().display()));
                report::load_log::load_log(v, &opts.rules, &o.findings, mode, |l| {
                    log.push_str(l);
                    log.push('\n');
                });
            }
        }
        let section = if human {
            report::human::render(&o, &views, color, ctx.verbose)
        } else {
            String::new()
        };
        (log, section)
    };
    let workers = rayon::current_num_threads();
    let results = pipeline::lint_batch(&plan.jobs, &opts, workers, &each);
    let mut sections = Vec::with_capacity(results.len());
    for r in &results {
        match &r.extra {
            Some((log, section)) => {
                eprint!("{log}");
                sections.push(section.clone());
            }
            None => {
                let f = r.outcome.findings.first();
                sections.push(
                    f.map(|f| report::human::render_error(f, color))
                        .unwrap_or_default(),
                );
            }
        }
    }
    let elapsed = if timings() {
        t0.elapsed().as_millis()
    } else {
        0
    };
    match ctx.format {
        Output::Json => emit_json(&report::batch::json(
            &results,
            &plan.notes,
            ctx.config.as_ref(),
            elapsed,
            timings(),
        ))?,
        Output::Sarif => emit_json(&report::batch::sarif(&results, &plan.notes))?,
        Output::Github => emit(&report::batch::github(&results, &plan.notes))?,
        Output::Human => emit(&report::batch::human(
            &results,
            &sections,
            &plan.notes,
            elapsed,
            timings(),
            ctx.quiet,
        ))?,
    }
    Ok(report::batch::verdict(&results).exit_code())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn dump(
    v: &ModelView,
    file: &Path,
    tensor: &str,
    output: &Path,
    rules: &RuleSet,
    quiet: bool,
) -> Result<u8, Fatal> {
    let to_stdout = output.as_os_str() == "-";
    if !to_stdout && same_file(file, output) {
        return Err(fatal(
            &OUTPUT_IS_INPUT,
            "the output path is the input file; apr-lint never writes to an input",
        ));
    }
    let Some(t) = v.tensor(tensor) else {
        let other: Vec<String> = rules
            .other_scheme_names(tensor)
            .into_iter()
            .filter(|n| v.tensor(n).is_some())
            .collect();
        let near: Vec<&str> = if other.is_empty() {
            v.tensors
                .iter()
                .map(|t| t.name.as_str())
                .filter(|n| n.contains(tensor.rsplit('.').nth(1).unwrap_or(tensor)))
                .take(5)
                .collect()
        } else {
            other.iter().map(String::as_str).collect()
        };
        return Err(Box::new(
            Finding::new(
                &NO_SUCH_TENSOR,
                format!(
                    "no tensor `{tensor}` in the file{}",
                    match (other.is_empty(), near.is_empty()) {
                        (false, _) => format!(
                            "; this file names it `{}` ({} naming)",
                            near.join("`, `"),
                            v.format_name().to_uppercase()
                        ),
                        (true, false) => format!("; similar: {}", near.join(", ")),
                        (true, true) => String::new(),
                    }
                ),
            )
            .severity(Severity::Error)
            .file(file),
        ));
    };
    if !t.size_ok() {
        return Err(fatal(
            &apr_lint::format::lints::SIZE_MISMATCH,
            format!(
                "tensor `{tensor}` holds {} bytes, which does not match {} {:?}; refusing to decode it",
                t.data.len, t.dtype, t.dims
            ),
        ));
    }
    let values = v
        .dequantize(t)
        .map_err(|e| fatal(&CANNOT_DECODE, format!("`{tensor}`: {e}")))?;
    let mut buf = Vec::with_capacity(values.len() * 4 + 128);
    let _ = npy::write_f32(&mut buf, &t.dims, &values);
    let shown = if to_stdout {
        "stdout".to_string()
    } else {
        output.display().to_string()
    };
    let write_error =
        |e: std::io::Error| fatal(&CANNOT_WRITE, format!("cannot write {shown}: {e}"));
    if to_stdout {
        let mut out = std::io::stdout().lock();
        out.write_all(&buf)
            .and_then(|_| out.flush())
            .map_err(write_error)?;
    } else {
        std::fs::write(output, &buf).map_err(write_error)?;
    }
    if !quiet {
        let line = format!(
            "wrote `{tensor}` {:?} f32 (from {}) to {shown}",
            t.dims, t.dtype
        );
        if to_stdout {
            eprintln!("{line}");
        } else {
            emit(&format!("{line}\n"))?;
        }
    }
    Ok(0)
}
