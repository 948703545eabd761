//! The canonical binary encoding of `docs/FORMAT.md` section 1: big-endian integers, length-prefixed
//! strings and byte strings, and a 4-byte magic plus version byte in front of every structure.
//!
//! `Reader` is the only way this crate reads untrusted bytes. It never panics, checks every
//! length against the remaining input *and* a caller-given maximum before slicing, and makes the
//! caller say explicitly that the input is finished (`Reader::finish`), so trailing bytes are never
//! silently ignored.

use crate::error::{Error, Result};

/// The format version of every structure in `docs/FORMAT.md`. **Format-fixed.**
pub const FORMAT_VERSION: u8 = 0x01;

/// The default maximum of a `bytes32` field that the format does not bound otherwise
/// (`docs/FORMAT.md` section 11). **Format-fixed.**
pub const MAX_BYTES_FIELD: usize = 64 * 1024;

/// Builds the canonical encoding of one structure.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Starts a structure with its magic and [`FORMAT_VERSION`].
    pub(crate) fn with_header(magic: &[u8; 4]) -> Self {
        let mut writer = Writer {
            buf: Vec::with_capacity(128),
        };
        writer.raw(magic);
        writer.u8(FORMAT_VERSION);
        writer
    }

    /// Like [`Writer::with_header`], with room for `capacity` bytes reserved up front: for
    /// structures that hold keys, so that no reallocation leaves an unzeroized copy behind.
    pub(crate) fn with_header_capacity(magic: &[u8; 4], capacity: usize) -> Self {
        let mut writer = Writer {
            buf: Vec::with_capacity(capacity.max(5)),
        };
        writer.raw(magic);
        writer.u8(FORMAT_VERSION);
        writer
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.buf.push(value);
    }

    pub(crate) fn u16(&mut self, value: u16) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn i64(&mut self, value: i64) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    /// Raw bytes with no length prefix (fixed-size fields such as `b32`).
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// A `str16`: fails if longer than `max` bytes (or than `u16::MAX`).
    pub(crate) fn str16(&mut self, value: &str, max: usize) -> Result<()> {
        let len = u16::try_from(value.len())
            .ok()
            .filter(|len| usize::from(*len) <= max)
            .ok_or(Error::InvalidInput("string too long for its field"))?;
        self.u16(len);
        self.raw(value.as_bytes());
        Ok(())
    }

    /// A `bytes32`: fails if longer than `max` bytes.
    pub(crate) fn bytes32(&mut self, value: &[u8], max: usize) -> Result<()> {
        let len = u32::try_from(value.len())
            .ok()
            .filter(|len| *len as usize <= max)
            .ok_or(Error::InvalidInput("byte string too long for its field"))?;
        self.u32(len);
        self.raw(value);
        Ok(())
    }

    /// A `list32` count: fails if above `max` items.
    pub(crate) fn count32(&mut self, count: usize, max: usize) -> Result<()> {
        let count = u32::try_from(count)
            .ok()
            .filter(|count| *count as usize <= max)
            .ok_or(Error::InvalidInput("too many items for a list"))?;
        self.u32(count);
        Ok(())
    }

    /// The bytes written so far (e.g. the part of a structure that a signature covers).
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads one structure from untrusted bytes.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    position: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader for the structure named `what` (used in error messages).
    pub(crate) fn new(input: &'a [u8], what: &'static str) -> Self {
        Reader {
            input,
            position: 0,
            what,
        }
    }

    /// A reader that first checks the magic and the version byte.
    pub(crate) fn with_header(
        input: &'a [u8],
        magic: &[u8; 4],
        what: &'static str,
    ) -> Result<Self> {
        let mut reader = Reader::new(input, what);
        if reader.take(4)? != magic {
            return Err(reader.error("wrong magic"));
        }
        if reader.u8()? != FORMAT_VERSION {
            return Err(reader.error("unsupported format version"));
        }
        Ok(reader)
    }

    /// A malformed-input error for this structure.
    pub(crate) fn error(&self, reason: &'static str) -> Error {
        Error::malformed(self.what, reason)
    }

    /// Bytes left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.input.len() - self.position
    }

    /// Everything read so far, from the first byte (what a trailing signature covers).
    pub(crate) fn consumed(&self) -> &'a [u8] {
        &self.input[..self.position]
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        if len > self.remaining() {
            return Err(self.error("truncated"));
        }
        let start = self.position;
        self.position += len;
        Ok(&self.input[start..self.position])
    }

    /// All remaining bytes.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let start = self.position;
        self.position = self.input.len();
        &self.input[start..]
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn b32(&mut self) -> Result<[u8; 32]> {
        self.array::<32>()
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// A `str16` of at most `max` bytes of valid UTF-8.
    pub(crate) fn str16(&mut self, max: usize) -> Result<&'a str> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(self.error("string longer than its limit"));
        }
        let bytes = self.take(len)?;
        core::str::from_utf8(bytes).map_err(|_| self.error("string is not UTF-8"))
    }

    /// A `bytes32` of at most `max` bytes.
    pub(crate) fn bytes32(&mut self, max: usize) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(self.error("byte string longer than its limit"));
        }
        self.take(len)
    }

    /// A `list32` count of at most `max` items, each at least `min_item_len` bytes long; checked
    /// against the remaining input so a hostile count cannot make the caller pre-allocate.
    pub(crate) fn count32(&mut self, max: usize, min_item_len: usize) -> Result<usize> {
        let count = self.u32()? as usize;
        if count > max {
            return Err(self.error("list longer than its limit"));
        }
        if count.saturating_mul(min_item_len) > self.remaining() {
            return Err(self.error("truncated"));
        }
        Ok(count)
    }

    /// Ends decoding: fails if any byte is left.
    pub(crate) fn finish(self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(self.error("trailing bytes"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_every_field_kind() {
        let mut writer = Writer::with_header(b"TEST");
        writer.u8(7);
        writer.u16(0x0102);
        writer.u32(0x0304_0506);
        writer.u64(u64::MAX);
        writer.i64(-5);
        writer.raw(&[9; 32]);
        writer.str16("héllo", 10).unwrap();
        writer.bytes32(b"abc", 3).unwrap();
        writer.count32(2, 2).unwrap();
        let bytes = writer.into_vec();
        assert_eq!(&bytes[..5], b"TEST\x01");
        assert_eq!(&bytes[6..8], &[1, 2], "big-endian");

        let mut reader = Reader::with_header(&bytes, b"TEST", "test").unwrap();
        assert_eq!(reader.u8().unwrap(), 7);
        assert_eq!(reader.u16().unwrap(), 0x0102);
        assert_eq!(reader.u32().unwrap(), 0x0304_0506);
        assert_eq!(reader.u64().unwrap(), u64::MAX);
        assert_eq!(reader.i64().unwrap(), -5);
        assert_eq!(reader.b32().unwrap(), [9; 32]);
        assert_eq!(reader.str16(10).unwrap(), "héllo");
        assert_eq!(reader.bytes32(3).unwrap(), b"abc");
        assert_eq!(reader.count32(2, 0).unwrap(), 2);
        reader.finish().unwrap();
    }

    #[test]
    fn reader_refuses_bad_input_without_panicking() {
        assert!(Reader::with_header(b"TES", b"TEST", "t").is_err());
        assert!(Reader::with_header(b"TEST\x02", b"TEST", "t").is_err());
        assert!(Reader::with_header(b"XEST\x01", b"TEST", "t").is_err());

        let mut reader = Reader::new(&[0, 5, b'a'], "t");
        assert!(reader.str16(100).is_err(), "length beyond input");
        let mut reader = Reader::new(&[0, 2, 0xff, 0xfe], "t");
        assert!(reader.str16(100).is_err(), "invalid UTF-8");
        let mut reader = Reader::new(&[0, 0, 0, 9], "t");
        assert!(reader.bytes32(8).is_err(), "length beyond limit");
        let mut reader = Reader::new(&[0xff, 0xff, 0xff, 0xff], "t");
        assert!(reader.count32(usize::MAX, 1).is_err(), "count beyond input");
        let reader = Reader::new(&[1], "t");
        assert!(reader.finish().is_err(), "trailing bytes");
    }

    #[test]
    fn writer_refuses_oversized_fields() {
        let mut writer = Writer::default();
        assert!(writer.str16("abcd", 3).is_err());
        assert!(writer.bytes32(&[0; 5], 4).is_err());
        assert!(writer.count32(5, 4).is_err());
    }
}
