//! The local side of a large download: verified plaintext is written to the temporary file by
//! one blocking thread, around the page cache.
//!
//! Why around it: a restore of a large file would otherwise fill the page cache with data nobody
//! is about to read (evicting what the user's other programs use), and on the virtual machines
//! coffre is measured on, handing out page-cache pages never touched before costs more CPU than
//! decrypting the data. On Linux the file is switched to `O_DIRECT` and written in aligned
//! blocks from an aligned buffer (the last, partial block padded with zeros, then the file
//! truncated to its exact length); where the filesystem refuses `O_DIRECT` (tmpfs, some network
//! filesystems) the writes are buffered and the pages already written are dropped from the page
//! cache as the file grows. Measured on the 2-core development VM, `coffre get` of a 1 GiB file:
//! 4.5-4.9 s wall and 3.1-3.2 s of client system CPU with plain buffered writes, 2.75-2.9 s and
//! 1.2 s dropping pages. Neither changes what is written, and the file is still fsynced before
//! it is renamed into place (the fsync also flushes the drive's write cache).

use std::fs::File;
use std::io::Write;

/// Bytes written between two drops (a format-free tuning value). Large enough that the
/// `fadvise` calls cost nothing next to the writes, small enough that little of the file sits
/// in the page cache at any time.
const DROP_STEP: u64 = 16 * 1024 * 1024;
/// Alignment of `O_DIRECT` buffers, offsets and lengths: the largest logical block size in use
/// (4 KiB drives), which every smaller one divides.
const ALIGN: usize = 4096;
/// Bytes gathered before each `O_DIRECT` write (a multiple of [`ALIGN`]).
const DIRECT_BUFFER: usize = 1024 * 1024;

/// A temporary download file written around the page cache.
pub(super) struct StreamingFile {
    file: File,
    written: u64,
    /// Start of the range whose write-back was started by the previous advice; its pages are
    /// clean by the next one (or will be dropped at the end).
    started: u64,
    /// End of the range advised so far.
    advised: u64,
    /// While `O_DIRECT` is on: the aligned buffer, `storage[start..start + DIRECT_BUFFER]`.
    direct: Option<DirectBuffer>,
}

struct DirectBuffer {
    storage: Vec<u8>,
    start: usize,
    filled: usize,
}

impl StreamingFile {
    pub(super) fn new(file: File) -> Self {
        let direct = set_direct(&file, true).ok().map(|()| {
            let storage = vec![0u8; DIRECT_BUFFER + ALIGN];
            // `align_offset` of a byte pointer is always below `ALIGN`; `min` keeps it in bounds.
            let start = storage.as_ptr().align_offset(ALIGN).min(ALIGN);
            DirectBuffer {
                storage,
                start,
                filled: 0,
            }
        });
        StreamingFile {
            file,
            written: 0,
            started: 0,
            advised: 0,
            direct,
        }
    }

    /// Appends `bytes`.
    pub(super) fn write(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        self.written += bytes.len() as u64;
        while !bytes.is_empty() {
            // After a fall-back to buffered writes, the rest goes the buffered way below.
            let Some(buffer) = &mut self.direct else {
                break;
            };
            let take = (DIRECT_BUFFER - buffer.filled).min(bytes.len());
            let at = buffer.start + buffer.filled;
            buffer.storage[at..at + take].copy_from_slice(&bytes[..take]);
            buffer.filled += take;
            bytes = &bytes[take..];
            if buffer.filled == DIRECT_BUFFER {
                self.write_out(DIRECT_BUFFER)?;
            }
        }
        if bytes.is_empty() {
            return Ok(());
        }
        self.file.write_all(bytes)?;
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

    /// Writes the first `len` bytes of the aligned buffer and empties it. An `O_DIRECT` write the
    /// filesystem refuses as misaligned (also after a short write) goes on buffered, and the
    /// file stays buffered.
    fn write_out(&mut self, len: usize) -> std::io::Result<()> {
        let Some(buffer) = &mut self.direct else {
            return Ok(());
        };
        let block = &buffer.storage[buffer.start..buffer.start + len];
        let mut done = 0;
        let mut direct = true;
        while done < len {
            match self.file.write(&block[done..]) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(written) => done += written,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) if direct && is_invalid_argument(&error) => {
                    set_direct(&self.file, false)?;
                    direct = false;
                }
                Err(error) => return Err(error),
            }
        }
        buffer.filled = 0;
        if !direct {
            self.direct = None;
        }
        Ok(())
    }

    /// Bytes written so far.
    pub(super) fn written(&self) -> u64 {
        self.written
    }

    /// Writes what is buffered, fsyncs the file and drops what is left of it in the page cache;
    /// returns it.
    pub(super) fn finish(mut self) -> std::io::Result<File> {
        if let Some(buffer) = &mut self.direct
            && buffer.filled > 0
        {
            let padded = buffer.filled.next_multiple_of(ALIGN);
            let from = buffer.start + buffer.filled;
            buffer.storage[from..buffer.start + padded].fill(0);
            self.write_out(padded)?;
            self.file.set_len(self.written)?;
        }
        self.file.sync_all()?;
        drop_cached(&self.file, 0, self.written);
        Ok(self.file)
    }
}

fn is_invalid_argument(error: &std::io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        error.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = error;
        false
    }
}

/// Turns `O_DIRECT` on or off for `file`.
#[cfg(target_os = "linux")]
fn set_direct(file: &File, on: bool) -> std::io::Result<()> {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    let flags = fcntl_getfl(file)?;
    let flags = if on {
        flags | OFlags::DIRECT
    } else {
        flags - OFlags::DIRECT
    };
    fcntl_setfl(file, flags)?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn set_direct(_file: &File, on: bool) -> std::io::Result<()> {
    if on {
        Err(std::io::Error::other("O_DIRECT is Linux-only"))
    } else {
        Ok(())
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

    /// Lengths around the block and buffer boundaries, with `O_DIRECT` where the temporary
    /// directory's filesystem takes it and with the buffered path forced.
    #[test]
    fn files_hold_exactly_what_was_written_direct_or_not() {
        let dir = tempfile::tempdir().unwrap();
        for buffered in [false, true] {
            for length in [0, 1, ALIGN - 1, ALIGN + 1, DIRECT_BUFFER, DIRECT_BUFFER + 5] {
                let path = dir.path().join(format!("out-{buffered}-{length}"));
                let mut sink = StreamingFile::new(File::create_new(&path).unwrap());
                if buffered {
                    set_direct(&sink.file, false).unwrap();
                    sink.direct = None;
                }
                let bytes: Vec<u8> = (0..length).map(|i| (i % 251) as u8).collect();
                for piece in bytes.chunks(300_007) {
                    sink.write(piece).unwrap();
                }
                drop(sink.finish().unwrap());
                assert!(std::fs::read(&path).unwrap() == bytes, "length {length}");
            }
        }
    }
}
