//! Path-wise three-way merge of two snapshots that share a base.
//!
//! Used when a commit loses the compare-and-swap: `base` is the tree our edit started from,
//! `theirs` the tree of the new head, `ours` our edited tree. Directories are compared by blob id
//! first, so unchanged subtrees are neither fetched nor rewritten. For each name:
//!
//! | base / theirs / ours                     | result                                   |
//! |------------------------------------------|------------------------------------------|
//! | ours unchanged (same as base)            | theirs (including their deletion)        |
//! | theirs unchanged                         | ours (including our deletion)            |
//! | both made the same change                | theirs                                   |
//! | one deleted, the other modified          | the modified one                         |
//! | both directories                         | merged recursively                       |
//! | anything else (both changed differently) | theirs at the name, ours as a conflict copy |
//!
//! A conflict copy of `name.ext` is named `name (conflict from WHO YYYY-MM-DD).ext` (`WHO` is our
//! handle, the date is today's in UTC; the extension is what follows the last `.` unless the name
//! starts with its only `.`); if that name is taken, ` 2`, ` 3`, ... is added inside the
//! parentheses. The stem is shortened (at a character boundary) to keep the name within 255
//! bytes. Entries are "the same" when their kind, blob ids, size, mode, target and mtime are
//! equal; two devices that store identical bytes independently produce different manifests
//! (random manifest keys), so that case yields a conflict copy with the same contents.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use coffre_crypto::dirnode::{EntryName, MAX_NAME_LEN};
use coffre_crypto::envelope::BlobRef;
use coffre_crypto::keys::SpaceId;

use super::node::{Dir, DirSlot, Entry, Node};
use super::snapshot::{MAX_DEPTH, Snapshot};
use crate::error::{Error, Result};
use crate::remote::Remote;

/// How conflict copies are named: who made our change, and when.
#[derive(Clone, Debug)]
pub struct ConflictLabel {
    /// Our handle (or a device fingerprint if the handle is unknown).
    pub who: String,
    /// The date, `YYYY-MM-DD`.
    pub date: String,
}

impl ConflictLabel {
    /// A label for `who`, dated now (UTC).
    pub fn now(who: &str) -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or_default();
        ConflictLabel {
            who: who.to_owned(),
            date: utc_date(i64::try_from(secs).unwrap_or(0)),
        }
    }
}

/// `YYYY-MM-DD` of a Unix time in UTC (proleptic Gregorian calendar).
pub fn utc_date(unix_secs: i64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let days = unix_secs.div_euclid(86_400) + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The name of the conflict copy of `name`, not in `taken`.
pub fn conflict_name(
    name: &EntryName,
    label: &ConflictLabel,
    taken: &dyn Fn(&EntryName) -> bool,
) -> Result<EntryName> {
    let full = name.as_str();
    let (stem, ext) = match full.rfind('.') {
        Some(dot) if dot > 0 => full.split_at(dot),
        _ => (full, ""),
    };
    for attempt in 1u32..=1000 {
        let counter = if attempt == 1 {
            String::new()
        } else {
            format!(" {attempt}")
        };
        let suffix = format!(
            " (conflict from {} {}{counter}){ext}",
            label.who, label.date
        );
        let mut room = MAX_NAME_LEN.saturating_sub(suffix.len());
        while room > 0 && !stem.is_char_boundary(room.min(stem.len())) {
            room -= 1;
        }
        let short = stem.get(..room.min(stem.len())).unwrap_or_default();
        let candidate = EntryName::new(&format!("{short}{suffix}"))
            .or_else(|_| EntryName::new(&format!("conflict {}{counter}", label.date)))?;
        if !taken(&candidate) {
            return Ok(candidate);
        }
    }
    Err(Error::Conflict(format!(
        "no free name for a conflict copy of {full}"
    )))
}

/// What the merge did, for the caller to report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Conflict copies made: `(original path, copy path)`, as text.
    pub conflicts: Vec<(String, String)>,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

struct Merger<'a, R> {
    remote: &'a R,
    space: SpaceId,
    label: &'a ConflictLabel,
    report: MergeReport,
}

/// Merges `ours` into `theirs` against `base` (`None`: the empty tree) and returns the merged
/// snapshot (not yet written) and what was renamed.
pub async fn merge_trees<'r, R: Remote>(
    remote: &'r R,
    space: SpaceId,
    base: Option<&BlobRef>,
    theirs: &BlobRef,
    ours: &BlobRef,
    label: &ConflictLabel,
) -> Result<(Snapshot<'r, R>, MergeReport)> {
    let mut merger = Merger {
        remote,
        space,
        label,
        report: MergeReport::default(),
    };
    let base = match base {
        Some(base) => DirSlot::Stored(base.duplicate()),
        None => DirSlot::Loaded(Box::new(Dir::new_empty())),
    };
    let merged = merger
        .merge_dirs(
            String::new(),
            Some(base),
            DirSlot::Stored(theirs.duplicate()),
            DirSlot::Stored(ours.duplicate()),
            0,
        )
        .await?;
    let mut snapshot = Snapshot::open(remote, space, theirs.duplicate());
    *snapshot.root_slot_mut() = merged;
    Ok((snapshot, merger.report))
}

fn same(a: Option<&Entry>, b: Option<&Entry>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same_as(b),
        _ => false,
    }
}

impl<'a, R: Remote> Merger<'a, R> {
    fn merge_dirs<'s>(
        &'s mut self,
        at: String,
        base: Option<DirSlot>,
        theirs: DirSlot,
        ours: DirSlot,
        depth: usize,
    ) -> BoxFuture<'s, Result<DirSlot>>
    where
        'a: 's,
    {
        Box::pin(async move {
            if depth > MAX_DEPTH {
                return Err(Error::Conflict("tree too deep to merge".into()));
            }
            let base_id = base.as_ref().and_then(DirSlot::clean_id);
            let (theirs_id, ours_id) = (theirs.clean_id(), ours.clean_id());
            if ours_id.is_some() && (ours_id == theirs_id || ours_id == base_id) {
                return Ok(theirs);
            }
            if theirs_id.is_some() && theirs_id == base_id {
                return Ok(ours);
            }
            let (remote, space) = (self.remote, self.space);
            let mut base_dir = match base {
                Some(mut slot) => std::mem::take(slot.load(remote, &space).await?),
                None => Dir::default(),
            };
            let mut theirs = theirs;
            let mut ours = ours;
            let mut result = std::mem::take(theirs.load(remote, &space).await?);
            let mut ours_dir = std::mem::take(ours.load(remote, &space).await?);
            result.dirty = true;
            let names: BTreeSet<EntryName> = base_dir
                .entries
                .keys()
                .chain(result.entries.keys())
                .chain(ours_dir.entries.keys())
                .cloned()
                .collect();
            for name in names {
                let path = format!("{at}/{}", name.as_str());
                let b = base_dir.entries.remove(&name);
                let o = ours_dir.entries.remove(&name);
                let t = result.entries.get(&name);
                if same(o.as_ref(), b.as_ref()) || same(o.as_ref(), t) {
                    continue; // keep theirs
                }
                let Some(o) = o else {
                    // We deleted; they modified (else `same(t, b)` below would hold).
                    if same(t, b.as_ref()) {
                        result.entries.remove(&name);
                    }
                    continue;
                };
                if t.is_none() || same(t, b.as_ref()) {
                    // They deleted and we modified, or they did not touch it.
                    result.entries.insert(name, o);
                    continue;
                }
                let both_dirs = matches!(
                    (t.map(|t| &t.node), &o.node),
                    (Some(Node::Dir(_)), Node::Dir(_))
                );
                if both_dirs && let Some(mut t) = result.entries.remove(&name) {
                    let base_slot = match b.map(|b| b.node) {
                        Some(Node::Dir(slot)) => Some(slot),
                        _ => None,
                    };
                    let (Node::Dir(their_slot), Node::Dir(our_slot)) = (
                        std::mem::replace(
                            &mut t.node,
                            Node::Symlink {
                                target: String::new(),
                            },
                        ),
                        o.node,
                    ) else {
                        continue; // checked just above
                    };
                    let merged = self
                        .merge_dirs(path, base_slot, their_slot, our_slot, depth + 1)
                        .await?;
                    t.node = Node::Dir(merged);
                    result.entries.insert(name, t);
                    continue;
                }
                let copy = conflict_name(&name, self.label, &|candidate| {
                    result.entries.contains_key(candidate)
                        || ours_dir.entries.contains_key(candidate)
                        || base_dir.entries.contains_key(candidate)
                })?;
                self.report
                    .conflicts
                    .push((path, format!("{at}/{}", copy.as_str())));
                result.entries.insert(copy, o);
            }
            Ok(DirSlot::Loaded(Box::new(result)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_conflict_names_follow_the_rule() {
        let label = ConflictLabel {
            who: "alice".into(),
            date: "2024-05-01".into(),
        };
        let none = |_: &EntryName| false;
        let name = |text: &str| EntryName::new(text).unwrap();
        assert_eq!(
            conflict_name(&name("report.txt"), &label, &none)
                .unwrap()
                .as_str(),
            "report (conflict from alice 2024-05-01).txt"
        );
        assert_eq!(
            conflict_name(&name(".bashrc"), &label, &none)
                .unwrap()
                .as_str(),
            ".bashrc (conflict from alice 2024-05-01)"
        );
        let first = name("a (conflict from alice 2024-05-01)");
        assert_eq!(
            conflict_name(&name("a"), &label, &|n: &EntryName| *n == first)
                .unwrap()
                .as_str(),
            "a (conflict from alice 2024-05-01 2)"
        );
        let long = "é".repeat(126) + ".md";
        let copy = conflict_name(&name(&long), &label, &none).unwrap();
        assert!(copy.as_str().len() <= 255 && copy.as_str().ends_with(").md"));
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1_714_521_600), "2024-05-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
    }
}
