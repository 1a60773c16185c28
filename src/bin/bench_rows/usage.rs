//! A child process's peak RSS, minor faults and CPU time, from `getrusage(RUSAGE_CHILDREN)`
//! (µs CPU times; `/usr/bin/time` prints 10 ms).
//!
//! `RUSAGE_CHILDREN` sums the CPU times of every reaped child, so a delta around one `wait` is that
//! child's; but its `ru_maxrss` is the largest child's so far, never one child's. For the peak RSS
//! the bench therefore re-executes itself as a wrapper (`apr-lint-bench --usage-of CMD ARGS…`)
//! whose only child is the measured command, as `/usr/bin/time` does, and reads the wrapper's
//! line. The wrapper's own start (~1 ms) is outside the child's numbers. `nix` gives
//! `getrusage` without `unsafe` in this crate.
//!
//! Resolution, honestly: on Linux user + system is the scheduler's own runtime (ns, reported in
//! µs); how it splits into user and system is apportioned from 10 ms tick samples, so a short
//! child's split is coarse (a 5 ms run may read all user or all system) while its total is not.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The first argument that makes `apr-lint-bench` a wrapper.
const WRAPPER_ARG: &str = "--usage-of";

/// What one child process used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Usage {
    /// Peak resident set size, kB.
    pub rss_kb: u64,
    /// Minor page faults.
    pub minor_faults: u64,
    /// User CPU time (all threads).
    pub user: Duration,
    /// System CPU time (all threads).
    pub sys: Duration,
}

impl Usage {
    /// User + system CPU time.
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }
}

/// Totals over this process's reaped children; `rss_kb` is the largest child's peak.
/// None where `getrusage` is unavailable.
pub fn children() -> Option<Usage> {
    of(Who::Children)
}

/// User + system CPU time of this process so far (all threads).
pub fn own_cpu() -> Option<Duration> {
    of(Who::Process).map(|u| u.cpu())
}

enum Who {
    Process,
    Children,
}

fn of(who: Who) -> Option<Usage> {
    #[cfg(unix)]
    {
        use nix::sys::resource::{UsageWho, getrusage};
        let u = getrusage(match who {
            Who::Process => UsageWho::RUSAGE_SELF,
            Who::Children => UsageWho::RUSAGE_CHILDREN,
        })
        .ok()?;
        let dur = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
                + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
        };
        Some(Usage {
            rss_kb: u64::try_from(u.max_rss()).unwrap_or(0),
            minor_faults: u64::try_from(u.minor_page_faults()).unwrap_or(0),
            user: dur(u.user_time()),
            sys: dur(u.system_time()),
        })
    }
    #[cfg(not(unix))]
    {
        let _ = who;
        None
    }
}

/// CPU time used by the children reaped between two [`children`] readings.
pub fn cpu_between(before: Option<Usage>, after: Option<Usage>) -> Option<Duration> {
    Some(after?.cpu().saturating_sub(before?.cpu()))
}

/// One run of `cmd args` in `cwd` (stdin, stdout and stderr null) under the wrapper: what the
/// child used. None when the wrapper could not run it or report.
pub fn of_run(cmd: &Path, args: &[&std::ffi::OsStr], cwd: &Path) -> Option<Usage> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe)
        .arg(WRAPPER_ARG)
        .arg(cmd)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    parse_line(std::str::from_utf8(&out.stdout).ok()?)
}

/// `rss_kb minor_faults user_µs sys_µs` (the wrapper's line) back into a [`Usage`].
fn parse_line(line: &str) -> Option<Usage> {
    let f: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    match f[..] {
        [rss_kb, minor_faults, user, sys] => Some(Usage {
            rss_kb,
            minor_faults,
            user: Duration::from_micros(user),
            sys: Duration::from_micros(sys),
        }),
        _ => None,
    }
}

/// When this process was started as the wrapper (`--usage-of CMD ARGS…`): runs the command with
/// null stdio, prints its usage line, and returns the exit code to leave with (the child's, or 2
/// if it could not run). None otherwise.
pub fn wrapper_main() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != WRAPPER_ARG {
        return None;
    }
    let Some(cmd) = args.next() else {
        eprintln!("{WRAPPER_ARG} needs a command");
        return Some(2);
    };
    let rest: Vec<OsString> = args.collect();
    let status = Command::new(&cmd)
        .args(&rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let (Ok(status), Some(u)) = (status, children()) else {
        return Some(2);
    };
    println!(
        "{} {} {} {}",
        u.rss_kb,
        u.minor_faults,
        u.user.as_micros(),
        u.sys.as_micros()
    );
    Some(status.code().unwrap_or(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_line_round_trips() {
        let u = parse_line("56600 1234 12345 678\n").expect("four numbers");
        assert_eq!(
            u,
            Usage {
                rss_kb: 56600,
                minor_faults: 1234,
                user: Duration::from_micros(12345),
                sys: Duration::from_micros(678),
            }
        );
        assert_eq!(parse_line("1 2 3"), None);
        assert_eq!(parse_line("Command exited with non-zero status 1"), None);
    }

    /// A child that runs for well under 10 ms still shows CPU time (`/usr/bin/time` prints 0.00
    /// for it), and a delta around one wait is that child's.
    #[test]
    fn short_child_has_nonzero_cpu_time() {
        let before = children();
        let status = Command::new("true").status().expect("run `true`");
        assert!(status.success());
        let cpu = cpu_between(before, children()).expect("getrusage");
        assert!(cpu > Duration::ZERO, "{cpu:?}");
        assert!(cpu < Duration::from_millis(50), "{cpu:?}");
    }
}
