//! `kvstore-bench`: runs kvstore and its embedded peers through one fixed workload, in one run,
//! each engine in its own child process (so memory figures do not mix), and prints a markdown
//! table with the ratio kvstore / best peer per row.
//!
//! `cargo run --release -p kvstore-bench --features peers -- --keys 200000`

#![forbid(unsafe_code)]

mod engine;
mod engines;
mod report;
mod workload;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::Parser;

use crate::engine::BenchResult;
use crate::workload::{Figure, Workload};

/// Command line of the benchmark.
#[derive(Debug, Parser)]
#[command(about = "Compare kvstore with sled, redb, fjall (and RocksDB) on one workload")]
struct Args {
    /// Keys loaded (N).
    #[arg(long, default_value_t = 200_000)]
    keys: usize,
    /// Key size in bytes.
    #[arg(long, default_value_t = 16)]
    key_bytes: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Random gets per get row.
    #[arg(long, default_value_t = 1_000_000)]
    gets: usize,
    /// Individual durable puts on one thread.
    #[arg(long, default_value_t = 2_000)]
    durable_puts: usize,
    /// Seed of the deterministic data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Engines to run (default: every one compiled in).
    #[arg(long, value_delimiter = ',')]
    engines: Vec<String>,
    /// Directory for the stores (on the disk to measure; default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Runs of the whole workload per engine, the engines taking turns; the table shows each
    /// figure's median (this shared machine moves single figures by a third).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Internal: run one engine in this process and print its figures.
    #[arg(long, hide = true)]
    child: Option<String>,
    /// Internal: which half of the rows the child runs (2 = after a reopen in a new process).
    #[arg(long, hide = true, default_value_t = 1)]
    stage: u8,
    /// Internal: the store directory of the child.
    #[arg(long, hide = true)]
    store_dir: Option<PathBuf>,
}

fn workload(args: &Args) -> Workload {
    Workload {
        keys: args.keys,
        key_bytes: args.key_bytes.max(8),
        value_bytes: args.value_bytes,
        batch: 1_000,
        durable_puts: args.durable_puts,
        threads_durable: 4,
        per_thread_durable: 1_000,
        gets: args.gets,
        seed: args.seed,
    }
}

fn child(args: &Args, name: &str) -> BenchResult<()> {
    let kind = engine::all()
        .into_iter()
        .find(|k| k.name == name)
        .ok_or_else(|| format!("unknown engine {name}"))?;
    let dir = args.store_dir.as_ref().ok_or("--store-dir is required")?;
    let figures = match args.stage {
        1 => workload::run_fresh(&kind, &workload(args), dir)?,
        _ => workload::run_reopened(&kind, &workload(args), dir)?,
    };
    for f in figures {
        println!(
            "FIG\t{}\t{}\t{}\t{}",
            f.row, f.value, f.unit, f.higher_is_better
        );
    }
    Ok(())
}

fn parse_figures(stdout: &str) -> Vec<Figure> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut parts = line.strip_prefix("FIG\t")?.split('\t');
            let row = parts.next()?;
            let value = parts.next()?.parse().ok()?;
            let _unit = parts.next()?;
            let higher = parts.next()? == "true";
            Some(Figure {
                row: report::intern(row),
                value,
                unit: "",
                higher_is_better: higher,
            })
        })
        .collect()
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(name) = &args.child {
        return match child(&args, name) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{name}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let kinds: Vec<_> = engine::all()
        .into_iter()
        .filter(|k| args.engines.is_empty() || args.engines.iter().any(|e| e == k.name))
        .collect();
    let Ok(exe) = std::env::current_exe() else {
        eprintln!("cannot find this executable to run the engines in child processes");
        return ExitCode::FAILURE;
    };
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let fsync = workload::fdatasync_p50_us(&base, 100, 2_000).unwrap_or((f64::NAN, f64::NAN));
    // Per engine, the figures of every round.
    let mut rounds: Vec<Vec<Vec<Figure>>> = vec![Vec::new(); kinds.len()];
    for round in 1..=args.rounds {
        for (kind, kind_rounds) in kinds.iter().zip(rounds.iter_mut()) {
            eprintln!(
                "running {} (round {round} of {}) ...",
                kind.name, args.rounds
            );
            match run_engine(&exe, &base, kind.name) {
                Ok(figures) => kind_rounds.push(figures),
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let results: Vec<_> = kinds
        .iter()
        .zip(rounds)
        .map(|(kind, kind_rounds)| (kind, medians(&kind_rounds)))
        .collect();
    print!("{}", report::table(&args_line(&args), fsync, &results));
    ExitCode::SUCCESS
}

/// Runs both stages of the workload for one engine, each in a child process, on a fresh
/// store under `base`; returns the figures of the stages that succeeded (a failed stage is
/// reported and its rows stay empty).
fn run_engine(
    exe: &std::path::Path,
    base: &std::path::Path,
    name: &str,
) -> BenchResult<Vec<Figure>> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("kvstore-bench-{name}-"))
        .tempdir_in(base)
        .map_err(|e| format!("cannot create a directory in {}: {e}", base.display()))?;
    let mut figures = Vec::new();
    for stage in ["1", "2"] {
        let out = Command::new(exe)
            .args(std::env::args().skip(1))
            .args(["--child", name, "--stage", stage, "--store-dir"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => {
                figures.extend(parse_figures(&String::from_utf8_lossy(&out.stdout)));
            }
            Ok(out) => eprintln!(
                "{name} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => eprintln!("{name} could not start: {e}"),
        }
    }
    Ok(figures)
}

/// Each row's median over the rounds, rows in the order they were first seen.
fn medians(rounds: &[Vec<Figure>]) -> Vec<Figure> {
    let mut rows: Vec<(Figure, Vec<f64>)> = Vec::new();
    for figure in rounds.iter().flatten() {
        match rows.iter_mut().find(|(f, _)| f.row == figure.row) {
            Some((_, values)) => values.push(figure.value),
            None => rows.push((figure.clone(), vec![figure.value])),
        }
    }
    rows.into_iter()
        .map(|(mut figure, mut values)| {
            values.sort_by(f64::total_cmp);
            figure.value = values[values.len() / 2];
            figure
        })
        .collect()
}

fn args_line(args: &Args) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split(':')
                    .nth(1)
                    .map(|m| m.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rounds = if args.rounds > 1 {
        format!(" Each figure is the median of {} rounds.", args.rounds)
    } else {
        String::new()
    };
    format!(
        "{} keys of {} B, values of {} B, {} random gets, seed {}.{rounds}\nMachine: {cores} cores, {cpu}.\n\
         Command: kvstore-bench {}",
        args.keys,
        args.key_bytes,
        args.value_bytes,
        args.gets,
        args.seed,
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    )
}
