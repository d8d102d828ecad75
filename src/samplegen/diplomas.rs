//! Dipl_AutExerc lines of one exercice: the diploma of the profession (French or European,
//! with its authorisation), the DES behind a specialty, the diploma behind each other
//! savoir-faire, university diplomas, temporary authorisations. About 1.4 lines a
//! professional, 2.3 M lines nationally.

use super::codes::{self, Code, Kind};
use super::professional::Exercice;
use super::rng::Rng;

pub(crate) struct Diploma {
    pub kind: Option<Code>,
    pub diploma: Option<(String, String)>,
    pub auth: Option<(Code, Code)>,
}

pub(crate) fn diplomas(rng: &mut Rng, ex: &Exercice) -> Vec<Diploma> {
    let mut out = Vec::with_capacity(3);
    if ex.categorie == codes::CAT_ETUDIANT {
        return out;
    }
    let prof = ex.profession;
    let regulated = !matches!(prof.kind, Kind::Salarie | Kind::Commerce);
    if regulated && rng.chance(30_000) {
        let country = rng.pick(&codes::UE_COUNTRIES);
        let diploma = Some((
            format!("UE{}", prof.code),
            format!("Diplôme de {} ({country})", prof.label),
        ));
        let auth = Some((codes::AUTH_TYPE, (prof.code, prof.label)));
        if rng.chance(500_000) {
            out.push(Diploma {
                kind: Some(codes::DIPLOMA_TYPE_UE),
                diploma,
                auth,
            });
        } else {
            out.push(Diploma {
                kind: Some(codes::DIPLOMA_TYPE_UE),
                diploma,
                auth: None,
            });
            out.push(Diploma {
                kind: None,
                diploma: None,
                auth,
            });
        }
    } else {
        let (code, label) = prof.diploma;
        out.push(Diploma {
            kind: Some(codes::DIPLOMA_TYPE_DE),
            diploma: Some((code.into(), label.into())),
            auth: None,
        });
    }
    if let (Kind::Medecin, Some(&(_, (code, label)))) = (prof.kind, ex.savoir_faire.first()) {
        let des = (format!("D{code}"), format!("DES {label}"));
        out.push(Diploma {
            kind: Some(codes::DIPLOMA_TYPE_DES),
            diploma: Some(des),
            auth: None,
        });
    }
    qualifications(rng, ex, &mut out);
    if regulated && rng.chance(120_000) {
        let (code, label) = *rng.pick(&codes::DU_LIST);
        out.push(Diploma {
            kind: Some(codes::DIPLOMA_TYPE_DU),
            diploma: Some((code.into(), label.into())),
            auth: None,
        });
    }
    if rng.chance(5_000) {
        out.push(Diploma {
            kind: None,
            diploma: None,
            auth: Some((codes::AUTH_TYPE_TEMP, (prof.code, prof.label))),
        });
    }
    out
}

/// The diplomas behind savoir-faire other than a médecin's specialty (its DES is written
/// above): a capacité or a specialisation is itself a diploma; a compétence or an
/// orientation is usually backed by an inter-university diploma.
fn qualifications(rng: &mut Rng, ex: &Exercice, out: &mut Vec<Diploma>) {
    let skip = usize::from(ex.profession.kind == Kind::Medecin);
    for &((ty, _), (code, label)) in ex.savoir_faire.iter().skip(skip) {
        let (kind, diploma) = match ty {
            "CAPA" => (codes::DIPLOMA_TYPE_CAPA, (code.to_owned(), label.to_owned())),
            "S" => (codes::DIPLOMA_TYPE_DES, (format!("D{code}"), format!("DES {label}"))),
            "SH" => (
                codes::DIPLOMA_TYPE_SPE,
                (format!("DE{code}"), format!("Diplôme d'Etat {label}")),
            ),
            _ if rng.chance(600_000) => (codes::DIPLOMA_TYPE_DIU, (format!("DIU{code}"), format!("DIU {label}"))),
            _ => continue,
        };
        out.push(Diploma {
            kind: Some(kind),
            diploma: Some(diploma),
            auth: None,
        });
    }
}
