//! A professional's history as people read it: each published version with what it did
//! (added, changed, removed), whether the claims document changed (a diploma or a
//! savoir-faire alone changes the record, not the claims), and the claim fields that did.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::diff::{FieldChange, diff};
use crate::store::RunId;
use crate::store::history::{Change, DiffItem, Version};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub run_id: RunId,
    pub extract_ts: Option<DateTime<Utc>>,
    pub published_at: DateTime<Utc>,
    pub change: Change,
    /// Whether the claims document served changed with this version: always for an
    /// addition or a removal, for a change only when its claims differ.
    pub claims_changed: bool,
    /// For a change, or a return after a removal: the claim fields that changed since the
    /// last document served.
    pub changes: Vec<FieldChange>,
}

/// The entries of `versions` (oldest first), each compared with the last document before
/// it: `before` is the last one served before the first of them (none from the start), so
/// a page of the history reads as the same entries as the whole.
pub fn entries(before: Option<&[u8]>, versions: &[Version]) -> Vec<HistoryEntry> {
    let mut last = before;
    versions
        .iter()
        .map(|version| {
            let now = version.claims_json.as_deref();
            let claims_changed = version.change != Change::Changed || now != last;
            let changes = field_changes(last, now);
            if now.is_some() {
                last = now;
            }
            HistoryEntry {
                run_id: version.run_id,
                extract_ts: version.extract_ts,
                published_at: version.published_at,
                change: version.change,
                claims_changed,
                changes,
            }
        })
        .collect()
}

/// One professional of a run's diff, as people read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffEntry {
    pub national_id: String,
    pub family_name: String,
    pub given_name: String,
    /// Whether the claims document changes (a diploma or a savoir-faire alone does not).
    pub claims_changed: bool,
    /// The claim fields that change, against the document served before the run.
    pub changes: Vec<FieldChange>,
}

pub fn diff_entry(item: &DiffItem) -> DiffEntry {
    let (before, after) = (item.previous_json.as_deref(), item.claims_json.as_deref());
    DiffEntry {
        national_id: item.national_id.clone(),
        family_name: item.family_name.clone(),
        given_name: item.given_name.clone(),
        claims_changed: before != after,
        changes: field_changes(before, after),
    }
}

/// The claim fields that differ between two stored documents; none unless both exist (an
/// addition or a removal is not a field change).
fn field_changes(before: Option<&[u8]>, after: Option<&[u8]>) -> Vec<FieldChange> {
    match (before, after) {
        (Some(before), Some(after)) if before != after => diff(&parse(before), &parse(after)),
        _ => Vec::new(),
    }
}

/// Stored documents are JSON written by the importer; one that is not reads as null
/// (its whole self then shows as changed) rather than hiding the rest of the history.
fn parse(json: &[u8]) -> Value {
    serde_json::from_slice(json).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn version(run: i64, change: Change, claims: Option<Value>) -> Version {
        Version {
            run_id: RunId(run),
            extract_ts: None,
            published_at: DateTime::from_timestamp(run * 86_400, 0).unwrap(),
            change,
            claims_json: claims.map(|c| serde_json::to_vec(&c).unwrap()),
        }
    }

    #[test]
    fn each_version_against_the_last_document_served() {
        let a = json!({"given_name": "JEAN", "telephone": "01"});
        let b = json!({"given_name": "JEAN", "telephone": "02"});
        let versions = [
            version(1, Change::Added, Some(a.clone())),
            // A diploma changed: the record changed, the claims did not.
            version(2, Change::Changed, Some(a.clone())),
            version(3, Change::Changed, Some(b.clone())),
            version(4, Change::Removed, None),
            version(5, Change::Added, Some(a)),
        ];
        let history = entries(None, &versions);
        // A page from the removal on, given the last document before it: the same entries.
        let b = serde_json::to_vec(&b).unwrap();
        assert_eq!(entries(Some(&b), &versions[3..]), history[3..]);
        let seen: Vec<_> = history
            .iter()
            .map(|e| {
                (
                    e.run_id.0,
                    e.claims_changed,
                    e.changes
                        .iter()
                        .map(|c| (c.path.as_str(), &c.old, &c.new))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (1, true, vec![]),
                (2, false, vec![]),
                (3, true, vec![("/telephone", &json!("01"), &json!("02"))]),
                (4, true, vec![]),
                (5, true, vec![("/telephone", &json!("02"), &json!("01"))]),
            ]
        );
    }
}
