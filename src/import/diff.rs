//! The diff of an extract against the published generation, computed while the lines are
//! read: each professional's content hash is the sum of the hashes of their lines, so it
//! ignores line order and needs no sort; only added and changed professionals are then
//! built. Pure: hashes in, a plan out.

use super::gate::DiffCounts;
use crate::extract::FileKind;
use crate::national_id::{IdMap, PackedId};

/// Hash of one line (its canonical values joined by `|`), seeded with its file: the same
/// values in another file are other data. XXH3: change detection of the publisher's own
/// data needs no cryptographic hash, and this one costs little next to reading the line.
pub fn line_hash(kind: FileKind, joined_line: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128_with_seed(joined_line, kind.code() as u64)
}

/// What the reader learns of one professional.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Staged {
    pub id: PackedId,
    /// Sum of the line hashes (a multiset hash: order-blind; an extra copy of a line counts).
    pub hash: u128,
    /// Savoir-faire or diploma lines alone do not make a professional of the extract.
    pub has_activity_line: bool,
    /// One of their lines was rejected: they are kept as published, not built from their
    /// remaining lines.
    pub tainted: bool,
}

/// Content hashes of the extract being read, per professional. Each professional has a
/// slot, their place in order of first appearance: the lines read point at it.
#[derive(Debug, Default)]
pub struct StagedHashes {
    slots: IdMap<u32>,
    professionals: Vec<Staged>,
    /// The last professional given a slot: in an extract grouped by professional, most
    /// lines belong to the one before them, and need no lookup.
    last: Option<(PackedId, u32)>,
}

impl StagedHashes {
    /// Adds a directory line's hash (`line_hash`; not MSSanté) to the professional in `slot`.
    pub fn add_hash(&mut self, slot: u32, kind: FileKind, line_hash: u128) {
        let entry = &mut self.professionals[slot as usize];
        entry.hash = entry.hash.wrapping_add(line_hash);
        entry.has_activity_line |= kind == FileKind::PersonneActivite;
    }

    /// One of this professional's directory lines was rejected.
    pub fn taint(&mut self, id: PackedId) {
        let slot = self.slot(id);
        self.professionals[slot as usize].tainted = true;
    }

    /// The professional's slot, given on their first line.
    pub fn slot(&mut self, id: PackedId) -> u32 {
        if let Some((last, slot)) = self.last
            && last == id
        {
            return slot;
        }
        let next = self.professionals.len() as u32;
        let slot = *self.slots.entry(id).or_insert(next);
        self.last = Some((id, slot));
        if slot == next {
            self.professionals.push(Staged {
                id,
                hash: 0,
                has_activity_line: false,
                tainted: false,
            });
        }
        slot
    }

    /// The professional in `slot`.
    pub fn professional(&self, slot: u32) -> Option<&Staged> {
        self.professionals.get(slot as usize)
    }

    pub fn len(&self) -> usize {
        self.professionals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.professionals.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Changed,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Changed => "changed",
        }
    }
}

/// What to build and what is gone.
#[derive(Debug, Default)]
pub struct Plan {
    /// Professionals to build, with their new content hash.
    pub build: IdMap<(Change, u128)>,
    /// Every professional of the extract is to be built (an empty store): no need to
    /// select them.
    pub build_all: bool,
    pub removed: Vec<String>,
    pub counts: DiffCounts,
    pub professionals: i64,
    /// Professionals with savoir-faire or diploma lines but no Personne_activite line.
    pub orphans: i64,
}

/// Compares the extract with the published hashes (`published` holds the published
/// professionals' hashes and their counts per identifier type).
pub fn plan(staged: &StagedHashes, mut published: IdMap<u128>, published_counts: DiffCounts) -> Plan {
    let mut plan = Plan {
        counts: published_counts,
        build_all: published.is_empty(),
        ..Plan::default()
    };
    for staged in &staged.professionals {
        let id = staged.id;
        // A professional with a rejected line keeps their published version (not removed,
        // not changed) and a new one is not added: building from the lines left would
        // publish a record the extract does not hold.
        if staged.tainted {
            if published.remove(&id).is_some() || staged.has_activity_line {
                plan.professionals += 1;
            }
            plan.counts.of_type(id.id_type()).rejected_lines += 1;
            continue;
        }
        if !staged.has_activity_line {
            plan.orphans += 1;
            continue;
        }
        plan.professionals += 1;
        let counts = plan.counts.of_type(id.id_type());
        match published.remove(&id) {
            None => {
                counts.added += 1;
                plan.build.insert(id, (Change::Added, staged.hash));
            }
            Some(old) if old != staged.hash => {
                counts.changed += 1;
                plan.build.insert(id, (Change::Changed, staged.hash));
            }
            Some(_) => counts.unchanged += 1,
        }
    }
    let mut removed: Vec<String> = published.into_keys().map(PackedId::unpack).collect();
    removed.sort_unstable();
    for id in &removed {
        plan.counts.of_type(id.as_bytes()[0]).removed += 1;
    }
    plan.removed = removed;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(lines: &[(FileKind, &str, &[&str])]) -> StagedHashes {
        let mut hashes = StagedHashes::default();
        for (kind, id, fields) in lines {
            let slot = hashes.slot(PackedId::of(id.as_bytes()));
            hashes.add_hash(slot, *kind, line_hash(*kind, fields.join("|").as_bytes()));
        }
        hashes
    }

    fn hash_of(s: &StagedHashes, id: &str) -> u128 {
        s.professional(s.slots[&PackedId::of(id.as_bytes())])
            .expect("slot")
            .hash
    }

    const PA: FileKind = FileKind::PersonneActivite;
    const SF: FileKind = FileKind::SavoirFaire;

    #[test]
    fn hash_ignores_line_order_but_sees_values_and_files() {
        let a: &[&str] = &["810001234565", "0100000000"];
        let b: &[&str] = &["810001234565", "0200000000"];
        let one = staged(&[(PA, "810001234565", a), (PA, "810001234565", b)]);
        let other_order = staged(&[(PA, "810001234565", b), (PA, "810001234565", a)]);
        assert_eq!(hash_of(&one, "810001234565"), hash_of(&other_order, "810001234565"));
        let changed = staged(&[
            (PA, "810001234565", a),
            (PA, "810001234565", &["810001234565", "0300000000"]),
        ]);
        assert_ne!(hash_of(&one, "810001234565"), hash_of(&changed, "810001234565"));
        let moved_to_other_file = staged(&[(PA, "810001234565", a), (SF, "810001234565", b)]);
        assert_ne!(
            hash_of(&one, "810001234565"),
            hash_of(&moved_to_other_file, "810001234565")
        );
    }

    #[test]
    fn plan_finds_added_changed_removed_and_orphans() {
        let s = staged(&[
            (PA, "810000000001", &["same"]),
            (PA, "810000000002", &["new value"]),
            (PA, "810000000003", &["brand new"]),
            (PA, "0012600631", &["adeli"]),
            (SF, "810000000009", &["savoir-faire only"]),
        ]);
        let mut published = IdMap::default();
        published.insert(PackedId::of(b"810000000001"), hash_of(&s, "810000000001"));
        published.insert(PackedId::of(b"810000000002"), 42);
        published.insert(PackedId::of(b"810000000004"), 7);
        published.insert(PackedId::of(b"0012600631"), hash_of(&s, "0012600631"));
        let mut counts = DiffCounts::default();
        counts.rpps.published = 3;
        counts.adeli.published = 1;
        let plan = plan(&s, published, counts);
        assert!(!plan.build_all);
        assert_eq!(plan.removed, vec!["810000000004".to_owned()]);
        assert_eq!(
            (
                plan.counts.rpps.added,
                plan.counts.rpps.changed,
                plan.counts.rpps.removed,
                plan.counts.rpps.unchanged
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(
            (plan.counts.adeli.unchanged, plan.professionals, plan.orphans),
            (1, 4, 1)
        );
        assert_eq!(plan.build[&PackedId::of(b"810000000002")].0, Change::Changed);
        assert_eq!(plan.build[&PackedId::of(b"810000000003")].0, Change::Added);
        assert_eq!(plan.build.len(), 2);
    }

    #[test]
    fn a_professional_with_a_rejected_line_is_kept_not_removed_nor_added() {
        let mut s = staged(&[(PA, "810000000001", &["other line"]), (PA, "810000000003", &["new"])]);
        s.taint(PackedId::of(b"810000000001"));
        s.taint(PackedId::of(b"810000000002"));
        s.taint(PackedId::of(b"810000000003"));
        let mut published = IdMap::default();
        published.insert(PackedId::of(b"810000000001"), 1);
        published.insert(PackedId::of(b"810000000002"), 2);
        let mut counts = DiffCounts::default();
        counts.rpps.published = 2;
        let plan = plan(&s, published, counts);
        assert!(plan.build.is_empty());
        assert!(plan.removed.is_empty());
        assert_eq!(plan.counts.rpps.rejected_lines, 3);
        assert_eq!((plan.counts.rpps.added, plan.counts.rpps.changed), (0, 0));
    }
}
