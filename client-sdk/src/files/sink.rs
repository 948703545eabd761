//! The local side of a large download: verified plaintext is written to the temporary file by
//! one blocking thread, and on Linux the pages already written are dropped from the page cache
//! as the file grows.
//!
//! Why drop them: a restore of a large file would otherwise fill the page cache with data nobody
//! is about to read (evicting what the user's other programs use), and on the virtual machines
//! coffre is measured on, handing out page-cache pages never touched before costs more CPU than
//! decrypting the data. Measured on the 2-core development VM while the page cache was growing:
//! `coffre get` of a 1 GiB file took 4.5-4.9 s wall and 3.1-3.2 s of client system CPU before,
//! 2.75-2.9 s and 1.2 s with this (and the page cache no longer grew by 1 GiB per download).
//! Dropping is only advice to the kernel: it never changes what is written, and the file is
//! still fsynced before it is renamed into place.

use std::fs::File;
use std::io::Write;

/// Bytes written between two drops (a format-free tuning value). Large enough that the
/// `fadvise` calls cost nothing next to the writes, small enough that little of the file sits
/// in the page cache at any time.
const DROP_STEP: u64 = 16 * 1024 * 1024;

/// A temporary download file that forgets its written pages as it goes.
pub(super) struct StreamingFile {
    file: File,
    written: u64,
    /// Start of the range whose write-back was started by the previous advice; its pages are
    /// clean by the next one (or will be dropped at the end).
    started: u64,
    /// End of the range advised so far.
    advised: u64,
}

impl StreamingFile {
    pub(super) fn new(file: File) -> Self {
        StreamingFile {
            file,
            written: 0,
            started: 0,
            advised: 0,
        }
    }

    /// Appends `bytes`.
    pub(super) fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.written += bytes.len() as u64;
        if self.written - self.advised >= DROP_STEP {
            // Linux's POSIX_FADV_DONTNEED starts write-back of the dirty pages in the range and
            // drops the clean ones: the previous step's pages (write-back started last time) go
            // now, this step's pages start their way to the disk.
            drop_cached(&self.file, self.started, self.written);
            self.started = self.advised;
            self.advised = self.written;
        }
        Ok(())
    }

    /// Bytes written so far.
    pub(super) fn written(&self) -> u64 {
        self.written
    }

    /// Fsyncs the file and drops what is left of it in the page cache; returns it.
    pub(super) fn finish(self) -> std::io::Result<File> {
        self.file.sync_all()?;
        drop_cached(&self.file, 0, self.written);
        Ok(self.file)
    }
}

/// Advises the kernel that `start..end` of `file` will not be read soon. Errors are ignored:
/// this is advice, and a filesystem that does not take it (or a platform without it) simply
/// keeps the pages cached.
#[cfg(target_os = "linux")]
fn drop_cached(file: &File, start: u64, end: u64) {
    if let Some(len) = std::num::NonZeroU64::new(end.saturating_sub(start)) {
        let _ = rustix::fs::fadvise(file, start, Some(len), rustix::fs::Advice::DontNeed);
    }
}

#[cfg(not(target_os = "linux"))]
fn drop_cached(_file: &File, _start: u64, _end: u64) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn every_byte_arrives_in_order_across_drop_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut sink = StreamingFile::new(File::create(&path).unwrap());
        let mut expected = Vec::new();
        // Uneven pieces crossing several drop steps.
        for piece in 0..40u32 {
            let len = 1_000_003 + (piece as usize * 7919) % 65_536;
            let bytes: Vec<u8> = (0..len).map(|i| (i as u32 ^ piece) as u8).collect();
            sink.write(&bytes).unwrap();
            expected.extend_from_slice(&bytes);
        }
        assert_eq!(sink.written(), expected.len() as u64);
        assert!(sink.written() > 2 * DROP_STEP);
        drop(sink.finish().unwrap());
        let mut read = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut read).unwrap();
        assert!(read == expected, "the file differs from what was written");
    }
}
