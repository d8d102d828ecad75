//! The freshness guard: an extract older than the published one, or of the same time with
//! other content (a stale mirror, a replayed download), is held instead of published. It
//! compares the timestamps carried by the file names; a source without one is not guarded,
//! and the run says so. Pure.

use chrono::{DateTime, Utc};
use chrono_tz::Europe::Paris;

use crate::store::runs::PublishedExtract;

/// What the guard says of a new extract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Newer than the published extract, or nothing is published: nothing to say.
    Fresh,
    /// Not compared (no timestamp on one side): the note goes into the run's message.
    Unguarded(String),
    /// Must not be published without an operator's word: the reason.
    Stale(String),
}

/// Judges the extract of `extract_ts` and `checksum` against the published one.
pub fn judge(extract_ts: Option<DateTime<Utc>>, checksum: &str, published: Option<&PublishedExtract>) -> Freshness {
    let Some(published) = published else {
        return Freshness::Fresh;
    };
    let Some(ours) = extract_ts else {
        return Freshness::Unguarded(
            "the extract's file names carry no timestamp: it was not checked against the published extract's date"
                .to_owned(),
        );
    };
    let Some(theirs) = published.extract_ts else {
        return Freshness::Unguarded(format!(
            "the published extract (run {}) has no timestamp: this extract was not checked against its date",
            published.run_id
        ));
    };
    if ours < theirs {
        return Freshness::Stale(format!(
            "extract of {} is older than the published extract of {} (run {})",
            local(ours),
            local(theirs),
            published.run_id
        ));
    }
    if ours == theirs && published.checksum.as_deref() != Some(checksum) {
        return Freshness::Stale(format!(
            "extract of {} has the timestamp of the published extract (run {}) but other content (checksum {} instead of {})",
            local(ours),
            published.run_id,
            short(checksum),
            short(published.checksum.as_deref().unwrap_or("unknown"))
        ));
    }
    Freshness::Fresh
}

/// The time as the publisher writes it in its file names (Paris).
fn local(at: DateTime<Utc>) -> String {
    at.with_timezone(&Paris).format("%Y-%m-%d %H:%M").to_string()
}

fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::source::timestamp_in_name;
    use crate::store::RunId;

    fn at(name: &str) -> Option<DateTime<Utc>> {
        timestamp_in_name(name)
    }

    fn published(name: &str, checksum: &str) -> PublishedExtract {
        PublishedExtract {
            run_id: RunId(3),
            extract_ts: at(name),
            checksum: Some(checksum.to_owned()),
        }
    }

    #[test]
    fn an_older_extract_is_stale_and_named_in_paris_time() {
        let verdict = judge(
            at("PS_LibreAcces_202611200900.zip"),
            "bbbb",
            Some(&published("PS_LibreAcces_202611210900.zip", "aaaa")),
        );
        assert_eq!(
            verdict,
            Freshness::Stale(
                "extract of 2026-11-20 09:00 is older than the published extract of 2026-11-21 09:00 (run 3)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn same_time_other_content_is_stale_same_content_or_newer_is_fresh() {
        let current = published("PS_LibreAcces_202611210900.zip", "aaaaaaaaaaaaaaaa");
        let same_time = at("PS_LibreAcces_202611210900.zip");
        match judge(same_time, "bbbbbbbbbbbbbbbb", Some(&current)) {
            Freshness::Stale(reason) => assert!(reason.contains("other content"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(judge(same_time, "aaaaaaaaaaaaaaaa", Some(&current)), Freshness::Fresh);
        assert_eq!(
            judge(at("PS_LibreAcces_202611220900.zip"), "cc", Some(&current)),
            Freshness::Fresh
        );
        assert_eq!(judge(same_time, "cc", None), Freshness::Fresh);
    }

    #[test]
    fn without_timestamps_the_guard_says_it_did_not_look() {
        let current = published("PS_LibreAcces_202611210900.zip", "aa");
        assert!(
            matches!(judge(None, "bb", Some(&current)), Freshness::Unguarded(note) if note.contains("no timestamp"))
        );
        let undated = PublishedExtract {
            run_id: RunId(2),
            extract_ts: None,
            checksum: None,
        };
        assert!(matches!(
            judge(at("PS_LibreAcces_202611210900.zip"), "bb", Some(&undated)),
            Freshness::Unguarded(note) if note.contains("run 2")
        ));
    }
}
