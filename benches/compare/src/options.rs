//! Command-line options and the sizes of a quick and a full run.

use std::path::PathBuf;
use std::time::Duration;

use crate::echo::Impl;

pub(crate) const USAGE: &str = "usage: ferry-compare [--quick] [--rt mt|ct] [--only raw,ferry,tarpc]
                     [--scenarios a,b,c,d,e,f,g,h,s,t] [--reps N] [--calls N]
                     [--connects N] [--out FILE]

  --quick       fewer repetitions and shorter runs (under a minute)
  --rt          tokio runtime of client and servers: mt = multi-thread (default), ct = current-thread
  --only        implementations to measure (default all three)
  --scenarios   scenarios to run (default all):
                  a  64 B sequential round trip, p50 and p99
                  b  one connection, 64 calls in flight, calls/s
                  c  64 connections each calling in a loop, aggregate calls/s
                  d  1 MiB echo, MB/s one way
                  e  1000 idle connected clients, server RSS per connection
                  f  connect + first call latency
                  g  1 MiB echo with Vec<u8> argument and result, MB/s one way
                  h  1 MiB echo with Bytes (as d), held to >= 1.0x raw
                  s  1 MiB echo through shared memory (ferry::SharedBytes; raw: its socket), MB/s
                  t  16 MiB echo, the same way
  --reps        repetitions per scenario (medians are over these)
  --calls       (b) makes exactly N calls in all (64 in flight) and (c) exactly N calls on
                each connection, instead of running for a time: a fixed amount of work,
                for callgrind, `perf stat` and `strace -c` counts
  --connects    (f) measures N connections per repetition (default 200 with --quick,
                else 1000), after 10 not measured
  --out         where to write the JSON (default target/ferry-bench/compare.json)";

/// What to run and how long.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) quick: bool,
    pub(crate) multi_thread: bool,
    pub(crate) impls: Vec<Impl>,
    pub(crate) scenarios: Vec<char>,
    pub(crate) reps: usize,
    /// (a): calls before measuring, measured calls.
    pub(crate) latency_warmup: usize,
    pub(crate) latency_calls: usize,
    /// (b), (c), (d): how long each repetition runs, after a warm-up of a quarter of it.
    pub(crate) duration: Duration,
    /// (e): idle clients, and how many repetitions (each on a fresh server).
    pub(crate) idle_clients: usize,
    pub(crate) idle_reps: usize,
    /// (f): connections per repetition.
    pub(crate) connects: usize,
    /// (b): a fixed number of calls in all, (c): per connection, instead of a duration.
    pub(crate) calls: Option<u64>,
    pub(crate) out: PathBuf,
}

impl Options {
    /// `Ok(None)` for `--help`.
    pub(crate) fn parse(args: &[String]) -> Result<Option<Options>, String> {
        let mut quick = false;
        let mut multi_thread = true;
        let mut impls = vec![Impl::Raw, Impl::Ferry, Impl::Tarpc];
        let mut scenarios: Vec<char> = "abcdefghst".chars().collect();
        let mut reps = None;
        let mut calls = None;
        let mut connects = None;
        let mut out = None;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--quick" => quick = true,
                "--rt" => {
                    multi_thread = match value()?.as_str() {
                        "mt" => true,
                        "ct" => false,
                        other => return Err(format!("--rt takes mt or ct, not {other:?}")),
                    }
                }
                "--only" => {
                    impls = value()?
                        .split(',')
                        .map(|name| {
                            Impl::from_name(name)
                                .ok_or_else(|| format!("no implementation {name:?}"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--scenarios" => {
                    scenarios = value()?
                        .split(',')
                        .filter_map(|s| s.chars().next())
                        .collect();
                    if let Some(bad) = scenarios.iter().find(|s| !"abcdefghst".contains(**s)) {
                        return Err(format!("no scenario {bad:?}"));
                    }
                }
                "--reps" => {
                    let text = value()?;
                    reps = Some(
                        text.parse::<usize>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| {
                                format!("--reps takes a positive number, not {text:?}")
                            })?,
                    );
                }
                "--calls" => {
                    let text = value()?;
                    calls =
                        Some(text.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                            format!("--calls takes a positive number, not {text:?}")
                        })?);
                }
                "--connects" => {
                    let text = value()?;
                    connects = Some(text.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(
                        || format!("--connects takes a positive number, not {text:?}"),
                    )?);
                }
                "--out" => out = Some(PathBuf::from(value()?)),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        let out = out.unwrap_or_else(|| target_dir().join("ferry-bench").join("compare.json"));
        let options = if quick {
            Options {
                quick,
                multi_thread,
                impls,
                scenarios,
                reps: reps.unwrap_or(3),
                latency_warmup: 500,
                latency_calls: 3_000,
                duration: Duration::from_millis(300),
                idle_clients: 1000,
                idle_reps: 1,
                connects: connects.unwrap_or(200),
                calls,
                out,
            }
        } else {
            Options {
                quick,
                multi_thread,
                impls,
                scenarios,
                reps: reps.unwrap_or(5),
                latency_warmup: 2_000,
                latency_calls: 20_000,
                duration: Duration::from_secs(1),
                idle_clients: 1000,
                idle_reps: 3,
                connects: connects.unwrap_or(1_000),
                calls,
                out,
            }
        };
        Ok(Some(options))
    }
}

/// Cargo's target directory: the ancestor of this binary named `target`, else `./target`.
fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|dir| dir.file_name().is_some_and(|name| name == "target"))
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("target"))
}
