//! The labels of the codes admins filter and facet by (`10` → `Médecin`), taken from the
//! extract's own `Libellé …` columns as the import kept them in each professional's
//! details. Collected while the index is built or updated from the published generation,
//! so they belong to the generation the index holds (a held run's labels never show): a
//! build starts afresh, an update lays the changed professionals' labels over the last
//! ones, so each code shows the last label seen. Kept beside the index, in its directory.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::document::DetailsView;
use super::filters::{CATEGORIE, COMMUNE, MODE, PROFESSION, SAVOIR_FAIRE, SECTEUR};
use super::index::IndexError;
use super::schema::fold_words;

/// The filters whose codes have labels; each is also the name of its code system in the
/// details' labels.
pub const LABELLED: [&str; 6] = [PROFESSION, CATEGORIE, SAVOIR_FAIRE, MODE, SECTEUR, COMMUNE];

/// At most this many codes answer a label typed in part: a filter of one letter would
/// otherwise become a union of every commune.
const MAX_MATCHED_CODES: usize = 64;

const FILE: &str = "labels.json";

/// Code system → code → label.
type Table = BTreeMap<String, BTreeMap<String, String>>;

/// The labels of one generation, with each label folded as the index folds words, for the
/// filters that take a label typed in part.
#[derive(Debug, Default)]
pub struct Labels {
    table: Table,
    /// Per code system, (code, folded label) in code order.
    folded: HashMap<String, Vec<(String, String)>>,
}

/// Labels seen by one decoding thread, the last one per code.
#[derive(Debug, Default)]
pub struct Collected(HashMap<String, HashMap<String, String>>);

impl Collected {
    /// Notes the labels of one professional's details that `LABELLED` codes carry.
    pub fn note(&mut self, details: &DetailsView) {
        for (system, codes) in &details.labels {
            if !LABELLED.contains(&system.as_ref()) {
                continue;
            }
            let known = match self.0.get_mut(system.as_ref()) {
                Some(known) => known,
                None => self.0.entry(system.to_string()).or_default(),
            };
            for (code, label) in codes {
                // Looked up before any copy: nearly every label is one already seen.
                if !code.is_empty()
                    && !label.is_empty()
                    && known.get(code.as_ref()).map(String::as_str) != Some(label.as_ref())
                {
                    known.insert(code.to_string(), label.to_string());
                }
            }
        }
    }

    pub fn absorb(&mut self, other: Collected) {
        for (system, codes) in other.0 {
            self.0.entry(system).or_default().extend(codes);
        }
    }
}

fn folded(label: &str) -> String {
    let mut words = Vec::new();
    fold_words(label, |word| words.push(word.to_owned()));
    words.join(" ")
}

impl Labels {
    fn from_table(table: Table) -> Labels {
        let folded = table
            .iter()
            .map(|(system, codes)| {
                let codes = codes
                    .iter()
                    .map(|(code, label)| (code.clone(), folded(label)))
                    .collect();
                (system.clone(), codes)
            })
            .collect();
        Labels { table, folded }
    }

    /// These labels (unless `fresh`) with `newer` laid over them.
    pub fn updated(&self, newer: Collected, fresh: bool) -> Labels {
        let mut table = if fresh { Table::new() } else { self.table.clone() };
        for (system, codes) in newer.0 {
            table.entry(system).or_default().extend(codes);
        }
        Labels::from_table(table)
    }

    pub fn label(&self, system: &str, code: &str) -> Option<&str> {
        self.table.get(system)?.get(code).map(String::as_str)
    }

    /// The codes a filter value names: the value itself when it is a known code or names
    /// nothing else, else the codes whose label holds what was typed (`médec` →
    /// `Médecin`), case and accents aside, at most `MAX_MATCHED_CODES`.
    pub fn codes<'a>(&'a self, filter: &str, value: &'a str) -> Vec<Cow<'a, str>> {
        let exact = vec![Cow::Borrowed(value)];
        let Some(codes) = self.folded.get(filter) else {
            return exact;
        };
        if self.label(filter, value).is_some() {
            return exact;
        }
        let typed = folded(value);
        if typed.is_empty() {
            return exact;
        }
        let matched: Vec<Cow<str>> = codes
            .iter()
            .filter(|(_, label)| label.contains(&typed))
            .take(MAX_MATCHED_CODES)
            .map(|(code, _)| Cow::Borrowed(code.as_str()))
            .collect();
        if matched.is_empty() { exact } else { matched }
    }

    /// The labels kept in the index directory `dir`; `None` if there are none (an index
    /// written before labels were kept, which is rebuilt).
    pub fn load(dir: &Path) -> Option<Labels> {
        let text = std::fs::read(dir.join(FILE)).ok()?;
        serde_json::from_slice(&text).ok().map(Labels::from_table)
    }

    /// Writes these labels into `dir`, whole or not at all (a new file renamed over the old).
    pub fn save(&self, dir: &Path) -> Result<(), IndexError> {
        let json = serde_json::to_vec(&self.table)
            .map_err(|e| IndexError::Directory(dir.display().to_string(), format!("cannot write {FILE}: {e}")))?;
        let temporary = dir.join(format!("{FILE}.{}", std::process::id()));
        // The I/O error is kept whole: a full disk is told as such.
        let failed = |source| IndexError::Io {
            path: dir.join(FILE),
            source,
        };
        std::fs::write(&temporary, json).map_err(failed)?;
        std::fs::rename(&temporary, dir.join(FILE)).map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(json: &str) -> DetailsView<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_last_label_seen_wins_and_a_label_typed_in_part_names_its_codes() {
        let mut first = Collected::default();
        first.note(&details(
            r#"{"savoir_faire":[],"labels":{"profession":{"10":"Médecin","60":"Infirmier"},"civilite":{"M":"Monsieur"}}}"#,
        ));
        let labels = Labels::default().updated(first, true);
        assert_eq!(labels.label("profession", "10"), Some("Médecin"));
        // Only the labelled filters' systems are kept.
        assert_eq!(labels.label("civilite", "M"), None);
        assert_eq!(labels.codes("profession", "MEDEC"), vec!["10"]);
        assert_eq!(labels.codes("profession", "60"), vec!["60"]);
        // Nothing matched: the value stays, as an exact code that finds nothing.
        assert_eq!(labels.codes("profession", "zzz"), vec!["zzz"]);
        assert_eq!(labels.codes("departement", "rhone"), vec!["rhone"]);

        let mut later = Collected::default();
        later.note(&details(
            r#"{"savoir_faire":[],"labels":{"profession":{"10":"Médecin généraliste"}}}"#,
        ));
        let labels = labels.updated(later, false);
        assert_eq!(labels.label("profession", "10"), Some("Médecin généraliste"));
        assert_eq!(labels.label("profession", "60"), Some("Infirmier"));
        assert_eq!(labels.codes("profession", "in"), vec!["10", "60"]);

        let dir = tempfile::tempdir().unwrap();
        assert!(Labels::load(dir.path()).is_none());
        labels.save(dir.path()).unwrap();
        let loaded = Labels::load(dir.path()).unwrap();
        assert_eq!(loaded.label("profession", "10"), Some("Médecin généraliste"));
        assert_eq!(loaded.codes("profession", "infirm"), vec!["60"]);
    }
}
