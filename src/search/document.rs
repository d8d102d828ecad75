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

#[cfg(test)]
mod tests {
    use super::*;

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
