//! What admins search on, taken from a professional's record: identifiers, names, what
//! they practise, where, and how they can be reached. Pure: documents in, values out.
//!
//! The record's documents are read as borrowed views of their JSON (`ClaimsView`,
//! `DetailsView`): a full build reads every published document back, and owned copies of
//! every field (a few hundred allocations per professional) were most of its cost.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// The searchable values of one professional, borrowed from its documents where they can be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchValues<'a> {
    pub national_id: Cow<'a, str>,
    /// Exact identifiers other than the national id (which has its own field, and is found
    /// from a bare RPPS or ADELI by the query): SIRET, SIREN, FINESS, structure ids, MSSanté
    /// addresses. Neither the national id nor its bare form is repeated here: two unique
    /// terms per professional, built and merged for nothing, were a fifth of a national
    /// build's CPU (52.5 against 42.9 core-seconds).
    pub identifiers: BTreeSet<Cow<'a, str>>,
    /// Exercice names (accent- and case-insensitive through the analyzer).
    pub names: Vec<String>,
    pub display_name: String,
    /// Family name then given name: the order of ties.
    pub sort_name: String,
    /// Everything else worth a word: professions, savoir-faire, structures, addresses.
    pub text: Vec<Cow<'a, str>>,
    pub professions: BTreeSet<Cow<'a, str>>,
    pub categories: BTreeSet<Cow<'a, str>>,
    pub savoir_faire: BTreeSet<Cow<'a, str>>,
    pub departements: BTreeSet<Cow<'a, str>>,
    pub communes: BTreeSet<Cow<'a, str>>,
    pub postcodes: BTreeSet<Cow<'a, str>>,
    pub modes: BTreeSet<Cow<'a, str>>,
    pub secteurs: BTreeSet<Cow<'a, str>>,
    pub removed: bool,
}

/// The part of a claims document (`crate::claims::ClaimsDocument`) that is searched.
#[derive(Debug, serde::Deserialize)]
pub struct ClaimsView<'a> {
    #[serde(rename = "SubjectNameID", borrow)]
    pub subject_name_id: Cow<'a, str>,
    #[serde(borrow)]
    pub given_name: Cow<'a, str>,
    #[serde(borrow)]
    pub family_name: Cow<'a, str>,
    #[serde(rename = "SubjectRefPro", borrow)]
    pub subject_ref_pro: RefProView<'a>,
}

#[derive(Debug, serde::Deserialize)]
pub struct RefProView<'a> {
    #[serde(borrow)]
    pub exercices: Vec<ExerciceView<'a>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExerciceView<'a> {
    #[serde(borrow)]
    pub code_profession: Cow<'a, str>,
    #[serde(borrow)]
    pub code_categorie_professionnelle: Cow<'a, str>,
    #[serde(borrow)]
    pub nom_dexercice: Cow<'a, str>,
    #[serde(borrow)]
    pub prenom_dexercice: Cow<'a, str>,
    #[serde(borrow)]
    pub code_savoir_faire: Cow<'a, str>,
    #[serde(borrow)]
    pub activities: Vec<ActivityView<'a>>,
}

/// The searched claims of an activity (`crate::claims::ACTIVITY_COLUMNS` names them); a
/// missing one is empty.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ActivityView<'a> {
    #[serde(borrow)]
    pub numero_siret_site: Cow<'a, str>,
    #[serde(borrow)]
    pub numero_siren_site: Cow<'a, str>,
    #[serde(borrow)]
    pub numero_finess_site: Cow<'a, str>,
    #[serde(borrow)]
    pub numero_finessetablissement_juridique: Cow<'a, str>,
    #[serde(borrow)]
    pub identifiant_technique_de_la_structure: Cow<'a, str>,
    #[serde(borrow)]
    pub raison_sociale_site: Cow<'a, str>,
    #[serde(borrow)]
    pub enseigne_commerciale_site: Cow<'a, str>,
    #[serde(borrow)]
    pub libelle_voie: Cow<'a, str>,
    #[serde(borrow)]
    pub bureau_cedex: Cow<'a, str>,
    #[serde(borrow)]
    pub code_postal: Cow<'a, str>,
    #[serde(borrow)]
    pub code_commune: Cow<'a, str>,
    #[serde(borrow)]
    pub code_mode_exercice: Cow<'a, str>,
    #[serde(borrow)]
    pub code_secteur_dactivite: Cow<'a, str>,
}

/// The part of a details document (`crate::details::Details`) that is searched: the
/// diplomas, as many as the activities, are skipped unread.
#[derive(Debug, Default, serde::Deserialize)]
pub struct DetailsView<'a> {
    #[serde(borrow)]
    pub savoir_faire: Vec<SavoirFaireView<'a>>,
    /// Code system → code → label.
    #[serde(borrow)]
    pub labels: BTreeMap<Cow<'a, str>, BTreeMap<Cow<'a, str>, Cow<'a, str>>>,
}

#[derive(Debug, serde::Deserialize)]
pub struct SavoirFaireView<'a> {
    #[serde(borrow)]
    pub code: Cow<'a, str>,
    #[serde(borrow)]
    pub libelle: Cow<'a, str>,
}

/// The département of an INSEE commune code: two characters (`69`, `2A`), three overseas
/// (`974`). The extract's own département columns are empty, so this is the only source.
pub fn departement(commune: &str) -> Option<&str> {
    let commune = commune.trim();
    // Checked by character, before any cut: a byte length of 5 may hold a multi-byte
    // character, and cutting inside it would panic (and stop the search follower).
    if commune.len() != 5 || !commune.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let overseas = commune.starts_with("97") || commune.starts_with("98");
    Some(&commune[..if overseas { 3 } else { 2 }])
}

/// Inserts `value` unless it is empty. A `&Cow`, not a `&str`: cloning it keeps a borrowed
/// value borrowed, where a `&str` would have to be copied.
#[allow(clippy::ptr_arg)]
fn insert<'a>(set: &mut BTreeSet<Cow<'a, str>>, value: &Cow<'a, str>) {
    if !value.is_empty() {
        set.insert(value.clone());
    }
}

pub fn values<'a>(
    claims: &ClaimsView<'a>,
    details: &DetailsView<'a>,
    mailboxes: &'a str,
    removed: bool,
) -> SearchValues<'a> {
    let mut v = SearchValues {
        national_id: claims.subject_name_id.clone(),
        display_name: format!("{} {}", claims.given_name, claims.family_name)
            .trim()
            .to_owned(),
        sort_name: format!("{} {}", claims.family_name, claims.given_name),
        removed,
        ..SearchValues::default()
    };
    let label = |system: &str, code: &str| details.labels.get(system).and_then(|m| m.get(code)).cloned();
    for exercice in &claims.subject_ref_pro.exercices {
        v.names
            .push(format!("{} {}", exercice.prenom_dexercice, exercice.nom_dexercice));
        v.professions.insert(exercice.code_profession.clone());
        v.categories.insert(exercice.code_categorie_professionnelle.clone());
        v.text.extend(label("profession", &exercice.code_profession));
        insert(&mut v.savoir_faire, &exercice.code_savoir_faire);
        for activity in &exercice.activities {
            for id in [
                &activity.numero_siret_site,
                &activity.numero_siren_site,
                &activity.numero_finess_site,
                &activity.numero_finessetablissement_juridique,
                &activity.identifiant_technique_de_la_structure,
            ] {
                insert(&mut v.identifiers, id);
            }
            for text in [
                &activity.raison_sociale_site,
                &activity.enseigne_commerciale_site,
                &activity.libelle_voie,
                &activity.bureau_cedex,
                &activity.code_postal,
            ] {
                if !text.is_empty() {
                    v.text.push(text.clone());
                }
            }
            let commune = &activity.code_commune;
            if !commune.is_empty() {
                v.communes.insert(commune.clone());
                v.text.extend(label("commune", commune));
                if let Some(departement) = departement(commune) {
                    v.departements.insert(Cow::Owned(departement.to_owned()));
                }
            }
            insert(&mut v.postcodes, &activity.code_postal);
            insert(&mut v.modes, &activity.code_mode_exercice);
            insert(&mut v.secteurs, &activity.code_secteur_dactivite);
        }
    }
    for sf in &details.savoir_faire {
        insert(&mut v.savoir_faire, &sf.code);
        v.text.push(sf.libelle.clone());
    }
    for address in mailboxes.split(' ').filter(|a| !a.is_empty()) {
        v.identifiers.insert(Cow::Owned(address.to_lowercase()));
    }
    v
}

/// Typed prefixes longer than this are matched through the dictionary (a bounded range of
/// terms) rather than as one n-gram: nearly every name word is shorter, and each extra
/// length costs a term per word in every document.
pub const MAX_PREFIX_CHARS: usize = 12;

/// Every prefix (1 to `MAX_PREFIX_CHARS` characters) of every word of the names, folded as
/// the index folds words, handed to `each` (a prefix shared by two words comes twice).
pub fn name_prefixes(names: &[String], mut each: impl FnMut(&str)) {
    for name in names {
        super::schema::fold_words(name, |word| {
            for (start, c) in word.char_indices().take(MAX_PREFIX_CHARS) {
                each(&word[..start + c.len_utf8()]);
            }
        });
    }
}

/// Characters the sort key holds: 13 in base 27 fit in 64 bits.
const KEY_CHARS: usize = 13;

/// The folded name packed in a u64 that sorts as the name does (letters a–z, anything
/// else as a space), its first 13 characters: ties of a search are ordered by it.
pub fn name_key(sort_name: &str) -> u64 {
    // The folded words joined by single spaces, as base-27 digits (a space is 0).
    let mut digits = Vec::with_capacity(KEY_CHARS);
    super::schema::fold_words(sort_name, |word| {
        if !digits.is_empty() {
            digits.push(0);
        }
        digits.extend(word.bytes().map(|b| match b {
            b'a'..=b'z' => u64::from(b - b'a' + 1),
            _ => 0,
        }));
    });
    // Cut to, or padded with spaces to, the key's length.
    digits.resize(KEY_CHARS, 0);
    digits.iter().fold(0, |key, digit| key * 27 + digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_prefixes_are_folded_edge_ngrams_of_every_word() {
        let collect = |names: &[String]| {
            let mut prefixes = BTreeSet::new();
            name_prefixes(names, |prefix| {
                prefixes.insert(prefix.to_owned());
            });
            prefixes
        };
        let prefixes = collect(&["Hélène LEFÈVRE".to_owned()]);
        for expected in ["h", "hel", "helene", "l", "lefe", "lefevre"] {
            assert!(prefixes.contains(expected), "{expected}: {prefixes:?}");
        }
        assert!(!prefixes.contains("elene"), "prefixes only");
        let long = collect(&["abcdefghijklmnopqrstuvwxyz".to_owned()]);
        assert_eq!(long.len(), MAX_PREFIX_CHARS);
    }

    /// The view reads each searched claim under the name the claims document writes it
    /// with (a misspelt field would be silently empty: the view's fields default).
    #[test]
    fn activity_view_reads_each_searched_claim_by_its_name() {
        use crate::claims::{ACTIVITY_COLUMNS, Activity};
        let activity = Activity(std::array::from_fn(|i| format!("value {i}")));
        let json = serde_json::to_string(&activity).unwrap();
        let view: ActivityView = serde_json::from_str(&json).unwrap();
        let read = [
            ("numeroSiretSite", &view.numero_siret_site),
            ("numeroSirenSite", &view.numero_siren_site),
            ("numeroFinessSite", &view.numero_finess_site),
            (
                "numeroFinessetablissementJuridique",
                &view.numero_finessetablissement_juridique,
            ),
            (
                "identifiantTechniqueDeLaStructure",
                &view.identifiant_technique_de_la_structure,
            ),
            ("raisonSocialeSite", &view.raison_sociale_site),
            ("enseigneCommercialeSite", &view.enseigne_commerciale_site),
            ("libelleVoie", &view.libelle_voie),
            ("bureauCedex", &view.bureau_cedex),
            ("codePostal", &view.code_postal),
            ("codeCommune", &view.code_commune),
            ("codeModeExercice", &view.code_mode_exercice),
            ("codeSecteurDactivite", &view.code_secteur_dactivite),
        ];
        for (name, value) in read {
            assert!(ACTIVITY_COLUMNS.iter().any(|(column, _)| *column == name), "{name}");
            assert_eq!(value.as_ref(), activity.get(name), "{name}");
        }
    }

    /// Every searched part of a claims and a details document, as the import writes them.
    #[test]
    fn values_come_from_the_documents_as_stored() {
        let claims = r#"{"SubjectNameID":"810001234565","given_name":"Hélène","family_name":"LEFÈVRE",
            "SubjectRefPro":{"codeCivilite":"MME","exercices":[{"codeProfession":"10",
            "codeCategorieProfessionnelle":"C","codeCiviliteDexercice":"","nomDexercice":"LEFÈVRE",
            "prenomDexercice":"Hélène","codeTypeSavoirFaire":"S","codeSavoirFaire":"SM54",
            "activities":[{"numeroSiretSite":"12345678900011","codeCommune":"69123","codePostal":"69003",
            "raisonSocialeSite":"CABINET \"DU PARC\"","codeModeExercice":"L","codeSecteurDactivite":"SA07"}]}]}}"#;
        let details = r#"{"savoir_faire":[{"code_profession":"10","code_categorie":"C","code_type":"S",
            "libelle_type":"Spécialité","code":"SM54","libelle":"Médecine générale"}],
            "diplomas":[{"code_type_diplome":"DE"}],
            "labels":{"profession":{"10":"Médecin"},"commune":{"69123":"Lyon"}}}"#;
        let claims: ClaimsView = serde_json::from_str(claims).unwrap();
        let details: DetailsView = serde_json::from_str(details).unwrap();
        let v = values(&claims, &details, "h.lefevre@medecin.mssante.fr", false);
        let set = |items: &[&'static str]| items.iter().map(|i| Cow::Borrowed(*i)).collect::<BTreeSet<_>>();
        assert_eq!(v.national_id, "810001234565");
        assert_eq!(v.display_name, "Hélène LEFÈVRE");
        assert_eq!(v.sort_name, "LEFÈVRE Hélène");
        assert_eq!(v.names, ["Hélène LEFÈVRE"]);
        assert_eq!(v.identifiers, set(&["12345678900011", "h.lefevre@medecin.mssante.fr"]));
        assert_eq!(
            v.text,
            ["Médecin", "CABINET \"DU PARC\"", "69003", "Lyon", "Médecine générale"]
        );
        assert_eq!(v.professions, set(&["10"]));
        assert_eq!(v.categories, set(&["C"]));
        assert_eq!(v.savoir_faire, set(&["SM54"]));
        assert_eq!(v.departements, set(&["69"]));
        assert_eq!(v.communes, set(&["69123"]));
        assert_eq!(v.postcodes, set(&["69003"]));
        assert_eq!(v.modes, set(&["L"]));
        assert_eq!(v.secteurs, set(&["SA07"]));
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
        assert_eq!(departement("69123"), Some("69"));
        assert_eq!(departement("2A004"), Some("2A"));
        assert_eq!(departement("97411"), Some("974"));
        assert_eq!(departement("01053"), Some("01"));
        assert_eq!(departement(""), None);
    }

    #[test]
    fn departement_of_odd_codes_is_none_not_a_panic() {
        for odd in ["é123", "6é12", "97é1", "9é", "6912é", "€€", "69 12", "ñ"] {
            assert_eq!(departement(odd), None, "{odd}");
        }
    }
}
