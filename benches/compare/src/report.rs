//! Collected numbers: medians and spread, the printed table, and the JSON file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::echo::Impl;

/// Whether a smaller or a larger number is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Better {
    Lower,
    Higher,
}

/// The goal ferry is held to in one scenario.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// ferry / raw at most this.
    RawAtMost(f64),
    /// ferry / raw at least this.
    RawAtLeast(f64),
    /// ferry / tarpc at least this.
    TarpcAtLeast(f64),
    /// ferry's own value at most this.
    AtMost(f64),
    /// Reported, no target.
    None,
}

/// One measured quantity.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metric {
    pub(crate) key: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) better: Better,
    pub(crate) target: Target,
}

pub(crate) const A_P50: Metric = Metric {
    key: "a_latency_64B_p50",
    unit: "us",
    better: Better::Lower,
    target: Target::RawAtMost(1.25),
};
pub(crate) const A_P99: Metric = Metric {
    key: "a_latency_64B_p99",
    unit: "us",
    better: Better::Lower,
    target: Target::None,
};
pub(crate) const B_IN_FLIGHT: Metric = Metric {
    key: "b_inflight64_1conn",
    unit: "calls/s",
    better: Better::Higher,
    target: Target::TarpcAtLeast(2.0),
};
pub(crate) const C_CONNECTIONS: Metric = Metric {
    key: "c_64conns",
    unit: "calls/s",
    better: Better::Higher,
    target: Target::RawAtLeast(0.8),
};
pub(crate) const D_BULK: Metric = Metric {
    key: "d_echo_1MiB",
    unit: "MB/s",
    better: Better::Higher,
    target: Target::RawAtLeast(0.7),
};
/// (g): (d) with `Vec<u8>` instead of `Bytes`.
pub(crate) const G_BULK_VEC: Metric = Metric {
    key: "g_echo_1MiB_vec",
    unit: "MB/s",
    better: Better::Higher,
    target: Target::RawAtLeast(0.7),
};
/// (h): (d) again, held to the goal of a `Bytes` echo with no copy of its own.
pub(crate) const H_BULK_BYTES: Metric = Metric {
    key: "h_echo_1MiB_bytes",
    unit: "MB/s",
    better: Better::Higher,
    target: Target::RawAtLeast(1.0),
};
pub(crate) const E_IDLE: Metric = Metric {
    key: "e_idle_rss_per_conn",
    unit: "KiB",
    better: Better::Lower,
    target: Target::AtMost(16.0),
};
pub(crate) const F_CONNECT: Metric = Metric {
    key: "f_connect_first_call_p50",
    unit: "us",
    better: Better::Lower,
    target: Target::RawAtMost(2.0),
};

/// Every repetition's value, by metric and implementation, in the order measured.
#[derive(Debug, Default)]
pub(crate) struct Results {
    metrics: Vec<Metric>,
    values: BTreeMap<&'static str, BTreeMap<&'static str, Vec<f64>>>,
}

/// Median, minimum and maximum of one implementation's repetitions.
#[derive(Debug, Clone, Copy)]
struct Summary {
    median: f64,
    min: f64,
    max: f64,
}

impl Summary {
    fn of(values: &[f64]) -> Option<Summary> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Summary {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }

    /// Half the range as a percentage of the median.
    fn spread_percent(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / 2.0 / self.median.abs() * 100.0
        }
    }
}

impl Results {
    pub(crate) fn push(&mut self, metric: Metric, imp: Impl, value: f64) {
        if !self.metrics.iter().any(|m| m.key == metric.key) {
            self.metrics.push(metric);
        }
        self.values
            .entry(metric.key)
            .or_default()
            .entry(imp.name())
            .or_default()
            .push(value);
    }

    fn summary(&self, metric: &Metric, imp: Impl) -> Option<Summary> {
        Summary::of(self.values.get(metric.key)?.get(imp.name())?)
    }

    fn median(&self, metric: &Metric, imp: Impl) -> Option<f64> {
        self.summary(metric, imp).map(|s| s.median)
    }

    /// Whether ferry meets the target: `None` when it cannot be judged.
    fn verdict(&self, metric: &Metric) -> Option<(f64, bool)> {
        let ferry = self.median(metric, Impl::Ferry)?;
        match metric.target {
            Target::RawAtMost(limit) => {
                let ratio = ferry / self.median(metric, Impl::Raw)?;
                Some((ratio, ratio <= limit))
            }
            Target::RawAtLeast(limit) => {
                let ratio = ferry / self.median(metric, Impl::Raw)?;
                Some((ratio, ratio >= limit))
            }
            Target::TarpcAtLeast(limit) => {
                let ratio = ferry / self.median(metric, Impl::Tarpc)?;
                Some((ratio, ratio >= limit))
            }
            Target::AtMost(limit) => Some((ferry, ferry <= limit)),
            Target::None => None,
        }
    }

    /// The table: medians (± half the range over repetitions), ratios to raw, the target.
    pub(crate) fn table(&self) -> String {
        let impls = [Impl::Raw, Impl::Ferry, Impl::Tarpc];
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<26} {:>8} {:>18} {:>18} {:>18} {:>9} {:>9}  target (ferry)",
            "scenario", "unit", "raw", "ferry", "tarpc", "ferry/raw", "tarpc/raw"
        );
        for metric in &self.metrics {
            let cells: Vec<String> = impls
                .iter()
                .map(|imp| match self.summary(metric, *imp) {
                    Some(s) => format!("{} ±{:.0}%", number(s.median), s.spread_percent()),
                    None => "-".to_owned(),
                })
                .collect();
            let ratio = |imp: Impl| match (self.median(metric, imp), self.median(metric, Impl::Raw))
            {
                (Some(v), Some(raw)) if raw != 0.0 => format!("{:.2}x", v / raw),
                _ => "-".to_owned(),
            };
            let target = match (metric.target, self.verdict(metric)) {
                (Target::None, _) => String::new(),
                (target, Some((value, ok))) => {
                    format!(
                        "{} -> {} {}",
                        describe(target),
                        number(value),
                        if ok { "ok" } else { "MISSED" }
                    )
                }
                (target, None) => describe(target),
            };
            let _ = writeln!(
                out,
                "{:<26} {:>8} {:>18} {:>18} {:>18} {:>9} {:>9}  {}",
                metric.key,
                metric.unit,
                cells[0],
                cells[1],
                cells[2],
                ratio(Impl::Ferry),
                ratio(Impl::Tarpc),
                target
            );
        }
        out
    }

    /// Writes the JSON report to `path`, creating its directory.
    pub(crate) fn write_json(&self, path: &Path, meta: Value) -> io::Result<()> {
        let impls = [Impl::Raw, Impl::Ferry, Impl::Tarpc];
        let mut scenarios = Map::new();
        let mut spread = Map::new();
        for metric in &self.metrics {
            let mut entry = Map::new();
            let mut reps = Map::new();
            for imp in impls {
                let median = self.median(metric, imp);
                entry.insert(imp.name().to_owned(), json!(median));
                if let Some(values) = self.values.get(metric.key).and_then(|v| v.get(imp.name())) {
                    let summary = Summary::of(values);
                    reps.insert(
                        imp.name().to_owned(),
                        json!({
                            "reps": values,
                            "min": summary.map(|s| s.min),
                            "max": summary.map(|s| s.max),
                        }),
                    );
                }
            }
            entry.insert("unit".to_owned(), json!(metric.unit));
            entry.insert(
                "better".to_owned(),
                json!(match metric.better {
                    Better::Lower => "lower",
                    Better::Higher => "higher",
                }),
            );
            scenarios.insert(metric.key.to_owned(), Value::Object(entry));
            spread.insert(metric.key.to_owned(), Value::Object(reps));
        }
        let report = json!({ "scenarios": scenarios, "spread": spread, "meta": meta });
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(&report).map_err(io::Error::other)?;
        std::fs::write(path, text + "\n")
    }
}

fn describe(target: Target) -> String {
    match target {
        Target::RawAtMost(x) => format!("<= {x}x raw"),
        Target::RawAtLeast(x) => format!(">= {x}x raw"),
        Target::TarpcAtLeast(x) => format!(">= {x}x tarpc"),
        Target::AtMost(x) => format!("<= {x}"),
        Target::None => String::new(),
    }
}

/// Three significant digits or so, without exponents.
fn number(value: f64) -> String {
    let abs = value.abs();
    if abs >= 1000.0 {
        format!("{value:.0}")
    } else if abs >= 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}
