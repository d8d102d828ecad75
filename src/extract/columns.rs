//! The column catalogues of the four extract files, by header label.
//! The reader maps a file's header onto these canonical orders, so that the rest of the
//! program reads `row[pa::CODE_PROFESSION]` whatever the file's own column order or age.

/// Which of the published files a stream holds, known from its file name prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    PersonneActivite,
    SavoirFaire,
    DiplAutExerc,
    MsSante,
}

impl FileKind {
    pub const ALL: [FileKind; 4] = [
        FileKind::PersonneActivite,
        FileKind::SavoirFaire,
        FileKind::DiplAutExerc,
        FileKind::MsSante,
    ];

    /// File names start with this (case-insensitive); the timestamp that follows can
    /// differ from the zip's, so only the prefix identifies the file.
    pub fn name_prefixes(self) -> &'static [&'static str] {
        match self {
            FileKind::PersonneActivite => &["PS_LibreAcces_Personne_activite", "ps-libreacces-personne-activite"],
            FileKind::SavoirFaire => &["PS_LibreAcces_SavoirFaire", "ps-libreacces-savoir-faire"],
            FileKind::DiplAutExerc => &["PS_LibreAcces_Dipl_AutExerc", "ps-libreacces-dipl-autexerc"],
            FileKind::MsSante => &["Extraction_Correspondance_MSSante", "extraction-correspondance-mssante"],
        }
    }

    pub fn from_file_name(name: &str) -> Option<FileKind> {
        let base = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
        FileKind::ALL.into_iter().find(|kind| {
            kind.name_prefixes()
                .iter()
                .any(|prefix| base.starts_with(&prefix.to_ascii_lowercase()))
        })
    }

    /// Short stable name, used in run records and rejected-line reports.
    pub fn label(self) -> &'static str {
        match self {
            FileKind::PersonneActivite => "personne_activite",
            FileKind::SavoirFaire => "savoir_faire",
            FileKind::DiplAutExerc => "dipl_autexerc",
            FileKind::MsSante => "mssante",
        }
    }

    /// Stable small number stored in the staging table.
    pub fn code(self) -> i16 {
        match self {
            FileKind::PersonneActivite => 1,
            FileKind::SavoirFaire => 2,
            FileKind::DiplAutExerc => 3,
            FileKind::MsSante => 4,
        }
    }

    pub fn from_code(code: i16) -> Option<FileKind> {
        FileKind::ALL.into_iter().find(|k| k.code() == code)
    }

    pub fn columns(self) -> &'static [&'static str] {
        match self {
            FileKind::PersonneActivite => &PERSONNE_ACTIVITE,
            FileKind::SavoirFaire => &SAVOIR_FAIRE,
            FileKind::DiplAutExerc => &DIPL_AUTEXERC,
            FileKind::MsSante => &MSSANTE,
        }
    }

    /// How many leading canonical columns a file must have. Personne_activite grew from
    /// 48 (2018) to 52 (2021) to 56 columns: the 2018 set is required, later ones read as
    /// empty when absent. The MSSanté layout is the least documented, so only the columns
    /// that identify a mailbox and its owner are required there.
    pub fn required(self) -> &'static [&'static str] {
        match self {
            FileKind::PersonneActivite => &PERSONNE_ACTIVITE[..48],
            FileKind::SavoirFaire => &SAVOIR_FAIRE,
            FileKind::DiplAutExerc => &DIPL_AUTEXERC,
            FileKind::MsSante => &MSSANTE_REQUIRED,
        }
    }

    /// Canonical index of the `Identification nationale PP` column, the professional's key.
    pub fn national_id_column(self) -> usize {
        match self {
            FileKind::MsSante => mss::NATIONAL_ID,
            _ => 2,
        }
    }
}

/// Normalises a header label for matching: case, surrounding and repeated spaces, and the
/// typographic apostrophe are not meaningful differences between the publisher's files.
pub fn header_key(label: &str) -> String {
    label
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('’', "'")
        .to_lowercase()
}

pub const PERSONNE_ACTIVITE: [&str; 56] = [
    "Type d'identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Code civilité d'exercice",
    "Libellé civilité d'exercice",
    "Code civilité",
    "Libellé civilité",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Code profession",
    "Libellé profession",
    "Code catégorie professionnelle",
    "Libellé catégorie professionnelle",
    "Code type savoir-faire",
    "Libellé type savoir-faire",
    "Code savoir-faire",
    "Libellé savoir-faire",
    "Code mode exercice",
    "Libellé mode exercice",
    "Numéro SIRET site",
    "Numéro SIREN site",
    "Numéro FINESS site",
    "Numéro FINESS établissement juridique",
    "Identifiant technique de la structure",
    "Raison sociale site",
    "Enseigne commerciale site",
    "Complément destinataire (coord. structure)",
    "Complément point géographique (coord. structure)",
    "Numéro Voie (coord. structure)",
    "Indice répétition voie (coord. structure)",
    "Code type de voie (coord. structure)",
    "Libellé type de voie (coord. structure)",
    "Libellé Voie (coord. structure)",
    "Mention distribution (coord. structure)",
    "Bureau cedex (coord. structure)",
    "Code postal (coord. structure)",
    "Code commune (coord. structure)",
    "Libellé commune (coord. structure)",
    "Code pays (coord. structure)",
    "Libellé pays (coord. structure)",
    "Téléphone (coord. structure)",
    "Téléphone 2 (coord. structure)",
    "Télécopie (coord. structure)",
    "Adresse e-mail (coord. structure)",
    "Code Département (structure)",
    "Libellé Département (structure)",
    "Ancien identifiant de la structure",
    "Autorité d'enregistrement",
    "Code secteur d'activité",
    "Libellé secteur d'activité",
    "Code section tableau pharmaciens",
    "Libellé section tableau pharmaciens",
    "Code rôle",
    "Libellé rôle",
    "Code genre activité",
    "Libellé genre activité",
];

/// Canonical indexes into a Personne_activite row.
pub mod pa {
    pub const TYPE_ID: usize = 0;
    pub const ID_PP: usize = 1;
    pub const NATIONAL_ID: usize = 2;
    pub const CODE_CIVILITE_EXERCICE: usize = 3;
    pub const CODE_CIVILITE: usize = 5;
    pub const NOM_EXERCICE: usize = 7;
    pub const PRENOM_EXERCICE: usize = 8;
    pub const CODE_PROFESSION: usize = 9;
    pub const LIBELLE_PROFESSION: usize = 10;
    pub const CODE_CATEGORIE: usize = 11;
    pub const LIBELLE_CATEGORIE: usize = 12;
    pub const CODE_TYPE_SAVOIR_FAIRE: usize = 13;
    pub const CODE_SAVOIR_FAIRE: usize = 15;
    pub const LIBELLE_SAVOIR_FAIRE: usize = 16;
    pub const CODE_MODE: usize = 17;
    pub const LIBELLE_MODE: usize = 18;
    pub const SIRET: usize = 19;
    pub const SIREN: usize = 20;
    pub const FINESS_SITE: usize = 21;
    pub const FINESS_EJ: usize = 22;
    pub const ID_STRUCTURE: usize = 23;
    pub const RAISON_SOCIALE: usize = 24;
    pub const ENSEIGNE: usize = 25;
    pub const COMPLEMENT_DESTINATAIRE: usize = 26;
    pub const COMPLEMENT_POINT_GEO: usize = 27;
    pub const NUMERO_VOIE: usize = 28;
    pub const INDICE_REPETITION: usize = 29;
    pub const CODE_TYPE_VOIE: usize = 30;
    pub const LIBELLE_VOIE: usize = 32;
    pub const MENTION_DISTRIBUTION: usize = 33;
    pub const BUREAU_CEDEX: usize = 34;
    pub const CODE_POSTAL: usize = 35;
    pub const CODE_COMMUNE: usize = 36;
    pub const LIBELLE_COMMUNE: usize = 37;
    pub const CODE_PAYS: usize = 38;
    pub const TELEPHONE: usize = 40;
    pub const TELEPHONE_2: usize = 41;
    pub const TELECOPIE: usize = 42;
    pub const EMAIL: usize = 43;
    pub const CODE_DEPARTEMENT: usize = 44;
    pub const ANCIEN_ID_STRUCTURE: usize = 46;
    pub const AUTORITE_ENREGISTREMENT: usize = 47;
    pub const CODE_SECTEUR: usize = 48;
    pub const LIBELLE_SECTEUR: usize = 49;
    pub const CODE_SECTION_PHARMACIEN: usize = 50;
    pub const CODE_ROLE: usize = 52;
    pub const CODE_GENRE: usize = 54;
}

pub const SAVOIR_FAIRE: [&str; 13] = [
    "Type d'identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Code profession",
    "Libellé profession",
    "Code catégorie professionnelle",
    "Libellé catégorie professionnelle",
    "Code type savoir-faire",
    "Libellé type savoir-faire",
    "Code savoir-faire",
    "Libellé savoir-faire",
];

pub const DIPL_AUTEXERC: [&str; 13] = [
    "Type d'identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Code type diplôme obtenu",
    "Libellé type diplôme obtenu",
    "Code diplôme obtenu",
    "Libellé diplôme obtenu",
    "Code type autorisation",
    "Libellé type autorisation",
    "Code discipline autorisation",
    "Libellé discipline autorisation",
];

pub const MSSANTE: [&str; 31] = [
    "Type de BAL",
    "Adresse BAL",
    "Type Identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Type identifiant structure",
    "Identification Structure",
    "Service de rattachement",
    "Civilité d'exercice",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Catégorie profession",
    "Libellé de catégorie profession",
    "Code Profession",
    "Libellé Profession",
    "Code savoir-faire",
    "Libellé savoir-faire",
    "Dématérialisation",
    "Raison Sociale structure BAL",
    "Enseigne commerciale structure BAL",
    "L2COMPLEMENTLOCALISATION structure BAL",
    "L3COMPLEMENTDISTRIBUTION structure BAL",
    "L4NUMEROVOIE structure BAL",
    "L4COMPLEMENTNUMEROVOIE structure BAL",
    "NL4TYPEVOIE structure BAL",
    "L4LIBELLEVOIE structure BAL",
    "L5LIEUDITMENTION structure BAL",
    "L6LIGNEACHEMINEMENT structure BAL",
    "Code postal structure BAL",
    "Département structure BAL",
    "Pays structure BAL",
];

const MSSANTE_REQUIRED: [&str; 3] = ["Type de BAL", "Adresse BAL", "Identification nationale PP"];

/// Canonical indexes into an MSSanté row.
pub mod mss {
    pub const TYPE_BAL: usize = 0;
    pub const ADRESSE: usize = 1;
    pub const NATIONAL_ID: usize = 4;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_kind_is_found_by_prefix_whatever_the_timestamp() {
        assert_eq!(
            FileKind::from_file_name("PS_LibreAcces_Personne_activite_202611250930.txt"),
            Some(FileKind::PersonneActivite)
        );
        assert_eq!(
            FileKind::from_file_name("dir/ps-libreacces-savoir-faire.txt"),
            Some(FileKind::SavoirFaire)
        );
        assert_eq!(
            FileKind::from_file_name("Extraction_Correspondance_MSSante_202611250900.txt"),
            Some(FileKind::MsSante)
        );
        assert_eq!(FileKind::from_file_name("README.txt"), None);
    }

    #[test]
    fn named_indexes_point_at_their_labels() {
        let cols = PERSONNE_ACTIVITE;
        assert_eq!(cols[pa::NATIONAL_ID], "Identification nationale PP");
        assert_eq!(cols[pa::CODE_PROFESSION], "Code profession");
        assert_eq!(cols[pa::CODE_SECTEUR], "Code secteur d'activité");
        assert_eq!(cols[pa::CODE_GENRE], "Code genre activité");
        assert_eq!(cols[pa::AUTORITE_ENREGISTREMENT], "Autorité d'enregistrement");
        assert_eq!(cols[pa::CODE_DEPARTEMENT], "Code Département (structure)");
        assert_eq!(cols[pa::EMAIL], "Adresse e-mail (coord. structure)");
        assert_eq!(MSSANTE[mss::NATIONAL_ID], "Identification nationale PP");
    }

    #[test]
    fn header_key_ignores_case_spacing_and_apostrophe_style() {
        assert_eq!(
            header_key(" Type d’identifiant  PP "),
            header_key("Type d'identifiant PP")
        );
        assert_eq!(
            header_key("NUMÉRO VOIE (coord. structure)"),
            header_key("Numéro Voie (coord. structure)")
        );
    }
}
