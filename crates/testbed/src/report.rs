//! What the benchmarks share to write their sections of BENCHMARKS.md: the
//! date, the machine, and replacing one section in place.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Today's date (UTC) as YYYY-MM-DD.
pub fn today() -> String {
    let days = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64 / 86_400;
    let (year, month, day) = crate::process::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The CPU model, e.g. "Intel(R) Xeon(R) Processor".
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

pub fn cpu_cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// Total memory, rounded to whole GiB.
pub fn memory_gib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        })
        .map_or(0, |kib| (kib + (1 << 19)) >> 20)
}

/// Replaces the section of the markdown file at `path` that starts with the
/// line `heading` (up to the next `## ` heading), or appends it.
pub fn write_section(path: &Path, heading: &str, section: &str) -> std::io::Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n\n".to_string());
    std::fs::write(path, with_section(&existing, heading, section))
}

fn with_section(existing: &str, heading: &str, section: &str) -> String {
    let lines: Vec<&str> = existing.lines().collect();
    match lines.iter().position(|l| l.trim_end() == heading) {
        Some(start) => {
            let end =
                lines[start + 1..].iter().position(|l| l.starts_with("## ")).map_or(lines.len(), |i| start + 1 + i);
            let mut out: Vec<&str> = lines[..start].to_vec();
            out.extend(section.trim_end().lines());
            if end < lines.len() {
                out.push("");
            }
            out.extend(&lines[end..]);
            out.join("\n") + "\n"
        }
        None => format!("{}\n\n{}\n", existing.trim_end(), section.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_replaced_in_place_or_appended() {
        let file = "# B\n\n## One\nold\n\n## Two\nkept\n";
        assert_eq!(with_section(file, "## One", "## One\nnew\n"), "# B\n\n## One\nnew\n\n## Two\nkept\n");
        assert_eq!(with_section(file, "## Two", "## Two\nnew"), "# B\n\n## One\nold\n\n## Two\nnew\n");
        assert_eq!(
            with_section(file, "## Three", "## Three\nx"),
            "# B\n\n## One\nold\n\n## Two\nkept\n\n## Three\nx\n"
        );
    }
}
