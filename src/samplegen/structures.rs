//! Sites where professionals work. Shared sites (hospitals, pharmacies, laboratories, group
//! practices) come from pools drawn from (seed, pool, index), so every professional attached
//! to one repeats the same identifiers and address, as in the real extract; a cabinet of
//! one's own is drawn from the activity's key.

use super::codes::{self, Code, Kind};
use super::geo;
use super::names;
use super::rng::{Rng, key, luhn_digit, tag};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Pool {
    Hospital,
    Officine,
    Labo,
    /// Multi-professional health centres (maisons de santé).
    Msp,
    /// Group practices or shops of one profession (its code as a number).
    Group(u16),
}

impl Pool {
    fn tag(self) -> u64 {
        match self {
            Pool::Hospital => 1,
            Pool::Officine => 2,
            Pool::Labo => 3,
            Pool::Msp => 4,
            Pool::Group(code) => 100 + u64::from(code),
        }
    }
}

/// Pool sizes, proportional to the base population so that sites hold a national-looking
/// number of professionals at any scale.
pub(crate) struct Pools {
    base: u64,
}

impl Pools {
    pub(crate) fn new(base: u64) -> Self {
        Pools { base }
    }

    fn size(&self, pool: Pool) -> u64 {
        let n = self.base;
        match pool {
            Pool::Hospital => (n / 400).max(8),
            Pool::Officine => (n / 85).max(8),
            Pool::Labo => (n / 500).max(4),
            Pool::Msp => (n / 1500).max(4),
            Pool::Group(code) => {
                let weight = codes::RPPS_MIX
                    .iter()
                    .find(|(_, p)| p.code.parse::<u16>().ok() == Some(code))
                    .map_or(100, |(w, _)| u64::from(*w));
                // About six members per group practice of the profession.
                (n * weight / 10_000 / 6).max(2)
            }
        }
    }

    /// Index of a site in `pool`; hospitals are skewed so that a few are large.
    pub(crate) fn pick(&self, pool: Pool, rng: &mut Rng) -> u64 {
        let size = self.size(pool);
        let a = rng.below(size);
        if pool == Pool::Hospital {
            a.min(rng.below(size))
        } else {
            a
        }
    }
}

#[derive(Default)]
pub(crate) struct Structure {
    pub siret: String,
    pub siren: String,
    pub finess: String,
    pub finess_ej: String,
    pub tech_id: String,
    pub raison_sociale: String,
    pub enseigne: String,
    pub compl_dest: String,
    pub compl_geo: String,
    pub num_voie: String,
    pub indice: &'static str,
    pub type_voie: Code,
    pub voie: &'static str,
    pub mention: String,
    pub cedex: String,
    pub postcode: String,
    pub commune_code: String,
    pub commune_label: String,
    pub pays: Code,
    pub tel: String,
    pub tel2: String,
    pub fax: String,
    pub email: String,
    pub ancien_id: String,
    pub secteur: Code,
    /// Département (for the phone prefix and pharmacists' overseas section).
    pub dep: String,
    /// Upper-case town, for names and e-mails.
    town: String,
}

/// 9-digit SIREN with a Luhn check digit.
fn siren(rng: &mut Rng, prefix: &str) -> String {
    let mut s = String::with_capacity(9);
    s.push_str(prefix);
    rng.push_digits(&mut s, 8 - prefix.len());
    s.push(luhn_digit(&s));
    s
}

/// 14-digit SIRET: SIREN + NIC, Luhn-valid as a whole.
fn siret(rng: &mut Rng, siren: &str) -> String {
    let mut s = String::with_capacity(14);
    s.push_str(siren);
    s.push_str("000");
    rng.push_digits(&mut s, 1);
    s.push(luhn_digit(&s));
    s
}

/// 9-character FINESS: département (2A/2B in Corsica, 97x overseas) then digits.
fn finess(rng: &mut Rng, dep: &str) -> String {
    let mut s = String::with_capacity(9);
    s.push_str(dep);
    s.push('0');
    while s.len() < 9 {
        rng.push_digits(&mut s, 1);
    }
    s
}

/// Phone number of 10 digits with the regional prefix (international form abroad).
pub(crate) fn phone(rng: &mut Rng, dep: &str) -> String {
    if dep.is_empty() {
        let mut s = String::from("00377");
        rng.push_digits(&mut s, 8);
        return s;
    }
    let mut s = String::from(geo::phone_prefix(dep));
    let missing = 10 - s.len();
    rng.push_digits(&mut s, missing);
    s
}

fn mobile(rng: &mut Rng) -> String {
    let mut s = String::from(if rng.chance(500_000) { "06" } else { "07" });
    rng.push_digits(&mut s, 8);
    s
}

/// Address, commune and phones; `abroad_ppm` allows the rare site outside France.
fn address(rng: &mut Rng, s: &mut Structure, abroad_ppm: u64) {
    if rng.chance(abroad_ppm) {
        let &(code, label, postcode, town) = rng.pick(&geo::ABROAD);
        s.pays = (code, label);
        s.postcode = postcode.to_owned();
        s.cedex = format!("{postcode} {town}");
        s.town = town.to_owned();
    } else {
        let place = geo::commune(rng);
        s.dep = geo::departement(&place.insee).to_owned();
        s.town = geo::poste_label(&place.label);
        // The country is usually left empty for France (as in the spec's example).
        if rng.chance(250_000) {
            s.pays = geo::FRANCE;
        }
        if rng.chance(40_000) {
            // Postal boxes come with a CEDEX distribution office.
            s.mention = if rng.chance(500_000) {
                format!("BP {}", rng.range(1, 999))
            } else {
                format!("CS {}", rng.range(10_001, 90_999))
            };
            s.cedex = format!("{} {} CEDEX", place.postcode, s.town);
        } else {
            s.cedex = format!("{} {}", place.postcode, s.town);
        }
        s.postcode = place.postcode;
        s.commune_code = place.insee;
        s.commune_label = place.label;
    }
    s.num_voie = match rng.below(100) {
        0..=2 => format!("{}-{}", rng.range(1, 60) * 2, rng.range(31, 90) * 2),
        3 => "S/N".to_owned(),
        4..=7 => String::new(),
        _ => rng.range(1, 250).to_string(),
    };
    if !s.num_voie.is_empty() && rng.chance(40_000) {
        s.indice = if rng.chance(800_000) { "B" } else { "T" };
    }
    s.type_voie = *rng.weighted(names::STREET_TYPES);
    s.voie = *rng.pick(names::STREETS);
    if rng.chance(4_000) {
        s.compl_geo = (*rng.pick(names::QUOTED)).to_owned();
    } else if rng.chance(150_000) {
        s.compl_geo = (*rng.pick(names::BUILDINGS)).to_owned();
    }
    s.tel = phone(rng, &s.dep);
    if rng.chance(150_000) {
        s.tel2 = mobile(rng);
    }
    if rng.chance(250_000) {
        s.fax = phone(rng, &s.dep);
    }
}

/// A pooled site, identical for everyone attached to it.
pub(crate) fn shared(seed: u64, pool: Pool, index: u64) -> Structure {
    let mut rng = Rng::new(key(&[seed, tag::STRUCTURE, pool.tag(), index]));
    let mut s = Structure::default();
    let abroad = if matches!(pool, Pool::Group(_)) { 1_500 } else { 0 };
    address(&mut rng, &mut s, abroad);
    let word = *rng.pick(names::GROUP_WORDS);
    match pool {
        Pool::Hospital => hospital(&mut rng, &mut s, word),
        Pool::Officine => {
            finess_site(&mut rng, &mut s, "4");
            s.raison_sociale = if rng.chance(400_000) {
                format!("SELARL PHARMACIE {word}")
            } else {
                format!("PHARMACIE {word}")
            };
            s.enseigne = if rng.chance(300_000) {
                format!("GRANDE PHARMACIE {word}")
            } else {
                String::new()
            };
            s.secteur = codes::SA_OFFICINE;
        }
        Pool::Labo => {
            finess_site(&mut rng, &mut s, "8");
            s.raison_sociale = format!("SELAS LABORATOIRE DE BIOLOGIE MEDICALE {word}");
            s.enseigne = format!("BIOLAB {}", s.town);
            s.secteur = codes::SA_LABO;
        }
        Pool::Msp => {
            finess_site(&mut rng, &mut s, "7");
            s.raison_sociale = format!("MAISON DE SANTE PLURIPROFESSIONNELLE {word}");
            s.secteur = codes::SA_GROUPE;
        }
        Pool::Group(code) => group(&mut rng, &mut s, code, word),
    }
    if s.email.is_empty() && rng.chance(200_000) {
        s.email = format!("contact@{}.fr", names::email_part(&format!("{} {}", word, s.town)));
    }
    s
}

/// FINESS site and legal entity, SIRET, technical id F+FINESS.
fn finess_site(rng: &mut Rng, s: &mut Structure, siren_prefix: &str) {
    let dep = if s.dep.is_empty() { "99" } else { &s.dep };
    s.finess = finess(rng, dep);
    s.finess_ej = finess(rng, dep);
    let siren = siren(rng, siren_prefix);
    s.siret = siret(rng, &siren);
    s.tech_id = format!("F{}", s.finess);
    if rng.chance(600_000) {
        s.ancien_id = format!("1{}", s.finess);
    }
}

fn hospital(rng: &mut Rng, s: &mut Structure, word: &str) {
    let town = s.town.clone();
    let (prefix, secteur, name) = match rng.below(100) {
        0..=39 => ("26", codes::SA_PUBLIC, format!("CENTRE HOSPITALIER DE {town}")),
        40..=47 => (
            "26",
            codes::SA_PUBLIC,
            format!("CENTRE HOSPITALIER UNIVERSITAIRE DE {town}"),
        ),
        48..=66 => ("3", codes::SA_PRIVE, format!("CLINIQUE {word}")),
        67..=72 => ("3", codes::SA_PRIVE, format!("POLYCLINIQUE {word}")),
        73..=81 => ("7", codes::SA_PSPH, format!("HOPITAL PRIVE {word}")),
        82..=92 => ("2", codes::SA_EHPAD, format!("EHPAD {word}")),
        93..=98 => ("7", codes::SA_CENTRE, format!("CENTRE DE SANTE {word}")),
        _ => (
            "1",
            codes::SA_MILITAIRE,
            format!("HOPITAL D'INSTRUCTION DES ARMEES {word}"),
        ),
    };
    finess_site(rng, s, prefix);
    s.raison_sociale = name;
    s.secteur = secteur;
    if rng.chance(200_000) {
        s.mention = format!("CS {}", rng.range(10_001, 90_999));
        if !s.cedex.ends_with("CEDEX") {
            s.cedex.push_str(" CEDEX");
        }
    }
    if rng.chance(350_000) {
        s.fax = phone(rng, &s.dep);
    }
    if rng.chance(250_000) {
        s.email = format!("secretariat@{}.fr", names::email_part(&format!("{word} {town}")));
    }
}

fn group(rng: &mut Rng, s: &mut Structure, code: u16, word: &str) {
    let prefix = if rng.chance(500_000) { "4" } else { "8" };
    let siren = siren(rng, prefix);
    s.siret = siret(rng, &siren);
    s.tech_id = format!("C{}", s.siret);
    if rng.chance(400_000) {
        s.ancien_id = format!("3{}", s.siret);
    }
    let commerce = codes::RPPS_MIX
        .iter()
        .any(|(_, p)| p.kind == Kind::Commerce && p.code.parse::<u16>().ok() == Some(code));
    if commerce {
        s.raison_sociale = format!("SARL {word}");
        s.enseigne = match code {
            26 => format!("AUDITION {word}"),
            28 => format!("OPTIQUE {word}"),
            _ => format!("ORTHOPEDIE {word}"),
        };
        s.secteur = codes::SA_COMMERCE;
        return;
    }
    let what = match code {
        10 => "CABINET MEDICAL",
        40 => "CABINET DENTAIRE",
        60 => "CABINET INFIRMIER",
        70 => "CABINET DE KINESITHERAPIE",
        31 => "CENTRE DENTAIRE",
        _ => "CABINET PARAMEDICAL",
    };
    if rng.chance(250_000) {
        s.raison_sociale = format!("SELARL {what} {word}");
        s.secteur = codes::SA_SOCIETE;
    } else {
        s.raison_sociale = if rng.chance(500_000) {
            format!("SCM {word}")
        } else {
            format!("{what} {word}")
        };
        s.secteur = codes::SA_GROUPE;
    }
}

/// Who owns an individual cabinet, for its name and identifiers.
pub(crate) struct Owner<'a> {
    pub id: &'a str,
    pub nom: &'a str,
    pub prenom: &'a str,
    pub doctor: bool,
}

/// A cabinet of one's own (technical id R + identifier + rank), drawn from the activity key.
pub(crate) fn individual(activity_key: u64, owner: &Owner, rang: u32) -> Structure {
    let mut rng = Rng::new(key(&[activity_key, tag::STRUCTURE]));
    let mut s = Structure::default();
    address(&mut rng, &mut s, 1_000);
    s.tech_id = format!("R{}{rang:03}", owner.id);
    if rng.chance(400_000) {
        s.ancien_id = format!("4{}{rang:03}", owner.id);
    }
    let prefix = if rng.chance(500_000) { "3" } else { "5" };
    let siren = siren(&mut rng, prefix);
    match rng.below(10) {
        0..=5 => s.siret = siret(&mut rng, &siren),
        6 => s.siren = siren,
        _ => {}
    }
    s.raison_sociale = match rng.below(10) {
        0..=4 if owner.doctor => format!("CABINET DU DR {}", owner.nom),
        0..=4 => format!("CABINET {} {}", owner.nom, owner.prenom),
        5..=6 => format!("{} {}", owner.nom, owner.prenom),
        _ => String::new(),
    };
    if rng.chance(150_000) {
        let domain = *rng.pick(&["orange.fr", "wanadoo.fr", "gmail.com", "free.fr", "laposte.net"]);
        s.email = format!(
            "{}.{}@{domain}",
            names::email_part(owner.prenom),
            names::email_part(owner.nom)
        );
    }
    if rng.chance(250_000) {
        s.tel2 = mobile(&mut rng);
    }
    s.secteur = codes::SA_INDIVIDUEL;
    s
}
