//! The markdown table.

use std::fmt::Write;

use crate::engine::EngineKind;
use crate::workload::Figure;

/// Row names come back from child processes as text; rows are a fixed set, so they are
/// leaked once into `'static` strings (a few dozen bytes per process).
pub fn intern(row: &str) -> &'static str {
    Box::leak(row.to_string().into_boxed_str())
}

fn fmt_value(v: f64) -> String {
    if v >= 100_000.0 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Renders the results; the ratio column is kvstore ÷ the best peer, oriented so that > 1 means
/// kvstore is better (for "lower is better" rows it is best peer ÷ kvstore).
pub fn table(
    workload: &str,
    (append_p50_us, overwrite_p50_us): (f64, f64),
    results: &[(&EngineKind, Vec<Figure>)],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Workload: {workload}.");
    let _ = writeln!(
        out,
        "This disk, fdatasync after writing 100 B, p50: {append_p50_us:.0} µs appending, \
         {overwrite_p50_us:.0} µs overwriting an already written region.\n"
    );
    let names: Vec<&str> = results.iter().map(|(k, _)| k.name).collect();
    let _ = writeln!(
        out,
        "| row | {} | kvstore vs best peer |",
        names.join(" | ")
    );
    let _ = writeln!(out, "|---|{}---|", "---|".repeat(names.len()));
    let mut rows: Vec<(&'static str, bool)> = Vec::new();
    for (_, figs) in results {
        // A row only some engines report (redb's one-read-txn gets) goes right after the row
        // that precedes it in that engine's figures, not at the end of the table.
        let mut after: Option<usize> = None;
        for f in figs {
            after = Some(match rows.iter().position(|(r, _)| *r == f.row) {
                Some(at) => at,
                None => {
                    let at = after.map_or(rows.len(), |a| a + 1);
                    rows.insert(at, (f.row, f.higher_is_better));
                    at
                }
            });
        }
    }
    for (row, higher) in rows {
        let values: Vec<Option<f64>> = results
            .iter()
            .map(|(_, figs)| figs.iter().find(|f| f.row == row).map(|f| f.value))
            .collect();
        let cells: Vec<String> = values
            .iter()
            .map(|v| v.map_or("–".into(), fmt_value))
            .collect();
        let ours = results
            .iter()
            .position(|(k, _)| k.name == "kvstore")
            .and_then(|i| values[i]);
        let best_peer = results
            .iter()
            .zip(&values)
            .filter(|((k, _), _)| k.name != "kvstore")
            .filter_map(|(_, v)| *v)
            .fold(None, |best: Option<f64>, v| {
                Some(match best {
                    None => v,
                    Some(b) if higher => b.max(v),
                    Some(b) => b.min(v),
                })
            });
        let ratio = match (ours, best_peer) {
            (Some(o), Some(p)) if higher && p > 0.0 => format!("{:.2}×", o / p),
            (Some(o), Some(p)) if !higher && o > 0.0 => format!("{:.2}×", p / o),
            _ => "–".into(),
        };
        let _ = writeln!(out, "| {row} | {} | {ratio} |", cells.join(" | "));
    }
    let _ = writeln!(out, "\nDurable commit per engine:");
    for (k, _) in results {
        let _ = writeln!(out, "- {}: {}", k.name, k.durable_commit);
    }
    out
}
