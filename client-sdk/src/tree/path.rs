//! Paths inside a space: absolute, `/`-separated, normalised.
//!
//! Invariant: a [`SpacePath`] is a list of valid [`EntryName`]s (1..=255 bytes, no `/`, no NUL,
//! not `.` or `..`), so no path can escape the space's root or name something a directory node
//! could not hold. Parsing accepts repeated and trailing slashes (`//a//b/` is `/a/b`) and
//! rejects everything else that is ambiguous.

use core::fmt;

use coffre_crypto::dirnode::EntryName;

use crate::error::{Error, Result};

/// An absolute path inside a space; the empty list of components is the root `/`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpacePath {
    components: Vec<EntryName>,
}

impl SpacePath {
    /// The root directory `/`.
    pub fn root() -> Self {
        SpacePath::default()
    }

    /// Parses `/a/b/c`. Fails with [`Error::InvalidInput`] if the text does not start with `/`,
    /// or a component is `.`, `..`, longer than 255 bytes or contains NUL.
    pub fn parse(text: &str) -> Result<Self> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(Error::InvalidInput(format!(
                "a space path must start with '/': {text:?}"
            )));
        };
        let components = rest
            .split('/')
            .filter(|part| !part.is_empty())
            .map(|part| {
                EntryName::new(part).map_err(|_| {
                    Error::InvalidInput(format!("invalid path component {part:?} in {text:?}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SpacePath { components })
    }

    /// A path from already-valid names.
    pub fn from_components(components: Vec<EntryName>) -> Self {
        SpacePath { components }
    }

    /// The names from the root down.
    pub fn components(&self) -> &[EntryName] {
        &self.components
    }

    /// Whether this is `/`.
    pub fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    /// The last component (`None` for the root).
    pub fn file_name(&self) -> Option<&EntryName> {
        self.components.last()
    }

    /// The parent directory (`None` for the root).
    pub fn parent(&self) -> Option<SpacePath> {
        let (_, parent) = self.components.split_last()?;
        Some(SpacePath {
            components: parent.to_vec(),
        })
    }

    /// This path with `name` appended.
    pub fn join(&self, name: &EntryName) -> SpacePath {
        let mut components = self.components.clone();
        components.push(name.clone());
        SpacePath { components }
    }

    /// Whether `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &SpacePath) -> bool {
        self.components.starts_with(&other.components)
    }

    /// The parent and the last name, or [`Error::InvalidInput`] for the root.
    pub fn split_last(&self) -> Result<(SpacePath, &EntryName)> {
        match self.components.split_last() {
            Some((name, parent)) => Ok((
                SpacePath {
                    components: parent.to_vec(),
                },
                name,
            )),
            None => Err(Error::InvalidInput(
                "this operation needs a path below the root".into(),
            )),
        }
    }
}

impl fmt::Display for SpacePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.components.is_empty() {
            return f.write_str("/");
        }
        for name in &self.components {
            write!(f, "/{}", name.as_str())?;
        }
        Ok(())
    }
}

impl core::str::FromStr for SpacePath {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        SpacePath::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_path_parses_and_normalises() {
        assert!(SpacePath::parse("/").unwrap().is_root());
        let path = SpacePath::parse("//a//b/c/").unwrap();
        assert_eq!(path.to_string(), "/a/b/c");
        assert_eq!(path.file_name().unwrap().as_str(), "c");
        assert_eq!(path.parent().unwrap().to_string(), "/a/b");
        assert!(path.starts_with(&SpacePath::parse("/a").unwrap()));
        assert!(!path.starts_with(&SpacePath::parse("/b").unwrap()));
        assert_eq!(SpacePath::parse("/été/日本").unwrap().components().len(), 2);
        for bad in [
            "",
            "a/b",
            "/a/../b",
            "/./a",
            "/a\0b",
            &format!("/{}", "x".repeat(256)),
        ] {
            assert!(
                matches!(SpacePath::parse(bad), Err(Error::InvalidInput(_))),
                "{bad:?}"
            );
        }
        assert!(SpacePath::root().split_last().is_err());
    }
}
