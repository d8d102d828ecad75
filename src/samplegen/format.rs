//! The three text files' exact layout: headers of the current extract and one `|`-terminated
//! line per professional × activity, × savoir-faire, × diploma/authorisation.

use super::codes::{self, Code};
use super::professional::{Activity, Exercice, Professional, Site};
use super::rng::{Rng, key, tag};
use super::structures::{self, Owner, Structure};

// The reader's own catalogues: one list of labels for both sides (the generator's tests
// compare the written headers with the spec's text, which checks the catalogues too).
pub(crate) use crate::extract::columns::{
    DIPL_AUTEXERC as DIPLOME_HEADER, PERSONNE_ACTIVITE as ACTIVITE_HEADER, SAVOIR_FAIRE as SAVOIR_FAIRE_HEADER,
};

/// Header line: labels each followed by `|`, then LF.
pub(crate) fn header(labels: &[&str], out: &mut String) {
    for l in labels {
        field(out, l);
    }
    out.push('\n');
}

fn field(out: &mut String, v: &str) {
    out.push_str(v);
    out.push('|');
}

fn code(out: &mut String, c: Option<Code>) {
    let (a, b) = c.unwrap_or(("", ""));
    field(out, a);
    field(out, b);
}

fn empties(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push('|');
    }
}

/// The five identity columns that open the SavoirFaire and Dipl_AutExerc lines.
fn identity_short(out: &mut String, p: &Professional, national: &str) {
    field(out, p.id_type.code());
    field(out, &p.id);
    field(out, national);
    field(out, &p.nom);
    field(out, p.prenom);
}

/// All Personne_activite lines of `p`, appended to `out`; returns how many.
pub(crate) fn activite_lines(seed: u64, p: &Professional, out: &mut String) -> u64 {
    let national = p.national_id();
    let mut lines: Vec<(usize, usize)> = Vec::with_capacity(2);
    for ex in &p.exercices {
        let count = ex.activities.len().max(1);
        for a in 0..count {
            let start = out.len();
            activite_line(seed, p, &national, ex, ex.activities.get(a), out);
            lines.push((start, out.len()));
        }
    }
    if let Some(r) = p.duplicate {
        let (start, end) = lines[(r % lines.len() as u64) as usize];
        let copy = out[start..end].to_owned();
        out.push_str(&copy);
        return lines.len() as u64 + 1;
    }
    lines.len() as u64
}

fn activite_line(
    seed: u64,
    p: &Professional,
    national: &str,
    ex: &Exercice,
    activity: Option<&Activity>,
    out: &mut String,
) {
    field(out, p.id_type.code());
    field(out, &p.id);
    field(out, national);
    code(out, ex.civ_ex);
    code(out, Some(p.civilite));
    field(out, &p.nom);
    field(out, p.prenom);
    code(out, Some((ex.profession.code, ex.profession.label)));
    code(out, Some(ex.categorie));
    match ex.savoir_faire.first() {
        Some(&(ty, sf)) => {
            code(out, Some(ty));
            code(out, Some(sf));
        }
        None => empties(out, 4),
    }
    let Some(a) = activity else {
        // No activity: the 39 activity and structure columns stay empty.
        empties(out, 39);
        out.push('\n');
        return;
    };
    code(out, Some(a.mode));
    let s = site(seed, p, a);
    let mut tel = s.tel.as_str();
    let own_tel;
    if a.phone_version > 0 {
        let mut rng = Rng::new(key(&[a.key, tag::PHONE, u64::from(a.phone_version)]));
        own_tel = structures::phone(&mut rng, &s.dep);
        tel = &own_tel;
    }
    for v in [
        &s.siret,
        &s.siren,
        &s.finess,
        &s.finess_ej,
        &s.tech_id,
        &s.raison_sociale,
        &s.enseigne,
    ] {
        field(out, v);
    }
    field(out, a.service.unwrap_or(s.compl_dest.as_str()));
    field(out, &s.compl_geo);
    field(out, &s.num_voie);
    field(out, s.indice);
    if s.voie.is_empty() {
        empties(out, 2)
    } else {
        code(out, Some(s.type_voie))
    }
    let place = [
        s.mention.as_str(),
        &s.cedex,
        &s.postcode,
        &s.commune_code,
        &s.commune_label,
    ];
    field(out, s.voie);
    for v in place {
        field(out, v);
    }
    if s.pays.0.is_empty() {
        empties(out, 2)
    } else {
        code(out, Some(s.pays))
    }
    for v in [tel, s.tel2.as_str(), s.fax.as_str(), s.email.as_str()] {
        field(out, v);
    }
    // Département columns are always empty in the real extract.
    empties(out, 2);
    field(out, &s.ancien_id);
    field(out, ex.profession.autorite);
    if s.secteur.0.is_empty() {
        empties(out, 2)
    } else {
        code(out, Some(s.secteur))
    }
    let section = match a.section {
        // Pharmacists overseas are on their own section of the roll.
        Some(codes::SECTION_A | codes::SECTION_D) if s.dep.starts_with("97") => Some(codes::SECTION_E),
        other => other,
    };
    code(out, section);
    code(out, a.role);
    code(out, a.genre);
    out.push('\n');
}

fn site(seed: u64, p: &Professional, a: &Activity) -> Structure {
    match a.site {
        Site::Shared(pool, index) => structures::shared(seed, pool, index),
        Site::Individual(rang) => {
            let owner = Owner {
                id: &p.id,
                nom: &p.nom,
                prenom: p.prenom,
                doctor: p.exercices.first().and_then(|e| e.civ_ex).is_some(),
            };
            structures::individual(a.key, &owner, rang)
        }
        Site::None => Structure::default(),
    }
}

/// SavoirFaire lines of `p`; returns how many.
pub(crate) fn savoir_faire_lines(p: &Professional, out: &mut String) -> u64 {
    let national = p.national_id();
    let mut n = 0;
    for ex in &p.exercices {
        for &(ty, sf) in &ex.savoir_faire {
            identity_short(out, p, &national);
            code(out, Some((ex.profession.code, ex.profession.label)));
            code(out, Some(ex.categorie));
            code(out, Some(ty));
            code(out, Some(sf));
            out.push('\n');
            n += 1;
        }
    }
    n
}

/// Dipl_AutExerc lines of `p`; returns how many.
pub(crate) fn diplome_lines(p: &Professional, out: &mut String) -> u64 {
    let national = p.national_id();
    for d in &p.diplomas {
        identity_short(out, p, &national);
        code(out, d.kind);
        match &d.diploma {
            Some((c, l)) => {
                field(out, c);
                field(out, l);
            }
            None => empties(out, 2),
        }
        match d.auth {
            Some((ty, discipline)) => {
                code(out, Some(ty));
                code(out, Some(discipline));
            }
            None => empties(out, 4),
        }
        out.push('\n');
    }
    p.diplomas.len() as u64
}
