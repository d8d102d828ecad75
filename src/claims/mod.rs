//! The sectoral claims document of one professional (examples: `data-samples/expected/`), computed
//! once at import from the professional's Personne_activite rows in file order. Field names
//! and their odd spellings follow Pro Santé Connect so that relying parties work unchanged.

pub mod diff;
pub mod history;

use serde::{Deserialize, Serialize};

use crate::extract::columns::pa;

const SECTEUR_OID: &str = "^1.2.250.1.71.4.2.4";
const PROFESSION_OID: &str = "^1.2.250.1.213.1.1.5.5";
/// Savoir-faire types that name the professional's specialty in the claims.
const SPECIALTY_TYPES: [&str; 3] = ["S", "CEX", "PAC"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimsDocument {
    #[serde(rename = "SubjectNameID")]
    pub subject_name_id: String,
    pub preferred_username: String,
    pub given_name: String,
    pub family_name: String,
    #[serde(rename = "SubjectOrganization")]
    pub subject_organization: String,
    #[serde(rename = "SubjectOrganizationID")]
    pub subject_organization_id: String,
    #[serde(rename = "Secteur_Activite")]
    pub secteur_activite: String,
    #[serde(rename = "SubjectRole")]
    pub subject_role: Vec<String>,
    #[serde(rename = "otherIds")]
    pub other_ids: Vec<OtherId>,
    #[serde(rename = "SubjectRefPro")]
    pub subject_ref_pro: SubjectRefPro,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherId {
    pub identifiant: String,
    pub origine: String,
    pub qualite: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectRefPro {
    #[serde(rename = "codeCivilite")]
    pub code_civilite: String,
    pub exercices: Vec<Exercice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exercice {
    pub code_profession: String,
    pub code_categorie_professionnelle: String,
    pub code_civilite_dexercice: String,
    pub nom_dexercice: String,
    pub prenom_dexercice: String,
    pub code_type_savoir_faire: String,
    pub code_savoir_faire: String,
    pub activities: Vec<Activity>,
}

/// The 30 activity claims, in the order of the spec's table, each with its source column.
pub const ACTIVITY_COLUMNS: [(&str, usize); 30] = [
    ("codeModeExercice", pa::CODE_MODE),
    ("codeSecteurDactivite", pa::CODE_SECTEUR),
    ("codeSectionPharmacien", pa::CODE_SECTION_PHARMACIEN),
    ("codeRole", pa::CODE_ROLE),
    ("codeGenreActivite", pa::CODE_GENRE),
    ("numeroSiretSite", pa::SIRET),
    ("numeroSirenSite", pa::SIREN),
    ("numeroFinessSite", pa::FINESS_SITE),
    ("numeroFinessetablissementJuridique", pa::FINESS_EJ),
    ("identifiantTechniqueDeLaStructure", pa::ID_STRUCTURE),
    ("raisonSocialeSite", pa::RAISON_SOCIALE),
    ("enseigneCommercialeSite", pa::ENSEIGNE),
    ("complementDestinataire", pa::COMPLEMENT_DESTINATAIRE),
    ("complementPointGeographique", pa::COMPLEMENT_POINT_GEO),
    ("numeroVoie", pa::NUMERO_VOIE),
    ("indiceRepetitionVoie", pa::INDICE_REPETITION),
    ("codeTypeDeVoie", pa::CODE_TYPE_VOIE),
    ("libelleVoie", pa::LIBELLE_VOIE),
    ("mentionDistribution", pa::MENTION_DISTRIBUTION),
    ("bureauCedex", pa::BUREAU_CEDEX),
    ("codePostal", pa::CODE_POSTAL),
    ("codeCommune", pa::CODE_COMMUNE),
    ("codePays", pa::CODE_PAYS),
    ("telephone", pa::TELEPHONE),
    ("telephone2", pa::TELEPHONE_2),
    ("telecopie", pa::TELECOPIE),
    ("adresseEMail", pa::EMAIL),
    ("codeDepartement", pa::CODE_DEPARTEMENT),
    ("ancienIdentifiantDeLaStructure", pa::ANCIEN_ID_STRUCTURE),
    ("autoriteDenregistrement", pa::AUTORITE_ENREGISTREMENT),
];

/// One place of practice: the 30 values of `ACTIVITY_COLUMNS`, serialised as an object
/// with those names in that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity(pub [String; 30]);

impl Activity {
    fn from_row(row: &[&str]) -> Activity {
        Activity(ACTIVITY_COLUMNS.map(|(_, column)| row[column].to_owned()))
    }

    pub fn get(&self, claim: &str) -> &str {
        ACTIVITY_COLUMNS
            .iter()
            .position(|(name, _)| *name == claim)
            .map_or("", |i| self.0[i].as_str())
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(String::is_empty)
    }
}

impl Serialize for Activity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(ACTIVITY_COLUMNS.len()))?;
        for ((name, _), value) in ACTIVITY_COLUMNS.iter().zip(&self.0) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// Read straight into the 30 slots: the search index reads every published document
/// back, and a map of 30 owned keys per activity (SipHash, rehashes, frees) was most of
/// that. A missing name is empty, an unknown one ignored, a repeated one the last value.
impl<'de> Deserialize<'de> for Activity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Slots;
        impl<'de> serde::de::Visitor<'de> for Slots {
            type Value = Activity;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an activity object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Activity, A::Error> {
                let mut values: [String; 30] = Default::default();
                while let Some(Column(slot)) = map.next_key()? {
                    match slot {
                        Some(i) => values[i] = map.next_value()?,
                        None => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(Activity(values))
            }
        }
        deserializer.deserialize_map(Slots)
    }
}

/// A key of an activity object: its slot in `ACTIVITY_COLUMNS`, found without owning it.
struct Column(Option<usize>);

impl<'de> Deserialize<'de> for Column {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = Column;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a claim name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Column, E> {
                Ok(Column(ACTIVITY_COLUMNS.iter().position(|(known, _)| *known == name)))
            }
        }
        deserializer.deserialize_str(Name)
    }
}

/// Builds the document from the professional's rows (canonical Personne_activite fields,
/// trimmed, in file order). `rows` must not be empty: a professional exists through them.
pub fn build(national_id: &str, rows: &[Vec<&str>]) -> ClaimsDocument {
    let mut exercices: Vec<Exercice> = Vec::new();
    for row in rows {
        let key = (row[pa::CODE_PROFESSION], row[pa::CODE_CATEGORIE]);
        let index = match exercices
            .iter()
            .position(|e| (e.code_profession.as_str(), e.code_categorie_professionnelle.as_str()) == key)
        {
            Some(i) => i,
            None => {
                exercices.push(new_exercice(row));
                exercices.len() - 1
            }
        };
        let exercice = &mut exercices[index];
        if exercice.code_type_savoir_faire.is_empty() && SPECIALTY_TYPES.contains(&row[pa::CODE_TYPE_SAVOIR_FAIRE]) {
            exercice.code_type_savoir_faire = row[pa::CODE_TYPE_SAVOIR_FAIRE].to_owned();
            exercice.code_savoir_faire = row[pa::CODE_SAVOIR_FAIRE].to_owned();
        }
        let activity = Activity::from_row(row);
        if !activity.is_empty() && !exercice.activities.contains(&activity) {
            exercice.activities.push(activity);
        }
    }

    let main_activity = exercices.first().and_then(|e| e.activities.first());
    let secteur = main_activity.map_or("", |a| a.get("codeSecteurDactivite"));
    let mut roles: Vec<String> = Vec::new();
    for exercice in &exercices {
        let role = format!("{}{PROFESSION_OID}", exercice.code_profession);
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    let first = exercices.first();
    ClaimsDocument {
        subject_name_id: national_id.to_owned(),
        preferred_username: national_id.to_owned(),
        given_name: first.map(|e| e.prenom_dexercice.clone()).unwrap_or_default(),
        family_name: first.map(|e| e.nom_dexercice.clone()).unwrap_or_default(),
        subject_organization: main_activity.map_or("", |a| a.get("raisonSocialeSite")).to_owned(),
        subject_organization_id: main_activity
            .map_or("", |a| a.get("identifiantTechniqueDeLaStructure"))
            .to_owned(),
        secteur_activite: if secteur.is_empty() {
            String::new()
        } else {
            format!("{secteur}{SECTEUR_OID}")
        },
        subject_role: roles,
        other_ids: vec![OtherId {
            identifiant: national_id.to_owned(),
            origine: origin(national_id).to_owned(),
            qualite: 1,
        }],
        subject_ref_pro: SubjectRefPro {
            code_civilite: rows.first().map_or("", |r| r[pa::CODE_CIVILITE]).to_owned(),
            exercices,
        },
    }
}

fn new_exercice(row: &[&str]) -> Exercice {
    Exercice {
        code_profession: row[pa::CODE_PROFESSION].to_owned(),
        code_categorie_professionnelle: row[pa::CODE_CATEGORIE].to_owned(),
        code_civilite_dexercice: row[pa::CODE_CIVILITE_EXERCICE].to_owned(),
        nom_dexercice: row[pa::NOM_EXERCICE].to_owned(),
        prenom_dexercice: row[pa::PRENOM_EXERCICE].to_owned(),
        code_type_savoir_faire: String::new(),
        code_savoir_faire: String::new(),
        activities: Vec::new(),
    }
}

/// `RPPS` for national ids of type 8, `ADELI` for type 0.
pub fn origin(national_id: &str) -> &'static str {
    if national_id.starts_with('0') { "ADELI" } else { "RPPS" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::columns::PERSONNE_ACTIVITE;

    fn row(values: &[(usize, &'static str)]) -> Vec<&'static str> {
        let mut r = vec![""; PERSONNE_ACTIVITE.len()];
        for (i, v) in values {
            r[*i] = v;
        }
        r
    }

    #[test]
    fn exercices_activities_and_specialty_follow_the_rules() {
        let rows = vec![
            row(&[
                (pa::CODE_CIVILITE, "M"),
                (pa::CODE_PROFESSION, "10"),
                (pa::CODE_CATEGORIE, "C"),
                (pa::NOM_EXERCICE, "MARTIN"),
                (pa::PRENOM_EXERCICE, "PAUL"),
                (pa::CODE_TYPE_SAVOIR_FAIRE, "C"),
                (pa::CODE_SAVOIR_FAIRE, "C01"),
                (pa::RAISON_SOCIALE, "CABINET A"),
                (pa::CODE_SECTEUR, "SA07"),
            ]),
            row(&[
                (pa::CODE_CIVILITE, "X"),
                (pa::CODE_PROFESSION, "10"),
                (pa::CODE_CATEGORIE, "C"),
                (pa::CODE_TYPE_SAVOIR_FAIRE, "S"),
                (pa::CODE_SAVOIR_FAIRE, "SM54"),
                (pa::RAISON_SOCIALE, "CABINET A"),
                (pa::CODE_SECTEUR, "SA07"),
            ]),
            row(&[
                (pa::CODE_PROFESSION, "21"),
                (pa::CODE_CATEGORIE, "C"),
                (pa::NOM_EXERCICE, "MARTIN-B"),
            ]),
            row(&[
                (pa::CODE_PROFESSION, "10"),
                (pa::CODE_CATEGORIE, "C"),
                (pa::RAISON_SOCIALE, "HOPITAL B"),
            ]),
        ];
        let doc = build("810001234565", &rows);
        assert_eq!(doc.subject_ref_pro.code_civilite, "M");
        assert_eq!(doc.subject_ref_pro.exercices.len(), 2);
        let first = &doc.subject_ref_pro.exercices[0];
        assert_eq!(
            (first.code_type_savoir_faire.as_str(), first.code_savoir_faire.as_str()),
            ("S", "SM54")
        );
        assert_eq!(first.activities.len(), 2, "identical activity dropped");
        assert!(
            doc.subject_ref_pro.exercices[1].activities.is_empty(),
            "empty activity adds none"
        );
        assert_eq!(
            doc.subject_role,
            vec!["10^1.2.250.1.213.1.1.5.5", "21^1.2.250.1.213.1.1.5.5"]
        );
        assert_eq!(doc.secteur_activite, "SA07^1.2.250.1.71.4.2.4");
        assert_eq!(doc.subject_organization, "CABINET A");
        assert_eq!((doc.family_name.as_str(), doc.given_name.as_str()), ("MARTIN", "PAUL"));
    }

    #[test]
    fn serialises_activity_fields_in_spec_order_and_adeli_origin() {
        let rows = vec![row(&[
            (pa::CODE_PROFESSION, "60"),
            (pa::CODE_MODE, "L"),
            (pa::AUTORITE_ENREGISTREMENT, "ARS"),
        ])];
        let doc = build("0012600631", &rows);
        let json = serde_json::to_string(&doc).unwrap();
        assert!(
            json.contains(r#""otherIds":[{"identifiant":"0012600631","origine":"ADELI","qualite":1}]"#),
            "{json}"
        );
        let mode = json.find("codeModeExercice").unwrap();
        let autorite = json.find("autoriteDenregistrement").unwrap();
        assert!(mode < autorite);
        assert_eq!(doc.secteur_activite, "");
        let back: ClaimsDocument = serde_json::from_str(&json).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn an_activity_reads_back_by_name_whatever_the_order_escapes_or_strangers() {
        let json = r#"{"codePostal":"69001","inconnu":{"x":[1]},"\u0063odeCommune":"6912\u0033","codePostal":"69002"}"#;
        let activity: Activity = serde_json::from_str(json).unwrap();
        assert_eq!(activity.get("codePostal"), "69002", "the last of a repeated name");
        assert_eq!(activity.get("codeCommune"), "69123", "escaped name and value");
        assert_eq!(activity.get("raisonSocialeSite"), "", "a missing name is empty");
        assert!(serde_json::from_str::<Activity>(r#"["codePostal"]"#).is_err());
    }
}
