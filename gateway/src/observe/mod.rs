//! What the gateway records of its calls: the audit log (one row per tool call, written in
//! batches off the request path) and the metrics (handles registered once, updated per call).

pub mod audit;
pub mod meters;
