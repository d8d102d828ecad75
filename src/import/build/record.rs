//! One professional's record, built from all their staged lines: the claims document and
//! the details (savoir-faire, diplomas, labels). Pure: lines in, documents out.

use crate::claims::{self, ClaimsDocument};
use crate::details::{Details, Diploma, SavoirFaire};
use crate::extract::FileKind;
use crate::extract::columns::pa;

/// The staged lines of one professional, each the canonical values joined by `|`.
#[derive(Debug, Default)]
pub struct Lines {
    pub personne_activite: Vec<String>,
    pub savoir_faire: Vec<String>,
    pub diplomas: Vec<String>,
}

impl Lines {
    pub fn push(&mut self, kind: FileKind, line: String) {
        match kind {
            FileKind::PersonneActivite => self.personne_activite.push(line),
            FileKind::SavoirFaire => self.savoir_faire.push(line),
            FileKind::DiplAutExerc => self.diplomas.push(line),
            FileKind::MsSante => {}
        }
    }

    pub fn clear(&mut self) {
        self.personne_activite.clear();
        self.savoir_faire.clear();
        self.diplomas.clear();
    }
}

/// Label columns of Personne_activite: (code system, code column, label column).
const PA_LABELS: [(&str, usize, usize); 13] = [
    (
        "civilite_exercice",
        pa::CODE_CIVILITE_EXERCICE,
        pa::CODE_CIVILITE_EXERCICE + 1,
    ),
    ("civilite", pa::CODE_CIVILITE, pa::CODE_CIVILITE + 1),
    ("profession", pa::CODE_PROFESSION, pa::LIBELLE_PROFESSION),
    ("categorie", pa::CODE_CATEGORIE, pa::LIBELLE_CATEGORIE),
    (
        "type_savoir_faire",
        pa::CODE_TYPE_SAVOIR_FAIRE,
        pa::CODE_TYPE_SAVOIR_FAIRE + 1,
    ),
    ("savoir_faire", pa::CODE_SAVOIR_FAIRE, pa::LIBELLE_SAVOIR_FAIRE),
    ("mode", pa::CODE_MODE, pa::LIBELLE_MODE),
    ("commune", pa::CODE_COMMUNE, pa::LIBELLE_COMMUNE),
    ("pays", pa::CODE_PAYS, pa::CODE_PAYS + 1),
    ("secteur", pa::CODE_SECTEUR, pa::LIBELLE_SECTEUR),
    (
        "section_pharmacien",
        pa::CODE_SECTION_PHARMACIEN,
        pa::CODE_SECTION_PHARMACIEN + 1,
    ),
    ("role", pa::CODE_ROLE, pa::CODE_ROLE + 1),
    // The claims carry the street type's code (`AV`); the admin page writes its label.
    ("type_voie", pa::CODE_TYPE_VOIE, pa::CODE_TYPE_VOIE + 1),
];

fn split(line: &str) -> Vec<&str> {
    line.split('|').collect()
}

/// The built record, ready to be stored.
pub struct Record {
    pub claims: ClaimsDocument,
    pub details: Details,
}

/// Builds the record; `None` when the professional has no Personne_activite line (their
/// savoir-faire or diploma lines alone do not make a professional).
pub fn build(national_id: &str, lines: &Lines) -> Option<Record> {
    if lines.personne_activite.is_empty() {
        return None;
    }
    let rows: Vec<Vec<&str>> = lines.personne_activite.iter().map(|l| split(l)).collect();
    let claims = claims::build(national_id, &rows);
    let mut details = Details::default();
    for row in &rows {
        for (system, code, label) in PA_LABELS {
            if !row[code].is_empty() {
                details
                    .labels
                    .entry(system.to_owned())
                    .or_default()
                    .entry(row[code].to_owned())
                    .or_insert_with(|| row[label].to_owned());
            }
        }
    }
    for line in &lines.savoir_faire {
        let f = split(line);
        details.savoir_faire.push(SavoirFaire {
            code_profession: f[5].to_owned(),
            code_categorie: f[7].to_owned(),
            code_type: f[9].to_owned(),
            libelle_type: f[10].to_owned(),
            code: f[11].to_owned(),
            libelle: f[12].to_owned(),
        });
        details
            .labels
            .entry("savoir_faire".to_owned())
            .or_default()
            .entry(f[11].to_owned())
            .or_insert_with(|| f[12].to_owned());
    }
    for line in &lines.diplomas {
        let f = split(line);
        details.diplomas.push(Diploma {
            code_type_diplome: f[5].to_owned(),
            libelle_type_diplome: f[6].to_owned(),
            code_diplome: f[7].to_owned(),
            libelle_diplome: f[8].to_owned(),
            code_type_autorisation: f[9].to_owned(),
            libelle_type_autorisation: f[10].to_owned(),
            code_discipline: f[11].to_owned(),
            libelle_discipline: f[12].to_owned(),
        });
    }
    // Sorted and deduplicated: these lists are sets, like the diff sees them.
    details.savoir_faire.sort();
    details.savoir_faire.dedup();
    details.diplomas.sort();
    details.diplomas.dedup();
    Some(Record { claims, details })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pa_line(national_id: &str, phone: &str) -> String {
        let mut values = vec![""; 56];
        values[pa::NATIONAL_ID] = national_id;
        values[pa::CODE_PROFESSION] = "10";
        values[pa::LIBELLE_PROFESSION] = "Médecin";
        values[pa::TELEPHONE] = phone;
        values[pa::CODE_TYPE_VOIE] = "AV";
        values[pa::CODE_TYPE_VOIE + 1] = "Avenue";
        values.join("|")
    }

    #[test]
    fn record_needs_an_activity_line_and_collects_labels() {
        assert!(build("810001234565", &Lines::default()).is_none());
        let lines = Lines {
            personne_activite: vec![pa_line("810001234565", "")],
            ..Lines::default()
        };
        let record = build("810001234565", &lines).unwrap();
        assert_eq!(record.details.labels["profession"]["10"], "Médecin");
        assert_eq!(record.details.labels["type_voie"]["AV"], "Avenue");
    }
}
