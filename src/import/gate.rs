//! The safety gate, as the national back office does it: per identifier type, an import
//! that would remove more than 1 % or change more than 5 % of the published professionals
//! is held for a human instead of being published. The removal threshold also holds an
//! MSSanté extract that would remove too many of the published mailbox addresses (a
//! truncated or header-only file would otherwise wipe them).

use serde::Serialize;

pub use crate::store::mailboxes::MailboxCounts;

/// Thresholds in percent of the published professionals of one identifier type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateThresholds {
    pub max_removed_pct: f64,
    pub max_changed_pct: f64,
}

impl Default for GateThresholds {
    fn default() -> Self {
        GateThresholds {
            max_removed_pct: 1.0,
            max_changed_pct: 5.0,
        }
    }
}

/// Diff counts of one identifier type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TypeCounts {
    /// Published (not removed) before this run.
    pub published: i64,
    pub added: i64,
    pub changed: i64,
    pub removed: i64,
    pub unchanged: i64,
    /// Professionals whose document would be over the size limit: not written, so they
    /// keep their published version (or stay absent if new), and are counted here
    /// instead of in `added` or `changed`.
    pub rejected_documents: i64,
    /// Professionals with a rejected line (its id readable): kept at their published
    /// version, or not added if new; neither removed nor changed.
    pub rejected_lines: i64,
}

/// Counts per identifier type: `rpps` (type 8) and `adeli` (type 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DiffCounts {
    pub rpps: TypeCounts,
    pub adeli: TypeCounts,
}

impl DiffCounts {
    pub fn of_type(&mut self, id_type: u8) -> &mut TypeCounts {
        if id_type == b'0' {
            &mut self.adeli
        } else {
            &mut self.rpps
        }
    }

    /// Adds every count of `other` to this one.
    pub fn add(&mut self, other: &DiffCounts) {
        for (mine, theirs) in [(&mut self.rpps, &other.rpps), (&mut self.adeli, &other.adeli)] {
            mine.published += theirs.published;
            mine.added += theirs.added;
            mine.changed += theirs.changed;
            mine.removed += theirs.removed;
            mine.unchanged += theirs.unchanged;
            mine.rejected_documents += theirs.rejected_documents;
            mine.rejected_lines += theirs.rejected_lines;
        }
    }

    /// Takes the professionals whose document was rejected out of `added` and `changed`
    /// (`rejected` counts under those what each would have been) and counts them apart.
    pub fn exclude_rejected(&mut self, rejected: &DiffCounts) {
        for (mine, theirs) in [(&mut self.rpps, &rejected.rpps), (&mut self.adeli, &rejected.adeli)] {
            mine.added -= theirs.added;
            mine.changed -= theirs.changed;
            mine.rejected_documents += theirs.rejected_documents;
        }
    }

    pub fn total(&self, pick: impl Fn(&TypeCounts) -> i64) -> i64 {
        pick(&self.rpps) + pick(&self.adeli)
    }
}

/// Whether `pct` is over `max`. A threshold that is not a number would pass everything
/// (NaN compares false), so it holds instead: the parsers of the settings refuse NaN, and
/// this keeps thresholds made in code from switching the gate off.
fn over(pct: f64, max: f64) -> bool {
    max.is_nan() || pct > max
}

/// Why a run is held, in words for the operator; `None` when it may be published.
pub fn evaluate(counts: &DiffCounts, thresholds: GateThresholds) -> Option<String> {
    let mut reasons = Vec::new();
    for (name, c) in [("RPPS", counts.rpps), ("ADELI", counts.adeli)] {
        if c.published == 0 {
            // Nothing published of this type: nothing to lose, as on a first import.
            continue;
        }
        let pct = |n: i64| n as f64 * 100.0 / c.published as f64;
        if over(pct(c.removed), thresholds.max_removed_pct) {
            reasons.push(format!(
                "{name}: {} of {} published professionals removed ({:.2} % > {} %)",
                c.removed,
                c.published,
                pct(c.removed),
                thresholds.max_removed_pct
            ));
        }
        if over(pct(c.changed), thresholds.max_changed_pct) {
            reasons.push(format!(
                "{name}: {} of {} published professionals changed ({:.2} % > {} %)",
                c.changed,
                c.published,
                pct(c.changed),
                thresholds.max_changed_pct
            ));
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// Why the mailbox set is held, in words for the operator; `None` when it may be
/// published. Only removals are judged: a lost address is what a bad extract costs, while
/// a changed line still names a mailbox that receives mail.
pub fn evaluate_mailboxes(counts: &MailboxCounts, thresholds: GateThresholds) -> Option<String> {
    if counts.published == 0 {
        // No mailbox set published: nothing to lose, as on a first import.
        return None;
    }
    let pct = counts.removed as f64 * 100.0 / counts.published as f64;
    over(pct, thresholds.max_removed_pct).then(|| {
        format!(
            "MSSanté: {} of {} published mailboxes removed ({pct:.2} % > {} %)",
            counts.removed, counts.published, thresholds.max_removed_pct
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(published: i64, removed: i64, changed: i64) -> DiffCounts {
        DiffCounts {
            rpps: TypeCounts {
                published,
                removed,
                changed,
                ..TypeCounts::default()
            },
            adeli: TypeCounts::default(),
        }
    }

    #[test]
    fn holds_above_thresholds_and_passes_at_them() {
        let t = GateThresholds::default();
        assert_eq!(evaluate(&counts(1000, 10, 50), t), None);
        let removed = evaluate(&counts(1000, 11, 0), t).unwrap();
        assert!(
            removed.contains("RPPS: 11 of 1000 published professionals removed"),
            "{removed}"
        );
        let changed = evaluate(&counts(1000, 0, 51), t).unwrap();
        assert!(changed.contains("changed (5.10 % > 5 %)"), "{changed}");
    }

    #[test]
    fn each_identifier_type_is_judged_on_its_own() {
        let mut c = counts(100_000, 0, 0);
        c.adeli = TypeCounts {
            published: 50,
            removed: 1,
            ..TypeCounts::default()
        };
        let reason = evaluate(&c, GateThresholds::default()).unwrap();
        assert!(reason.starts_with("ADELI: 1 of 50"), "{reason}");
    }

    #[test]
    fn a_threshold_that_is_not_a_number_holds_the_run() {
        let t = GateThresholds {
            max_removed_pct: f64::NAN,
            ..GateThresholds::default()
        };
        // Everybody removed, as from a header-only extract.
        let reason = evaluate(&counts(1000, 1000, 0), t).unwrap();
        assert!(
            reason.contains("1000 of 1000 published professionals removed"),
            "{reason}"
        );
        let t = GateThresholds {
            max_changed_pct: f64::NAN,
            ..GateThresholds::default()
        };
        assert!(evaluate(&counts(1000, 0, 0), t).is_some());
    }

    #[test]
    fn empty_store_is_not_gated() {
        let mut c = counts(0, 0, 0);
        c.rpps.added = 1000;
        assert_eq!(evaluate(&c, GateThresholds::default()), None);
    }

    fn mailboxes(published: i64, removed: i64) -> MailboxCounts {
        MailboxCounts {
            published,
            removed,
            unchanged: published - removed,
            ..MailboxCounts::default()
        }
    }

    #[test]
    fn an_empty_or_truncated_mailbox_file_is_held() {
        let t = GateThresholds::default();
        let empty = evaluate_mailboxes(&mailboxes(8, 8), t).unwrap();
        assert_eq!(empty, "MSSanté: 8 of 8 published mailboxes removed (100.00 % > 1 %)");
        let half = evaluate_mailboxes(&mailboxes(1000, 500), t).unwrap();
        assert!(half.contains("500 of 1000"), "{half}");
        assert_eq!(evaluate_mailboxes(&mailboxes(1000, 10), t), None, "at the threshold");
        assert!(evaluate_mailboxes(&mailboxes(1000, 11), t).is_some());
        let nan = GateThresholds {
            max_removed_pct: f64::NAN,
            ..t
        };
        assert!(evaluate_mailboxes(&mailboxes(1000, 0), nan).is_some());
    }

    #[test]
    fn the_first_mailbox_set_is_not_gated() {
        let first = MailboxCounts {
            added: 8,
            ..MailboxCounts::default()
        };
        assert_eq!(evaluate_mailboxes(&first, GateThresholds::default()), None);
    }
}
