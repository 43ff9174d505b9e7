//! The run: start the servers, repeat every scenario for every implementation (interleaved,
//! so drift in machine load hits all three alike), print the table, write the JSON.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::echo::{other, Impl};
use crate::ferry_echo::FerryClient;
use crate::options::Options;
use crate::raw::RawClient;
use crate::report::{self, Results};
use crate::scenario;
use crate::server::{build_runtime, ServerProcess};
use crate::shared;
use crate::tarpc_echo::TarpcClient;

/// One measurement may take this long before the run is abandoned.
const MEASUREMENT_TIMEOUT: Duration = Duration::from_secs(120);

/// Calls `scenario::$f::<Client of $imp>(args...)`.
macro_rules! for_impl {
    ($imp:expr, $f:ident($($arg:expr),*)) => {
        match $imp {
            Impl::Raw => scenario::$f::<RawClient>($($arg),*).await,
            Impl::Ferry => scenario::$f::<FerryClient>($($arg),*).await,
            Impl::Tarpc => scenario::$f::<TarpcClient>($($arg),*).await,
        }
    };
}

pub(crate) fn run(options: &Options) -> io::Result<()> {
    let dir = std::env::temp_dir().join(format!("ferry-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(options, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn socket(dir: &Path, imp: Impl, what: &str) -> PathBuf {
    dir.join(format!("{}-{what}.sock", imp.name()))
}

fn run_in(options: &Options, dir: &Path) -> io::Result<()> {
    let runtime = build_runtime(options.multi_thread)?;
    let mut results = Results::default();
    let rt = if options.multi_thread { "mt" } else { "ct" };
    eprintln!(
        "ferry-compare: {} run, {} runtime, {} repetitions, implementations {:?}",
        if options.quick { "quick" } else { "full" },
        rt,
        options.reps,
        options
            .impls
            .iter()
            .map(|imp| imp.name())
            .collect::<Vec<_>>()
    );
    let mut servers = Vec::new();
    for &imp in &options.impls {
        let path = socket(dir, imp, "main");
        servers.push((
            imp,
            ServerProcess::start(imp, &path, options.multi_thread)?,
            path,
        ));
    }
    let timed = |what: &'static str| {
        move |elapsed: Result<io::Result<f64>, tokio::time::error::Elapsed>| {
            elapsed.map_err(|_| other(what, "timed out"))?
        }
    };
    for &scenario in &options.scenarios {
        if scenario == 'e' {
            continue;
        }
        for rep in 0..options.reps {
            for (imp, _server, path) in &servers {
                let imp = *imp;
                let path = path.as_path();
                eprintln!(
                    "  ({scenario}) {} rep {}/{}",
                    imp.name(),
                    rep + 1,
                    options.reps
                );
                runtime.block_on(async {
                    match scenario {
                        'a' => {
                            let (p50, p99) = tokio::time::timeout(MEASUREMENT_TIMEOUT, async {
                                for_impl!(
                                    imp,
                                    latency(path, options.latency_warmup, options.latency_calls)
                                )
                            })
                            .await
                            .map_err(|_| other("(a)", "timed out"))??;
                            results.push(report::A_P50, imp, p50);
                            results.push(report::A_P99, imp, p99);
                        }
                        'b' => {
                            let value = timed("(b)")(
                                tokio::time::timeout(MEASUREMENT_TIMEOUT, async {
                                    for_impl!(imp, in_flight(path, options.duration, options.calls))
                                })
                                .await,
                            )?;
                            results.push(report::B_IN_FLIGHT, imp, value);
                        }
                        'c' => {
                            let value = timed("(c)")(
                                tokio::time::timeout(MEASUREMENT_TIMEOUT, async {
                                    for_impl!(
                                        imp,
                                        connections(path, options.duration, options.calls)
                                    )
                                })
                                .await,
                            )?;
                            results.push(report::C_CONNECTIONS, imp, value);
                        }
                        'd' => {
                            let value = timed("(d)")(
                                tokio::time::timeout(MEASUREMENT_TIMEOUT, async {
                                    for_impl!(imp, bulk(path, options.duration))
                                })
                                .await,
                            )?;
                            results.push(report::D_BULK, imp, value);
                        }
                        'g' | 'h' => bulk_bytes(&mut results, scenario, imp, path, options).await?,
                        'f' => {
                            let value = timed("(f)")(
                                tokio::time::timeout(MEASUREMENT_TIMEOUT, async {
                                    for_impl!(imp, connect_first_call(path, options.connects))
                                })
                                .await,
                            )?;
                            results.push(report::F_CONNECT, imp, value);
                        }
                        's' | 't' => {
                            let (metrics, size) = if scenario == 's' {
                                (
                                    [shared::S_SHARED_1MIB, shared::S_FRESH_1MIB],
                                    shared::SHARED_SMALL,
                                )
                            } else {
                                (
                                    [shared::T_SHARED_16MIB, shared::T_FRESH_16MIB],
                                    shared::SHARED_LARGE,
                                )
                            };
                            let duration = options.duration;
                            match imp {
                                Impl::Raw => {
                                    let value = timed("(s/t)")(
                                        tokio::time::timeout(
                                            MEASUREMENT_TIMEOUT,
                                            shared::plain::<RawClient>(path, duration, size),
                                        )
                                        .await,
                                    )?;
                                    // One raw run is the reference of both entries.
                                    results.push(metrics[0], imp, value);
                                    results.push(metrics[1], imp, value);
                                }
                                Impl::Ferry => {
                                    for (metric, fresh) in metrics.into_iter().zip([false, true]) {
                                        let value = timed("(s/t)")(
                                            tokio::time::timeout(
                                                MEASUREMENT_TIMEOUT,
                                                shared::ferry(path, duration, size, fresh),
                                            )
                                            .await,
                                        )?;
                                        results.push(metric, imp, value);
                                    }
                                }
                                // tarpc has no shared memory.
                                Impl::Tarpc => {}
                            }
                        }
                        _ => {}
                    }
                    Ok::<(), io::Error>(())
                })?;
            }
        }
    }
    drop(servers);
    if options.scenarios.contains(&'e') {
        for rep in 0..options.idle_reps {
            for &imp in &options.impls {
                eprintln!("  (e) {} rep {}/{}", imp.name(), rep + 1, options.idle_reps);
                let path = socket(dir, imp, "idle");
                let server = ServerProcess::start(imp, &path, options.multi_thread)?;
                let value = runtime.block_on(async {
                    timed("(e)")(
                        tokio::time::timeout(MEASUREMENT_TIMEOUT, async {
                            for_impl!(imp, idle(&server, &path, options.idle_clients))
                        })
                        .await,
                    )
                })?;
                drop(server);
                results.push(report::E_IDLE, imp, value);
            }
        }
    }
    println!("{}", results.table());
    let meta = json!({
        "mode": if options.quick { "quick" } else { "full" },
        "runtime": rt,
        "reps": options.reps,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "payload_small_bytes": scenario::SMALL,
        "payload_large_bytes": scenario::LARGE,
        "concurrency": scenario::CONCURRENCY,
        "idle_clients": options.idle_clients,
        "timed_run_seconds": options.duration.as_secs_f64(),
    });
    results.write_json(&options.out, meta)?;
    println!("wrote {}", options.out.display());
    Ok(())
}

/// (g) and (h): 1 MiB echoes with `Vec<u8>`, and with `Bytes` against the stricter goal.
async fn bulk_bytes(
    results: &mut Results,
    scenario: char,
    imp: Impl,
    path: &Path,
    options: &Options,
) -> io::Result<()> {
    let (metric, measured) = if scenario == 'g' {
        (
            report::G_BULK_VEC,
            tokio::time::timeout(MEASUREMENT_TIMEOUT, async {
                for_impl!(imp, bulk_vec(path, options.duration))
            })
            .await,
        )
    } else {
        (
            report::H_BULK_BYTES,
            tokio::time::timeout(MEASUREMENT_TIMEOUT, async {
                for_impl!(imp, bulk(path, options.duration))
            })
            .await,
        )
    };
    let value = measured.map_err(|_| other(metric.key, "timed out"))??;
    results.push(metric, imp, value);
    Ok(())
}
