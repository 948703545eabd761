//! Argon2id passphrase stretching (FORMAT.md section 8.4).
//!
//! A passphrase becomes a key bundle's `wrapping_secret` only through [`stretch`]: Argon2id,
//! version 0x13, 32 bytes of output, with a 16-byte random salt and [`Argon2Params`].
//!
//! Invariants:
//!
//! - an [`Argon2Params`] value always lies inside [`Argon2Params::MIN`]`..=`[`Argon2Params::MAX`]:
//!   its fields are private and [`Argon2Params::new`] is the only constructor (parse, don't
//!   validate). Parameters below the minimum are a KDF downgrade **[T-downgrade]** that would make
//!   offline guessing cheap **[T-offline-guess]**; parameters above the maximum would let whoever
//!   supplies a key bundle exhaust a client's memory or time. There is no cheaper path, not even for
//!   tests.
//! - a [`Passphrase`] zeroizes on drop, prints as `<redacted>` and is never `Clone`.
//! - the passphrase is stretched as its UTF-8 bytes, exactly as given: no Unicode normalization and
//!   no trimming (callers that accept typed input should normalize before constructing it).

use core::fmt;

use argon2::{Algorithm, Argon2, Version};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keys::DerivedKey;

/// Length of an Argon2id salt in a key bundle. **Format-fixed.**
pub const SALT_LEN: usize = 16;
/// Length of the Argon2id output (the wrapping secret). **Format-fixed.**
pub const OUTPUT_LEN: usize = 32;

/// A passphrase: zeroized on drop, redacted in `Debug`, never cloned.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Takes ownership of the passphrase (its buffer is zeroized when this value drops).
    pub fn new(passphrase: String) -> Self {
        Passphrase(Zeroizing::new(passphrase))
    }

    /// The passphrase. Named so that every use is visible in review.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether the passphrase is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Passphrase {
    fn from(passphrase: String) -> Self {
        Passphrase::new(passphrase)
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// Argon2id cost parameters, always within [`Argon2Params::MIN`]`..=`[`Argon2Params::MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
}

impl Argon2Params {
    /// Defaults for new bundles: 64 MiB, 3 passes, 1 lane. (Not format-fixed: stored per bundle.)
    pub const DEFAULT: Self = Argon2Params {
        m_cost_kib: 65_536,
        t_cost: 3,
        p_cost: 1,
    };
    /// Lower bounds, each checked on its own: 19 456 KiB, 2 passes, 1 lane. **Format-fixed.**
    pub const MIN: Self = Argon2Params {
        m_cost_kib: 19_456,
        t_cost: 2,
        p_cost: 1,
    };
    /// Upper bounds, each checked on its own: 1 GiB, 16 passes, 4 lanes. **Format-fixed.**
    pub const MAX: Self = Argon2Params {
        m_cost_kib: 1_048_576,
        t_cost: 16,
        p_cost: 4,
    };

    /// Checks each parameter against [`Self::MIN`] and [`Self::MAX`].
    ///
    /// Errors are [`Error::InvalidInput`] naming the parameter and the bound; a decoder of untrusted
    /// bytes maps them to its own malformed error.
    pub const fn new(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self> {
        let (min, max) = (Self::MIN, Self::MAX);
        if m_cost_kib < min.m_cost_kib {
            return Err(Error::InvalidInput(
                "Argon2id memory cost below the minimum",
            ));
        }
        if m_cost_kib > max.m_cost_kib {
            return Err(Error::InvalidInput(
                "Argon2id memory cost above the maximum",
            ));
        }
        if t_cost < min.t_cost {
            return Err(Error::InvalidInput("Argon2id time cost below the minimum"));
        }
        if t_cost > max.t_cost {
            return Err(Error::InvalidInput("Argon2id time cost above the maximum"));
        }
        if p_cost < min.p_cost {
            return Err(Error::InvalidInput(
                "Argon2id parallelism below the minimum",
            ));
        }
        if p_cost > max.p_cost {
            return Err(Error::InvalidInput(
                "Argon2id parallelism above the maximum",
            ));
        }
        Ok(Argon2Params {
            m_cost_kib,
            t_cost,
            p_cost,
        })
    }

    /// Memory cost in KiB.
    pub const fn m_cost_kib(&self) -> u32 {
        self.m_cost_kib
    }

    /// Number of passes.
    pub const fn t_cost(&self) -> u32 {
        self.t_cost
    }

    /// Number of lanes.
    pub const fn p_cost(&self) -> u32 {
        self.p_cost
    }
}

/// `Argon2id(passphrase, salt, m, t, p)` with a 32-byte output: the wrapping secret of a
/// passphrase key bundle.
///
/// Costs up to `params.m_cost_kib()` KiB of memory; fails with [`Error::InvalidInput`] only if
/// that memory cannot be allocated.
pub fn stretch(
    passphrase: &Passphrase,
    salt: &[u8; SALT_LEN],
    params: Argon2Params,
) -> Result<DerivedKey> {
    let argon_params = argon2::Params::new(
        params.m_cost_kib,
        params.t_cost,
        params.p_cost,
        Some(OUTPUT_LEN),
    )
    // Unreachable: MIN..=MAX lies inside the argon2 crate's accepted range.
    .map_err(|_| Error::InvalidInput("Argon2id parameters refused"))?;
    let mut output = Zeroizing::new([0u8; OUTPUT_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params)
        .hash_password_into(passphrase.expose_secret().as_bytes(), salt, &mut *output)
        .map_err(|_| Error::InvalidInput("Argon2id failed (memory unavailable?)"))?;
    Ok(DerivedKey::from_bytes(*output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_bounds_are_enforced() {
        assert_eq!(
            Argon2Params::new(65_536, 3, 1).unwrap(),
            Argon2Params::DEFAULT
        );
        assert!(Argon2Params::new(19_456, 2, 1).is_ok());
        assert!(Argon2Params::new(1_048_576, 16, 4).is_ok());
        for (m, t, p) in [
            (19_455, 3, 1),
            (65_536, 1, 1),
            (65_536, 3, 0),
            (1_048_577, 3, 1),
            (65_536, 17, 1),
            (65_536, 3, 5),
            (0, 0, 0),
            (u32::MAX, u32::MAX, u32::MAX),
        ] {
            assert!(
                matches!(Argon2Params::new(m, t, p), Err(Error::InvalidInput(_))),
                "{m} {t} {p}"
            );
        }
    }

    #[test]
    fn passphrase_is_redacted() {
        let passphrase = Passphrase::from("hunter2".to_owned());
        assert_eq!(format!("{passphrase:?}"), "Passphrase(<redacted>)");
    }

    #[test]
    fn stretch_depends_on_every_input() {
        let params = Argon2Params::MIN;
        let pass = Passphrase::from("correct horse".to_owned());
        let base = stretch(&pass, &[1; SALT_LEN], params).unwrap();
        assert_eq!(base, stretch(&pass, &[1; SALT_LEN], params).unwrap());
        assert_ne!(base, stretch(&pass, &[2; SALT_LEN], params).unwrap());
        let other = Passphrase::from("correct horsf".to_owned());
        assert_ne!(base, stretch(&other, &[1; SALT_LEN], params).unwrap());
        let slower = Argon2Params::new(19_456, 3, 1).unwrap();
        assert_ne!(base, stretch(&pass, &[1; SALT_LEN], slower).unwrap());
    }
}
