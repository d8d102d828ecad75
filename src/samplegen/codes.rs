//! Code systems of the extract (professions, savoir-faire, modes, secteurs, ...), with the
//! weights that give a national-looking mix. Codes follow the published nomenclatures where
//! known; where they are not known the values are plausible stand-ins of the right shape.

/// A (code, label) pair as it appears in two adjacent columns.
pub(crate) type Code = (&'static str, &'static str);

/// How a profession is usually practised: drives the choice of sites.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Medecin,
    Pharmacien,
    Dentiste,
    SageFemme,
    Infirmier,
    /// Mostly libéral, in a cabinet of their own or a group practice.
    Liberal,
    /// Mostly salaried in establishments.
    Salarie,
    /// Shops: opticiens, audioprothésistes.
    Commerce,
}

pub(crate) struct Profession {
    pub code: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    /// Share of women, in percent.
    pub female_pct: u64,
    pub autorite: &'static str,
    pub diploma: Code,
    /// Savoir-faire the profession can hold: (weight per million, type, code, label).
    pub savoir_faire: &'static [(u64, Code, Code)],
}

macro_rules! professions {
    ($($name:ident = $code:expr, $label:expr, $kind:ident, $f:expr, $aut:expr, $dip:expr, $sf:expr;)*) => {
        $(pub(crate) static $name: Profession = Profession {
            code: $code,
            label: $label,
            kind: Kind::$kind,
            female_pct: $f,
            autorite: $aut,
            diploma: $dip,
            savoir_faire: $sf,
        };)*
    };
}

pub(crate) const SF_S: Code = ("S", "Spécialité ordinale");
const SF_C: Code = ("C", "Compétence");
const SF_CEX: Code = ("CEX", "Compétence exclusive");
const SF_CAPA: Code = ("CAPA", "Capacité");
const SF_DNQ: Code = ("DNQ", "Diplôme non qualifiant");
const SF_FQ: Code = ("FQ", "Fonction qualifiée");
const SF_OP: Code = ("OP", "Orientation particulière");
const SF_SH: Code = ("SH", "Spécialité hors ordinale");
const SF_DEC: Code = ("DEC", "Droit d'exercice complémentaire");

/// Extra (non-specialty) savoir-faire of médecins, each drawn independently: on average
/// about one per médecin besides the specialty (capacités, compétences, orientations),
/// which is what makes SavoirFaire about 0.6 M lines nationally.
static MEDECIN_EXTRA: [(u64, Code, Code); 21] = [
    (91_000, SF_CAPA, ("CAPA06", "Capacité de gérontologie")),
    (78_000, SF_CAPA, ("CAPA05", "Capacité de médecine d'urgence")),
    (39_000, SF_CAPA, ("CAPA10", "Capacité de médecine et biologie du sport")),
    (32_000, SF_CAPA, ("CAPA07", "Capacité d'addictologie clinique")),
    (55_000, SF_CAPA, ("CAPA03", "Capacité d'allergologie")),
    (45_000, SF_CAPA, ("CAPA12", "Capacité de médecine tropicale")),
    (78_000, SF_C, ("C044", "Échographie")),
    (52_000, SF_C, ("C012", "Médecine palliative")),
    (39_000, SF_C, ("C037", "Angiologie")),
    (70_000, SF_C, ("C025", "Médecine du sport")),
    (60_000, SF_C, ("C031", "Nutrition")),
    (50_000, SF_C, ("C018", "Addictologie")),
    (45_000, SF_C, ("C041", "Psychothérapie")),
    (26_000, SF_CEX, ("CEX02", "Allergologie")),
    (65_000, SF_DNQ, ("DN01", "Acupuncture")),
    (46_000, SF_DNQ, ("DN02", "Homéopathie")),
    (32_000, SF_DNQ, ("DN04", "Ostéopathie")),
    (65_000, SF_DNQ, ("DN05", "Mésothérapie")),
    (55_000, SF_DNQ, ("DN07", "Médecine manuelle - ostéopathie")),
    (20_000, SF_OP, ("OP12", "Orientation médecine thermale")),
    (40_000, SF_OP, ("OP03", "Orientation médecine légale")),
];

/// Médecins' ordinal specialties: (weight, code, label). The label of the matching DES
/// is derived from it.
pub(crate) static MEDECIN_SPECIALTIES: [(u32, Code); 30] = [
    (420, ("SM54", "Médecine Générale")),
    (40, ("SM53", "Spécialiste en Médecine Générale")),
    (45, ("SM02", "Anesthésie-réanimation")),
    (40, ("SM42", "Psychiatrie")),
    (35, ("SM40", "Pédiatrie")),
    (33, ("SM04", "Cardiologie et maladies vasculaires")),
    (33, ("SM44", "Radio-diagnostic")),
    (30, ("SM38", "Ophtalmologie")),
    (28, ("SM20", "Gynécologie-obstétrique")),
    (25, ("SM27", "Médecine interne")),
    (25, ("SM08", "Chirurgie orthopédique et traumatologie")),
    (22, ("SM24", "Gastro-entérologie et hépatologie")),
    (20, ("SM15", "Dermatologie et vénéréologie")),
    (20, ("SM41", "Pneumologie")),
    (20, ("SM32", "Neurologie")),
    (18, ("SM18", "Gériatrie")),
    (18, ("SM03", "Biologie médicale")),
    (17, ("SM34", "O.R.L et chirurgie cervico faciale")),
    (16, ("SM29", "Médecine physique et réadaptation")),
    (15, ("SM25", "Médecine du travail")),
    (14, ("SM14", "Chirurgie viscérale et digestive")),
    (14, ("SM12", "Chirurgie urologique")),
    (13, ("SM48", "Rhumatologie")),
    (12, ("SM30", "Néphrologie")),
    (12, ("SM16", "Endocrinologie et métabolisme")),
    (11, ("SM01", "Anatomie et cytologie pathologiques")),
    (11, ("SM21", "Hématologie")),
    (10, ("SM45", "Radio-thérapie")),
    (10, ("SM49", "Santé publique et médecine sociale")),
    (9, ("SM19", "Gynécologie médicale")),
];

static DENTISTE_SF: [(u64, Code, Code); 4] = [
    (80_000, SF_S, ("SCD01", "Orthopédie dento-faciale")),
    (25_000, SF_S, ("SCD02", "Chirurgie orale")),
    (15_000, SF_S, ("SCD03", "Médecine bucco-dentaire")),
    (60_000, SF_DNQ, ("DN41", "Implantologie orale")),
];
static PHARMACIEN_SF: [(u64, Code, Code); 4] = [
    (160_000, SF_FQ, ("FQ01", "Pharmacien biologiste")),
    (60_000, SF_SH, ("SH21", "Pharmacie hospitalière")),
    (30_000, SF_DEC, ("DEC02", "Radiopharmacie")),
    (50_000, SF_DEC, ("DEC03", "Pharmacie industrielle")),
];
/// Nurses' specialisations (puéricultrice, bloc, anesthésie, pratique avancée): about one
/// nurse in eight holds one.
static INFIRMIER_SF: [(u64, Code, Code); 4] = [
    (15_000, SF_SH, ("SH60", "Infirmier en pratique avancée")),
    (35_000, SF_SH, ("SH61", "Infirmier anesthésiste")),
    (55_000, SF_SH, ("SH62", "Infirmier puériculteur")),
    (30_000, SF_SH, ("SH63", "Infirmier de bloc opératoire")),
];
static KINE_SF: [(u64, Code, Code); 4] = [
    (50_000, SF_OP, ("OP70", "Kinésithérapie du sport")),
    (150_000, SF_OP, ("OP71", "Kinésithérapie respiratoire")),
    (100_000, SF_OP, ("OP72", "Rééducation périnéale")),
    (80_000, SF_DNQ, ("DN71", "Ostéopathie")),
];
static SAGE_FEMME_SF: [(u64, Code, Code); 3] = [
    (40_000, SF_OP, ("OP50", "Échographie obstétricale")),
    (300_000, SF_OP, ("OP51", "Rééducation périnéale")),
    (100_000, SF_DNQ, ("DN51", "Acupuncture obstétricale")),
];
static NONE_SF: [(u64, Code, Code); 0] = [];

professions! {
    MEDECIN = "10", "Médecin", Medecin, 51, "CNOM/CNOM/ARS", ("DE10", "Diplôme d'Etat de docteur en médecine"), &MEDECIN_EXTRA;
    PHARMACIEN = "21", "Pharmacien", Pharmacien, 68, "CNOP/CNOP/ARS", ("DE21", "Diplôme d'Etat de docteur en pharmacie"), &PHARMACIEN_SF;
    AUDIO = "26", "Audioprothésiste", Commerce, 42, "ARS/ARS/ARS", ("DE26", "Diplôme d'Etat d'audioprothésiste"), &NONE_SF;
    OPTICIEN = "28", "Opticien-Lunetier", Commerce, 56, "ARS/ARS/ARS", ("BTS28", "BTS Opticien-Lunetier"), &NONE_SF;
    ASSIST_DENT = "31", "Assistant dentaire", Salarie, 95, "ARS/ARS/ARS", ("TP31", "Titre d'assistant dentaire"), &NONE_SF;
    DENTISTE = "40", "Chirurgien-Dentiste", Dentiste, 49, "CNOCD/CNOCD/ARS", ("DE40", "Diplôme d'Etat de docteur en chirurgie dentaire"), &DENTISTE_SF;
    SAGE_FEMME = "50", "Sage-Femme", SageFemme, 97, "CNOSF/CNOSF/ARS", ("DE50", "Diplôme d'Etat de sage-femme"), &SAGE_FEMME_SF;
    INFIRMIER = "60", "Infirmier", Infirmier, 86, "CNOI/CNOI/ARS", ("DE60", "Diplôme d'Etat d'infirmier"), &INFIRMIER_SF;
    KINE = "70", "Masseur-Kinésithérapeute", Liberal, 51, "CNOMK/CNOMK/ARS", ("DE70", "Diplôme d'Etat de masseur-kinésithérapeute"), &KINE_SF;
    PEDICURE = "80", "Pédicure-Podologue", Liberal, 71, "CNOPP/CNOPP/ARS", ("DE80", "Diplôme d'Etat de pédicure-podologue"), &NONE_SF;
    ORTHOPROTH = "81", "Orthoprothésiste", Commerce, 30, "ARS/ARS/ARS", ("BTS81", "BTS Prothésiste-orthésiste"), &NONE_SF;
    TECH_LABO = "86", "Technicien de laboratoire médical", Salarie, 80, "ARS/ARS/ARS", ("DE86", "Diplôme d'Etat de technicien de laboratoire médical"), &NONE_SF;
    ORTHOPHONISTE = "91", "Orthophoniste", Liberal, 96, "ARS/ARS/ARS", ("CC91", "Certificat de capacité d'orthophoniste"), &NONE_SF;
    ORTHOPTISTE = "92", "Orthoptiste", Liberal, 88, "ARS/ARS/ARS", ("CC92", "Certificat de capacité d'orthoptiste"), &NONE_SF;
    PSYCHOLOGUE = "93", "Psychologue", Liberal, 86, "ARS/ARS/ARS", ("M93", "Master de psychologie"), &NONE_SF;
    ERGO = "94", "Ergothérapeute", Salarie, 86, "ARS/ARS/ARS", ("DE94", "Diplôme d'Etat d'ergothérapeute"), &NONE_SF;
    DIETETICIEN = "95", "Diététicien", Liberal, 92, "ARS/ARS/ARS", ("BTS95", "BTS Diététique"), &NONE_SF;
    PSYCHOMOT = "96", "Psychomotricien", Salarie, 88, "ARS/ARS/ARS", ("DE96", "Diplôme d'Etat de psychomotricien"), &NONE_SF;
    MANIP_ERM = "98", "Manipulateur ERM", Salarie, 72, "ARS/ARS/ARS", ("DE98", "Diplôme d'Etat de manipulateur d'électroradiologie médicale"), &NONE_SF;
}

/// Label of the DE diploma type (the diploma code itself is per profession).
pub(crate) const DIPLOMA_TYPE_DE: Code = ("DE", "Diplôme d'Etat français");
pub(crate) const DIPLOMA_TYPE_DES: Code = ("DES", "Diplôme d'études spécialisées");
pub(crate) const DIPLOMA_TYPE_DU: Code = ("DU", "Diplôme universitaire");
pub(crate) const DIPLOMA_TYPE_DIU: Code = ("DIU", "Diplôme inter-universitaire");
pub(crate) const DIPLOMA_TYPE_CAPA: Code = ("CAPA", "Capacité de médecine");
pub(crate) const DIPLOMA_TYPE_SPE: Code = ("DESPE", "Diplôme d'Etat de spécialisation");
pub(crate) const DIPLOMA_TYPE_UE: Code = ("DIE", "Diplôme de l'Union Européenne");
pub(crate) const AUTH_TYPE: Code = ("AE", "Autorisation d'exercice");
pub(crate) const AUTH_TYPE_TEMP: Code = ("AT", "Autorisation temporaire");

pub(crate) static DU_LIST: [Code; 6] = [
    ("DU031", "DU de soins palliatifs"),
    ("DU044", "DU d'échographie générale"),
    ("DU052", "DU de plaies et cicatrisation"),
    ("DU067", "DU d'éducation thérapeutique du patient"),
    ("DU071", "DU de douleur"),
    ("DU088", "DU de réanimation néonatale"),
];
pub(crate) static UE_COUNTRIES: [&str; 6] = ["Belgique", "Roumanie", "Espagne", "Italie", "Allemagne", "Portugal"];

/// Profession mix of RPPS professionals (weights per 10 000).
pub(crate) static RPPS_MIX: [(u32, &Profession); 19] = [
    (4010, &INFIRMIER),
    (1420, &MEDECIN),
    (800, &KINE),
    (500, &PHARMACIEN),
    (600, &PSYCHOLOGUE),
    (300, &DENTISTE),
    (300, &MANIP_ERM),
    (300, &OPTICIEN),
    (400, &TECH_LABO),
    (420, &ASSIST_DENT),
    (200, &ORTHOPHONISTE),
    (155, &SAGE_FEMME),
    (150, &PEDICURE),
    (130, &ERGO),
    (110, &PSYCHOMOT),
    (100, &DIETETICIEN),
    (45, &ORTHOPTISTE),
    (45, &AUDIO),
    (10, &ORTHOPROTH),
];

/// Type-0 lines that remain after ADELI's retirement belong to the later-migrated professions.
pub(crate) static ADELI_MIX: [(u32, &Profession); 8] = [
    (40, &PSYCHOLOGUE),
    (12, &PSYCHOMOT),
    (10, &ERGO),
    (10, &DIETETICIEN),
    (10, &OPTICIEN),
    (8, &MANIP_ERM),
    (5, &ORTHOPTISTE),
    (5, &AUDIO),
];

/// Second professions of the few who hold two.
pub(crate) static SECOND_PROFESSION: [(u32, &Profession); 5] = [
    (30, &INFIRMIER),
    (25, &KINE),
    (20, &PSYCHOLOGUE),
    (15, &ORTHOPTISTE),
    (10, &DIETETICIEN),
];

pub(crate) const CAT_CIVIL: Code = ("C", "Civil");
pub(crate) const CAT_ETUDIANT: Code = ("E", "Etudiant");
pub(crate) const CAT_MILITAIRE: Code = ("M", "Militaire");

pub(crate) const CIV_M: Code = ("M", "Monsieur");
pub(crate) const CIV_MME: Code = ("MME", "Madame");
pub(crate) const CIV_EX_DR: Code = ("DR", "Docteur");
pub(crate) const CIV_EX_PR: Code = ("PR", "Professeur");

pub(crate) const MODE_L: Code = ("L", "Libéral, indépendant, artisan, commerçant");
pub(crate) const MODE_S: Code = ("S", "Salarié");
pub(crate) const MODE_B: Code = ("B", "Bénévole");

pub(crate) const SA_PUBLIC: Code = ("SA01", "Etablissement public de santé");
pub(crate) const SA_MILITAIRE: Code = ("SA02", "Hôpital militaire du Service de Santé des Armées");
pub(crate) const SA_PSPH: Code = ("SA03", "Etablissement privé PSPH");
pub(crate) const SA_PRIVE: Code = ("SA04", "Etablissement privé non PSPH");
pub(crate) const SA_CENTRE: Code = ("SA05", "Centre de santé");
pub(crate) const SA_INDIVIDUEL: Code = ("SA07", "Cabinet individuel");
pub(crate) const SA_GROUPE: Code = ("SA08", "Cabinet de groupe");
pub(crate) const SA_SOCIETE: Code = ("SA09", "Exercice en société");
pub(crate) const SA_LABO: Code = ("SA15", "Laboratoire de biologie médicale");
pub(crate) const SA_OFFICINE: Code = ("SA16", "Officine");
pub(crate) const SA_EHPAD: Code = ("SA25", "Etablissement pour personnes âgées");
pub(crate) const SA_COMMERCE: Code = ("SA29", "Magasin d'optique ou d'audioprothèse");

pub(crate) const SECTION_A: Code = ("A", "Pharmacien titulaire d'officine");
pub(crate) const SECTION_D: Code = ("D", "Pharmacien adjoint d'officine et autres exercices");
pub(crate) const SECTION_E: Code = ("E", "Pharmacien des départements et collectivités d'outre-mer");
pub(crate) const SECTION_G: Code = ("G", "Pharmacien biologiste");
pub(crate) const SECTION_H: Code = ("H", "Pharmacien des établissements de santé");

pub(crate) const ROLE_TITULAIRE: Code = ("FON-01", "Titulaire");
pub(crate) const ROLE_COLLABORATEUR: Code = ("FON-02", "Collaborateur");
pub(crate) const ROLE_ASSOCIE: Code = ("FON-04", "Associé");
pub(crate) const ROLE_SALARIE: Code = ("FON-05", "Salarié");
pub(crate) const ROLE_ADJOINT: Code = ("FON-07", "Pharmacien adjoint");
pub(crate) const ROLE_CHEF: Code = ("FON-08", "Chef de service");

pub(crate) const GENRE_STANDARD: Code = ("GENR01", "Activité standard");
pub(crate) const GENRE_REMPLACEMENT: Code = ("GENR02", "Activité de remplacement");
pub(crate) const GENRE_REGULATION: Code = ("GENR03", "Activité de régulation");
