//! This process's resident set, for the memory tests (each a test binary of its own, so no
//! other test allocates while one measures).

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
pub fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
    kib * 1024
}

/// How much the resident set's peak rose above its level before `work`.
pub async fn peak_growth<T>(work: impl Future<Output = T>) -> (T, u64) {
    // Writing 5 resets the peak (VmHWM) to the current resident set.
    std::fs::write("/proc/self/clear_refs", "5").expect("the peak can be reset");
    let before = status_bytes("VmRSS");
    let result = work.await;
    (result, status_bytes("VmHWM").saturating_sub(before))
}
