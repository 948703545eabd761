//! Padmé padding (FORMAT.md section 4).
//!
//! Threat answered: exact size leakage **[T-size]**. The gateway sees only envelope lengths; every
//! envelope body is padded to `padded_len(content_len)`, which reveals at most O(log log L) bits of
//! the length (Nikitin et al., PETS 2019) and nothing below [`MIN_PADDED_LEN`] bytes.
//!
//! Invariants:
//!
//! - [`padme`] is monotonic, never shrinks its input and is idempotent (`padme(padme(L)) ==
//!   padme(L)`), so [`is_padded_len`] is exactly "is a possible envelope body length";
//! - the functions are total: no input panics or overflows (see [`padme`] for the saturating edge).

/// The smallest padded body length: hides the exact size of small blobs. **Format-fixed.**
pub const MIN_PADDED_LEN: u64 = 256;

/// Bytes the envelope body adds to its content before padding: the kind byte and the `0x80`
/// marker. **Format-fixed.**
pub const BODY_FRAMING_LEN: u64 = 2;

/// Padmé: rounds `len` up so that only its top `floor(log2(floor(log2 len))) + 1` bits remain free.
///
/// Defined by FORMAT.md for `len ≥ 2`; `0` and `1` are returned unchanged. A result that would not
/// fit in a `u64` (only for `len > 2^64 − 2^57`, far beyond any envelope) saturates to `u64::MAX`.
pub const fn padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = len.ilog2(); // E = floor(log2 L) ≥ 1
    let s = e.ilog2() + 1; // S = floor(log2 E) + 1 ≤ E, so z ≥ 0
    let z = e - s;
    let mask = (1u64 << z) - 1; // z ≤ 57, no overflow
    match len.checked_add(mask) {
        Some(sum) => sum & !mask,
        None => u64::MAX,
    }
}

/// The padded envelope body length for `content_len` content bytes:
/// `padme(max(content_len + 2, 256))`.
pub const fn padded_len(content_len: u64) -> u64 {
    let framed = content_len.saturating_add(BODY_FRAMING_LEN);
    padme(if framed < MIN_PADDED_LEN {
        MIN_PADDED_LEN
    } else {
        framed
    })
}

/// Whether `body_len` is a length that [`padded_len`] can produce (for some content length).
pub const fn is_padded_len(body_len: u64) -> bool {
    body_len >= MIN_PADDED_LEN && padme(body_len) == body_len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(padme(2), 2);
        assert_eq!(padme(9), 10); // E = 3, S = 2, z = 1
        assert_eq!(padme(256), 256);
        assert_eq!(padme(257), 272); // E = 8, S = 4, z = 4
        assert_eq!(padme(1_000_000), 1_015_808); // E = 19, S = 5, z = 14
        assert_eq!(padme(1 << 20), 1 << 20);
        assert_eq!(padme((1 << 20) + 1), (1 << 20) + (1 << 15)); // E = 20, S = 5, z = 15
        assert_eq!(padme(0), 0);
        assert_eq!(padme(1), 1);
        assert_eq!(padme(u64::MAX), u64::MAX);
    }

    #[test]
    fn floor_and_framing() {
        assert_eq!(padded_len(0), 256);
        assert_eq!(padded_len(254), 256);
        assert_eq!(padded_len(255), 272);
        assert_eq!(padded_len(1 << 20), padme((1 << 20) + 2));
        assert_eq!(padded_len(u64::MAX), u64::MAX);
    }

    #[test]
    fn monotonic_idempotent_and_bounded_overhead() {
        let mut previous = 0;
        for len in (2u64..70_000).chain((1 << 24) - 5000..(1 << 24) + 5000) {
            let padded = padme(len);
            assert!(padded >= len && padded >= previous, "{len}");
            assert_eq!(padme(padded), padded, "idempotent at {len}");
            // Padmé's overhead is below 12 % for every L ≥ 2^8.
            if len >= 256 {
                assert!((padded - len) * 100 < len * 12, "{len}");
            }
            assert_eq!(is_padded_len(padded), padded >= 256);
            previous = padded;
        }
        assert!(!is_padded_len(257));
        assert!(!is_padded_len(255));
    }
}
