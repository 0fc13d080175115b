//! What the runner reads about a process from /proc (Linux only).

use std::fs;

/// Resident memory in bytes and the thread count, from /proc/PID/status.
pub fn memory_and_threads(pid: u32) -> Option<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    };
    Some((field("VmRSS:")? * 1024, field("Threads:")?))
}

/// CPU seconds used so far by the process's live threads: the sum of the first field of
/// /proc/PID/task/*/schedstat (nanoseconds on the CPU, exact, unlike the clock ticks of
/// /proc/PID/stat). Threads that have exited are not counted, so callers keep them alive.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let mut nanos: u64 = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread may end between listing and reading.
        let Ok(stat) = fs::read_to_string(path) else {
            continue;
        };
        nanos += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(nanos as f64 / 1e9)
}
