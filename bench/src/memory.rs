//! This process's memory from /proc/self/status: the resident set, its high-water mark
//! (VmHWM), and a reset of that mark so that a measurement reads its own peak.

/// This process's resident set and its high-water mark, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// Reads this process's [`Memory`] now; zeros when /proc/self/status cannot be read.
pub(crate) fn now() -> Memory {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return Memory::default() };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Memory { rss_kib: field("VmRSS:"), hwm_kib: field("VmHWM:") }
}

/// Resets this process's high-water mark (VmHWM) to its resident set now, so that a later
/// [`now`] reads the peak since this call. Returns whether the kernel took the reset.
pub(crate) fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// KiB in MiB.
pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_memory() {
        let m = now();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
        // A 64 MiB allocation, touched and freed, raises the peak; a reset brings it down.
        let big = vec![1u8; 64 << 20];
        assert_eq!(big.iter().map(|b| u64::from(*b)).sum::<u64>(), 64 << 20);
        drop(big);
        let raised = now().hwm_kib;
        assert!(raised >= m.rss_kib + (60 << 10), "{raised} KiB after touching 64 MiB");
        assert!(reset_peak(), "the kernel refused to reset VmHWM");
        assert!(now().hwm_kib < raised, "VmHWM did not come down after the reset");
    }
}
