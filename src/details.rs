//! A professional's details: everything of their record besides the claims (savoir-faire,
//! diplomas, the labels of the codes the claims carry). Built by the import, stored
//! compressed beside the claims, read by search and the admin record page.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything of the record besides the claims: what search and the admin pages show.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Details {
    pub savoir_faire: Vec<SavoirFaire>,
    pub diplomas: Vec<Diploma>,
    /// Code → label, per code system seen in the professional's lines (`profession`,
    /// `categorie`, `savoir_faire`, `mode`, `secteur`, `commune`, ...): the claims carry
    /// only codes.
    pub labels: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SavoirFaire {
    pub code_profession: String,
    pub code_categorie: String,
    pub code_type: String,
    pub libelle_type: String,
    pub code: String,
    pub libelle: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Diploma {
    pub code_type_diplome: String,
    pub libelle_type_diplome: String,
    pub code_diplome: String,
    pub libelle_diplome: String,
    pub code_type_autorisation: String,
    pub libelle_type_autorisation: String,
    pub code_discipline: String,
    pub libelle_discipline: String,
}
