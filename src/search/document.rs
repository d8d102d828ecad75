//! What admins search on, taken from a professional's record: identifiers, names, what
//! they practise, where, and how they can be reached. Pure: documents in, values out.

use std::collections::BTreeSet;

use crate::claims::ClaimsDocument;
use crate::details::Details;

/// The searchable values of one professional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchValues {
    pub national_id: String,
    /// Exact identifiers: national id, RPPS or ADELI, SIRET, SIREN, FINESS, structure ids,
    /// MSSanté addresses.
    pub identifiers: BTreeSet<String>,
    /// Exercice names (accent- and case-insensitive through the analyzer).
    pub names: Vec<String>,
    pub display_name: String,
    /// Family name then given name: the order of ties.
    pub sort_name: String,
    /// Everything else worth a word: professions, savoir-faire, structures, addresses.
    pub text: Vec<String>,
    pub professions: BTreeSet<String>,
    pub categories: BTreeSet<String>,
    pub savoir_faire: BTreeSet<String>,
    pub departements: BTreeSet<String>,
    pub communes: BTreeSet<String>,
    pub postcodes: BTreeSet<String>,
    pub modes: BTreeSet<String>,
    pub secteurs: BTreeSet<String>,
    pub removed: bool,
}

/// The département of an INSEE commune code: two characters (`69`, `2A`), three overseas
/// (`974`). The extract's own département columns are empty, so this is the only source.
pub fn departement(commune: &str) -> Option<String> {
    let commune = commune.trim();
    // Checked by character, before any cut: a byte length of 5 may hold a multi-byte
    // character, and cutting inside it would panic (and stop the search follower).
    if commune.len() != 5 || !commune.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let overseas = commune.starts_with("97") || commune.starts_with("98");
    let code: String = commune.chars().take(if overseas { 3 } else { 2 }).collect();
    Some(code)
}

pub fn values(claims: &ClaimsDocument, details: &Details, mailboxes: &[String], removed: bool) -> SearchValues {
    let mut v = SearchValues {
        national_id: claims.subject_name_id.clone(),
        display_name: format!("{} {}", claims.given_name, claims.family_name)
            .trim()
            .to_owned(),
        sort_name: format!("{} {}", claims.family_name, claims.given_name),
        removed,
        ..SearchValues::default()
    };
    v.identifiers.insert(claims.subject_name_id.clone());
    // The id without its type digit (bare RPPS or ADELI); `get` rather than a cut, which
    // would panic inside a multi-byte character.
    if let Some(bare) = claims.subject_name_id.get(1..).filter(|bare| !bare.is_empty()) {
        v.identifiers.insert(bare.to_owned());
    }
    let label = |system: &str, code: &str| details.labels.get(system).and_then(|m| m.get(code)).cloned();
    for exercice in &claims.subject_ref_pro.exercices {
        v.names
            .push(format!("{} {}", exercice.prenom_dexercice, exercice.nom_dexercice));
        v.professions.insert(exercice.code_profession.clone());
        v.categories.insert(exercice.code_categorie_professionnelle.clone());
        v.text.extend(label("profession", &exercice.code_profession));
        if !exercice.code_savoir_faire.is_empty() {
            v.savoir_faire.insert(exercice.code_savoir_faire.clone());
        }
        for activity in &exercice.activities {
            for id in [
                "numeroSiretSite",
                "numeroSirenSite",
                "numeroFinessSite",
                "numeroFinessetablissementJuridique",
                "identifiantTechniqueDeLaStructure",
            ] {
                let value = activity.get(id);
                if !value.is_empty() {
                    v.identifiers.insert(value.to_owned());
                }
            }
            for text in [
                "raisonSocialeSite",
                "enseigneCommercialeSite",
                "libelleVoie",
                "bureauCedex",
                "codePostal",
            ] {
                let value = activity.get(text);
                if !value.is_empty() {
                    v.text.push(value.to_owned());
                }
            }
            let commune = activity.get("codeCommune");
            if !commune.is_empty() {
                v.communes.insert(commune.to_owned());
                v.text.extend(label("commune", commune));
                v.departements.extend(departement(commune));
            }
            let postcode = activity.get("codePostal");
            if !postcode.is_empty() {
                v.postcodes.insert(postcode.to_owned());
            }
            for (set, claim) in [
                (&mut v.modes, "codeModeExercice"),
                (&mut v.secteurs, "codeSecteurDactivite"),
            ] {
                let value = activity.get(claim);
                if !value.is_empty() {
                    set.insert(value.to_owned());
                }
            }
        }
    }
    for sf in &details.savoir_faire {
        if !sf.code.is_empty() {
            v.savoir_faire.insert(sf.code.clone());
        }
        v.text.push(sf.libelle.clone());
    }
    for address in mailboxes {
        v.identifiers.insert(address.to_lowercase());
    }
    v
}

/// Typed prefixes longer than this are matched through the dictionary (a bounded range of
/// terms) rather than as one n-gram: nearly every name word is shorter, and each extra
/// length costs a term per word in every document.
pub const MAX_PREFIX_CHARS: usize = 12;

/// Every prefix (1 to `MAX_PREFIX_CHARS` characters) of every word of the names, folded as
/// the index folds words; each once.
pub fn name_prefixes(names: &[String]) -> BTreeSet<String> {
    let mut prefixes = BTreeSet::new();
    for name in names {
        for word in super::query::query_words(name) {
            for (start, c) in word.char_indices().take(MAX_PREFIX_CHARS) {
                prefixes.insert(word[..start + c.len_utf8()].to_owned());
            }
        }
    }
    prefixes
}

/// Characters the sort key holds: 13 in base 27 fit in 64 bits.
const KEY_CHARS: usize = 13;

/// The folded name packed in a u64 that sorts as the name does (letters a–z, anything
/// else as a space), its first 13 characters: ties of a search are ordered by it.
pub fn name_key(sort_name: &str) -> u64 {
    let folded = super::query::query_words(sort_name).join(" ");
    let mut key: u64 = 0;
    let mut chars = folded.bytes();
    for _ in 0..KEY_CHARS {
        let digit = match chars.next() {
            Some(b @ b'a'..=b'z') => u64::from(b - b'a' + 1),
            _ => 0,
        };
        key = key * 27 + digit;
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_prefixes_are_folded_edge_ngrams_of_every_word() {
        let prefixes = name_prefixes(&["Hélène LEFÈVRE".to_owned()]);
        for expected in ["h", "hel", "helene", "l", "lefe", "lefevre"] {
            assert!(prefixes.contains(expected), "{expected}: {prefixes:?}");
        }
        assert!(!prefixes.contains("elene"), "prefixes only");
        let long = name_prefixes(&["abcdefghijklmnopqrstuvwxyz".to_owned()]);
        assert_eq!(long.len(), MAX_PREFIX_CHARS);
    }

    #[test]
    fn name_keys_sort_as_names() {
        let mut names = ["DUPONT Jean", "Dupont Alain", "DUPOND Zoé", "Du Pont Jean", "ÉLIE Ana"];
        names.sort_by_key(|n| name_key(n));
        assert_eq!(
            names,
            ["Du Pont Jean", "DUPOND Zoé", "Dupont Alain", "DUPONT Jean", "ÉLIE Ana"]
        );
    }

    #[test]
    fn departement_from_commune_codes() {
        assert_eq!(departement("69123").as_deref(), Some("69"));
        assert_eq!(departement("2A004").as_deref(), Some("2A"));
        assert_eq!(departement("97411").as_deref(), Some("974"));
        assert_eq!(departement("01053").as_deref(), Some("01"));
        assert_eq!(departement(""), None);
    }

    #[test]
    fn departement_of_odd_codes_is_none_not_a_panic() {
        for odd in ["é123", "6é12", "97é1", "9é", "6912é", "€€", "69 12", "ñ"] {
            assert_eq!(departement(odd), None, "{odd}");
        }
    }
}
