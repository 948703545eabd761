//! Progress hooks for long transfers: the CLI renders them (indicatif), applications may log
//! them. Hooks are called from the task doing the transfer and must return quickly.
//!
//! Invariant: hooks only ever receive sizes, counts and the caller's own paths, never keys or
//! file contents.

/// Receives progress of an upload or download.
pub trait Progress: Send + Sync {
    /// A transfer starts: `total_bytes` of file data, about `total_chunks` chunks (an estimate
    /// for uploads: chunk boundaries are known only while reading).
    fn on_start(&self, total_bytes: u64, total_chunks: u64) {
        let _ = (total_bytes, total_chunks);
    }
    /// One chunk of `bytes` plaintext bytes is done (uploaded, found already present, or
    /// downloaded and verified).
    fn on_chunk_done(&self, bytes: u64) {
        let _ = bytes;
    }
    /// A file is done (`path` as the user named it: local for uploads, in the space for
    /// downloads).
    fn on_file_done(&self, path: &str) {
        let _ = path;
    }
    /// Something was skipped or could not be applied, and the transfer goes on.
    fn on_warning(&self, message: &str) {
        let _ = message;
    }
}

/// Ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_no_progress_accepts_everything() {
        let progress: &dyn Progress = &NoProgress;
        progress.on_start(1, 1);
        progress.on_chunk_done(1);
        progress.on_file_done("/a");
        progress.on_warning("w");
    }
}
