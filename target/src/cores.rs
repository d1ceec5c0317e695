//! Which CPUs the process runs on: `lamina serve --cores` (as SPDK's `-m`), applied before the
//! runtime starts so that its workers (one per usable CPU) and the per-core connection runtimes
//! (one pinned to each CPU of the set) follow it.
//!
//! A set is written as a hexadecimal mask (`0x3`, as SPDK's `-m`), a list of CPUs and ranges
//! (`0-1,4`), or either list form in brackets (`[0,1]`, as SPDK's list form). Every CPU named
//! must be one the process may run on now (its affinity, cgroup cpuset included), or the start
//! stops naming it.

use std::fmt;

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

/// A non-empty set of CPU numbers, ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreList(Vec<usize>);

impl CoreList {
    /// The CPUs, ascending.
    pub fn cpus(&self) -> &[usize] {
        &self.0
    }

    /// The list form of ascending `cpus` (as [`allowed`] gives them), for logs.
    pub fn describe(cpus: &[usize]) -> String {
        Self(cpus.to_vec()).to_string()
    }
}

impl fmt::Display for CoreList {
    /// The list form, ranges folded: `0-3,6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut i = 0;
        while let Some(&start) = self.0.get(i) {
            let mut end = start;
            while self.0.get(i + 1) == Some(&(end + 1)) {
                end += 1;
                i += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if end == start {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

/// Parses a mask or a list (see the module documentation); for clap.
pub fn parse(text: &str) -> Result<CoreList, String> {
    let t = text.trim();
    let mut cpus = Vec::new();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("'{text}' is not a hexadecimal CPU mask"));
        }
        // From the least significant digit: digit k holds CPUs 4k..4k+3.
        for (k, c) in hex.chars().rev().enumerate() {
            let bits = c.to_digit(16).unwrap_or(0);
            for b in 0..4 {
                if bits & (1 << b) != 0 {
                    cpus.push(k * 4 + b);
                }
            }
        }
    } else {
        let list = t
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(t);
        for part in list.split(',').map(str::trim) {
            let number = |s: &str| {
                s.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("'{text}': '{part}' is not a CPU number or range"))
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (number(a)?, number(b)?);
                    if a > b {
                        return Err(format!("'{text}': range {part} runs backwards"));
                    }
                    cpus.extend(a..=b);
                }
                None => cpus.push(number(part)?),
            }
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    if cpus.is_empty() {
        return Err(format!("'{text}' names no CPU"));
    }
    if let Some(&last) = cpus.last()
        && last >= CpuSet::MAX_CPU
    {
        return Err(format!(
            "'{text}': CPU {last} is beyond the largest CPU number this build handles ({})",
            CpuSet::MAX_CPU - 1
        ));
    }
    Ok(CoreList(cpus))
}

/// The CPUs the calling thread may run on now.
pub fn allowed() -> Vec<usize> {
    match sched_getaffinity(None) {
        Ok(set) => (0..CpuSet::MAX_CPU).filter(|&i| set.is_set(i)).collect(),
        Err(_) => Vec::new(),
    }
}

/// Restricts the calling thread, and every thread it starts afterwards, to `cores`. Call it
/// before the runtime starts. Refuses a CPU the process may not run on now.
pub fn apply(cores: &CoreList) -> Result<(), String> {
    let now = allowed();
    if let Some(cpu) = cores.0.iter().find(|c| !now.contains(c)) {
        let now = CoreList(now);
        return Err(format!(
            "CPU {cpu} is not available to this process (it may run on {now})"
        ));
    }
    set_current_thread(&cores.0).map_err(|e| format!("cannot set the CPU affinity: {e}"))
}

/// Pins the calling thread to `cpu` alone.
pub fn pin_current_thread(cpu: usize) -> std::io::Result<()> {
    set_current_thread(&[cpu])
}

fn set_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c);
    }
    sched_setaffinity(None, &set).map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus(text: &str) -> Vec<usize> {
        parse(text).unwrap().0
    }

    #[test]
    fn masks_and_lists() {
        assert_eq!(cpus("0x1"), [0]);
        assert_eq!(cpus("0x3"), [0, 1]);
        assert_eq!(cpus("0XA0"), [5, 7]);
        assert_eq!(cpus("0x100000000"), [32]);
        assert_eq!(cpus("0-2,5"), [0, 1, 2, 5]);
        assert_eq!(cpus("[1, 0]"), [0, 1]);
        assert_eq!(cpus("3,3,1-3"), [1, 2, 3]);
    }

    #[test]
    fn bad_sets_are_named() {
        for (text, why) in [
            ("0x0", "names no CPU"),
            ("0x", "not a hexadecimal"),
            ("0xg", "not a hexadecimal"),
            ("two", "not a CPU number"),
            ("3-1", "runs backwards"),
            ("1,,2", "not a CPU number"),
            ("99999", "beyond the largest"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn display_folds_ranges() {
        assert_eq!(parse("0x2f").unwrap().to_string(), "0-3,5");
        assert_eq!(parse("7").unwrap().to_string(), "7");
    }

    #[test]
    fn a_cpu_outside_the_affinity_is_refused() {
        let now = allowed();
        assert!(!now.is_empty());
        let outside = (0..CpuSet::MAX_CPU).find(|c| !now.contains(c)).unwrap();
        let e = apply(&CoreList(vec![outside])).unwrap_err();
        assert!(
            e.contains(&format!("CPU {outside} is not available")),
            "{e}"
        );
    }

    #[test]
    fn pinning_a_thread_changes_only_that_thread() {
        let first = allowed()[0];
        std::thread::spawn(move || {
            pin_current_thread(first).unwrap();
            assert_eq!(allowed(), [first]);
        })
        .join()
        .unwrap();
    }
}
