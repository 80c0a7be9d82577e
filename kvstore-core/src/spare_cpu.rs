//! How much processor time the machine left idle lately, from `/proc/stat`: background work
//! (automatic compaction) that would otherwise take it from the foreground waits while there
//! is none to spare.

use std::io::{BufRead, BufReader};

/// Samples the machine's idle processor time between calls.
#[derive(Debug, Default)]
pub(crate) struct SpareCpu {
    /// Idle and total ticks of all processors at the last sample.
    last: Option<(u64, u64)>,
    /// Processors `/proc/stat` counts, read once: the ticks are summed over them.
    processors: Option<usize>,
}

impl SpareCpu {
    /// Idle processors, on average, since the last call (2.0: two of them idle all along);
    /// `None` on the first call, or where `/proc/stat` cannot be read.
    pub fn sample(&mut self) -> Option<f64> {
        if self.processors.is_none() {
            self.processors = count_processors();
        }
        let now = read_proc_stat();
        let idle = match (self.last, now, self.processors) {
            (Some(before), Some(now), Some(processors)) => idle_processors(before, now, processors),
            _ => None,
        };
        self.last = now;
        idle
    }
}

/// The first line of `/proc/stat` as (idle, total) ticks summed over all processors.
fn read_proc_stat() -> Option<(u64, u64)> {
    let file = std::fs::File::open("/proc/stat").ok()?;
    let mut line = String::new();
    BufReader::new(file).read_line(&mut line).ok()?;
    parse_cpu_line(&line)
}

/// How many processors `/proc/stat` has a `cpuN` line for.
fn count_processors() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let count = stat
        .lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();
    (count > 0).then_some(count)
}

/// `cpu  user nice system idle iowait irq softirq steal …`: idle is `idle + iowait`.
fn parse_cpu_line(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields.map(str::parse).collect::<Result<_, _>>().ok()?;
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some((idle, ticks.iter().sum()))
}

/// Idle processors between two samples of `processors` processors' summed ticks.
fn idle_processors(before: (u64, u64), now: (u64, u64), processors: usize) -> Option<f64> {
    let total = now.1.checked_sub(before.1).filter(|t| *t > 0)?;
    let idle = now.0.saturating_sub(before.0).min(total);
    Some(idle as f64 / total as f64 * processors as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_idle_and_total_ticks() {
        let line = "cpu  1301333 315548 374507 1734044 55450 0 35743 674 0 0\n";
        assert_eq!(
            parse_cpu_line(line),
            Some((
                1734044 + 55450,
                1301333 + 315548 + 374507 + 1734044 + 55450 + 35743 + 674
            ))
        );
        assert_eq!(parse_cpu_line("cpu0 1 2 3 4"), None);
        assert_eq!(parse_cpu_line("cpu  x"), None);
        assert_eq!(parse_cpu_line(""), None);
    }

    #[test]
    fn idle_share_scales_to_processors() {
        assert_eq!(idle_processors((10, 100), (60, 200), 4), Some(2.0));
        assert_eq!(
            idle_processors((10, 100), (10, 100), 4),
            None,
            "no time passed"
        );
        assert_eq!(idle_processors((10, 100), (10, 200), 2), Some(0.0));
    }

    #[test]
    fn counts_this_machines_processors() {
        // Linux test machines have /proc/stat with a line per processor.
        if std::path::Path::new("/proc/stat").exists() {
            assert!(count_processors().is_some_and(|n| n >= 1));
        }
    }

    #[test]
    fn the_first_sample_knows_nothing() {
        let mut spare = SpareCpu::default();
        assert_eq!(spare.sample(), None);
    }
}
