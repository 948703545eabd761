//! Writing blob files around the page cache: on Linux the file is switched to `O_DIRECT` and
//! written in aligned blocks from an aligned buffer; where the filesystem refuses (tmpfs, some
//! network filesystems) or off Linux, the same writer does ordinary buffered writes.
//!
//! Why: a gateway storing large uploads otherwise pulls every byte through the page cache, where
//! it mostly evicts what readers use, and on the virtual machines coffre is measured on handing
//! out page-cache pages costs more CPU than the rest of the upload path (gateway system CPU for a
//! 1 GiB upload: 2.5-2.9 s buffered; `dd` on the same disk, 1 GiB fsynced: 0.26-2.03 s system
//! buffered, 0.15-0.32 s with `O_DIRECT`). Readers still go through the page cache (and its
//! read-ahead); only the writing bypasses it.
//!
//! Correctness does not depend on `O_DIRECT`: the caller still fsyncs the file before giving it
//! its final name (the fsync also flushes the drive's write cache, which `O_DIRECT` alone does
//! not), and the last, partial block is written padded with zeros and the file then truncated to
//! its exact length, before that fsync.

use std::fs::File;
use std::io::{self, Write};

/// Alignment of `O_DIRECT` buffers, offsets and lengths: the largest logical block size in use
/// (4 KiB drives), which every smaller one divides.
const ALIGN: usize = 4096;
/// Bytes gathered before each `O_DIRECT` write (a multiple of [`ALIGN`]): one write per typical
/// 1 MiB chunk.
const DIRECT_BUFFER: usize = 1024 * 1024;
/// Buffer of the buffered fallback, so also the size of each `write(2)`: page-cache copies of
/// 128 KiB cost a third of those of 1 MiB and two thirds of those of 256 KiB on Linux 6.18 /
/// ext4 (measured with `dd`, 1 GiB).
const WRITE_BUFFER: usize = 128 * 1024;

/// A blob file being written (see the module docs).
pub(crate) struct BlobFileWriter {
    file: File,
    /// Backing bytes; the buffer is `storage[start..start + capacity]`, `start` chosen so that
    /// the buffer's address is a multiple of [`ALIGN`].
    storage: Vec<u8>,
    start: usize,
    capacity: usize,
    filled: usize,
    /// Bytes given to [`BlobFileWriter::write`] so far: the file's final length.
    length: u64,
    direct: bool,
}

impl BlobFileWriter {
    /// Wraps a freshly created, empty file opened for writing.
    pub(crate) fn new(file: File) -> BlobFileWriter {
        let direct = set_direct(&file, true).is_ok();
        let capacity = if direct { DIRECT_BUFFER } else { WRITE_BUFFER };
        let storage = vec![0u8; capacity + ALIGN];
        // `align_offset` of a byte pointer is always below `ALIGN`; the `min` keeps the slice in
        // bounds whatever it answers.
        let start = storage.as_ptr().align_offset(ALIGN).min(ALIGN);
        BlobFileWriter {
            file,
            storage,
            start,
            capacity,
            filled: 0,
            length: 0,
            direct,
        }
    }

    /// Appends `bytes`.
    pub(crate) fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let take = (self.capacity - self.filled).min(bytes.len());
            let at = self.start + self.filled;
            self.storage[at..at + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            self.length += take as u64;
            bytes = &bytes[take..];
            if self.filled == self.capacity {
                self.write_out(self.capacity)?;
                self.filled = 0;
            }
        }
        Ok(())
    }

    /// Writes what is buffered and returns the file at its exact length (not yet fsynced).
    pub(crate) fn finish(mut self) -> io::Result<File> {
        if self.filled > 0 {
            if self.direct {
                let padded = self.filled.next_multiple_of(ALIGN);
                let from = self.start + self.filled;
                self.storage[from..self.start + padded].fill(0);
                self.write_out(padded)?;
                self.file.set_len(self.length)?;
            } else {
                self.write_out(self.filled)?;
            }
        }
        Ok(self.file)
    }

    /// Writes the first `len` buffered bytes at the end of what was written. An `O_DIRECT` write
    /// the filesystem refuses as misaligned (also after a short write) goes on buffered, and the
    /// file stays buffered.
    fn write_out(&mut self, len: usize) -> io::Result<()> {
        let block = &self.storage[self.start..self.start + len];
        let mut done = 0;
        while done < len {
            match self.file.write(&block[done..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => done += written,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if self.direct && is_invalid_argument(&error) => {
                    set_direct(&self.file, false)?;
                    self.direct = false;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

fn is_invalid_argument(error: &io::Error) -> bool {
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
fn set_direct(file: &File, on: bool) -> io::Result<()> {
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
fn set_direct(_file: &File, on: bool) -> io::Result<()> {
    if on {
        Err(io::Error::other("O_DIRECT is Linux-only"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lengths around the buffer and block boundaries, in uneven pieces: the file holds exactly
    /// the bytes given, on a filesystem with `O_DIRECT` (the temporary directory) or without.
    #[test]
    fn files_hold_exactly_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        for (n, length) in [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            ALIGN + 1,
            DIRECT_BUFFER - 1,
            DIRECT_BUFFER,
            DIRECT_BUFFER + 7,
            3 * DIRECT_BUFFER + ALIGN + 5,
        ]
        .into_iter()
        .enumerate()
        {
            let path = dir.path().join(format!("blob{n}"));
            let bytes: Vec<u8> = (0..length).map(|i| (i * 7 + n) as u8).collect();
            let mut writer = BlobFileWriter::new(File::create_new(&path).unwrap());
            for piece in bytes.chunks(100_003) {
                writer.write(piece).unwrap();
            }
            let file = writer.finish().unwrap();
            file.sync_all().unwrap();
            assert_eq!(file.metadata().unwrap().len(), length as u64);
            drop(file);
            assert!(std::fs::read(&path).unwrap() == bytes, "length {length}");
        }
    }
}
