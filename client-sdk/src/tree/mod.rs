//! The snapshot model: a space's tree as an encrypted Merkle DAG of directory nodes and file
//! manifests (FORMAT.md sections 6 and 7), read lazily and edited by rewriting only the changed
//! paths.
//!
//! - [`path`]: [`SpacePath`], validated absolute paths;
//! - [`snapshot`]: [`Snapshot`], lazy loading and the path operations;
//! - [`merge`]: the three-way merge used when two devices commit concurrently.

pub mod merge;
mod node;
pub mod path;
pub mod snapshot;

pub use merge::{ConflictLabel, MergeReport, merge_trees};
pub(crate) use node::now;
pub use path::SpacePath;
pub use snapshot::{EntryInfo, EntryType, FileRef, MAX_DEPTH, Snapshot};
