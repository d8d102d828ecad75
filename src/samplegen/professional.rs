//! One professional: identity and first state drawn from (seed, index), then one mutation per
//! change event drawn from (seed, index, event number). An unchanged professional is thus
//! rebuilt byte-identical on every day, and a changed one differs only by its mutations.

use super::codes::{self, Code, Kind, Profession};
use super::diplomas::{Diploma, diplomas};
use super::names;
use super::population::{IdType, Population};
use super::rng::{Rng, key, tag};
use super::structures::{Pool, Pools};

pub(crate) struct Ctx {
    pub seed: u64,
    pub pools: Pools,
    pub pop: Population,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Site {
    Shared(Pool, u64),
    /// A cabinet of one's own; the number is its rank for the technical id.
    Individual(u32),
    /// An activity declared without any site.
    None,
}

pub(crate) struct Activity {
    /// Seed of everything activity-specific (own cabinet, service, phone).
    pub key: u64,
    pub site: Site,
    pub mode: Code,
    pub section: Option<Code>,
    pub role: Option<Code>,
    pub genre: Option<Code>,
    pub service: Option<&'static str>,
    /// Bumped by a phone change; 0 keeps the site's own numbers.
    pub phone_version: u32,
}

pub(crate) struct Exercice {
    pub profession: &'static Profession,
    pub categorie: Code,
    pub civ_ex: Option<Code>,
    /// (type, savoir-faire); the first one is also written on the activity lines.
    pub savoir_faire: Vec<(Code, Code)>,
    /// Empty for students and registered professionals without activity: one bare line.
    pub activities: Vec<Activity>,
}

pub(crate) struct Professional {
    pub id_type: IdType,
    pub id: String,
    pub civilite: Code,
    pub nom: String,
    pub prenom: &'static str,
    pub exercices: Vec<Exercice>,
    pub diplomas: Vec<Diploma>,
    /// Some(r): the line r % lines is written twice, a quirk of the real files.
    pub duplicate: Option<u64>,
}

impl Professional {
    pub(crate) fn national_id(&self) -> String {
        format!("{}{}", self.id_type.code(), self.id)
    }
}

/// Builds professional `i` as of the population's day.
pub(crate) fn build(ctx: &Ctx, i: u64) -> Professional {
    let mut p = initial(ctx, i);
    for k in 1..=ctx.pop.version(i) {
        let mut rng = Rng::new(key(&[ctx.seed, tag::CHANGE_EVENT, i, u64::from(k)]));
        mutate(ctx, &mut p, &mut rng);
    }
    p
}

fn initial(ctx: &Ctx, i: u64) -> Professional {
    let mut rng = Rng::new(key(&[ctx.seed, tag::IDENTITY, i]));
    let id_type = ctx.pop.id_type(i);
    let profession = match id_type {
        IdType::Rpps => *rng.weighted(&codes::RPPS_MIX),
        IdType::Adeli => *rng.weighted(&codes::ADELI_MIX),
    };
    let female = rng.below(100) < profession.female_pct;
    let mut p = Professional {
        id_type,
        id: ctx.pop.identifier(i),
        civilite: if female { codes::CIV_MME } else { codes::CIV_M },
        nom: names::family(&mut rng),
        prenom: names::given(&mut rng, female),
        exercices: Vec::with_capacity(1),
        diplomas: Vec::new(),
        duplicate: rng.chance(100).then(|| rng.next_u64()),
    };
    let first = exercice(ctx, &mut rng, profession, true);
    let student = first.categorie == codes::CAT_ETUDIANT;
    p.diplomas = diplomas(&mut rng, &first);
    p.exercices.push(first);
    if !student && id_type == IdType::Rpps && rng.chance(4_000) {
        let second = *rng.weighted(&codes::SECOND_PROFESSION);
        if second.code != profession.code {
            let ex = exercice(ctx, &mut rng, second, false);
            p.diplomas.extend(diplomas(&mut rng, &ex));
            p.exercices.push(ex);
        }
    }
    p
}

fn exercice(ctx: &Ctx, rng: &mut Rng, prof: &'static Profession, first: bool) -> Exercice {
    let student_ppm = match prof.kind {
        Kind::Medecin => 110_000,
        Kind::Pharmacien | Kind::Dentiste => 50_000,
        Kind::SageFemme => 30_000,
        _ => 0,
    };
    let student = first && rng.chance(student_ppm);
    let categorie = if student {
        codes::CAT_ETUDIANT
    } else if matches!(prof.kind, Kind::Medecin | Kind::Infirmier | Kind::Pharmacien) && rng.chance(5_000) {
        codes::CAT_MILITAIRE
    } else {
        codes::CAT_CIVIL
    };
    let civ_ex = match prof.kind {
        _ if student => None,
        Kind::Medecin if rng.chance(30_000) => Some(codes::CIV_EX_PR),
        Kind::Medecin | Kind::Dentiste => Some(codes::CIV_EX_DR),
        Kind::Pharmacien if rng.chance(600_000) => Some(codes::CIV_EX_DR),
        _ => None,
    };
    let mut ex = Exercice {
        profession: prof,
        categorie,
        civ_ex,
        savoir_faire: Vec::new(),
        activities: Vec::new(),
    };
    if student {
        return ex;
    }
    if prof.kind == Kind::Medecin {
        let specialty = *rng.weighted(&codes::MEDECIN_SPECIALTIES);
        ex.savoir_faire.push((codes::SF_S, specialty));
    }
    for &(ppm, ty, sf) in prof.savoir_faire {
        if rng.chance(ppm) {
            ex.savoir_faire.push((ty, sf));
        }
    }
    // Registered but without any declared activity (retired, on leave, ...).
    if rng.chance(15_000) {
        return ex;
    }
    // Chance of a second and of a third activity. Médecins often combine a cabinet with
    // hospital sessions, nurses and therapists a salaried post with a libéral practice or
    // replacements: about 1.4 activity lines a professional, 2.4 M lines nationally.
    let (extra_ppm, third_ppm) = match prof.kind {
        Kind::Medecin => (580_000, 240_000),
        Kind::Infirmier => (280_000, 50_000),
        Kind::Pharmacien => (220_000, 25_000),
        Kind::Dentiste => (300_000, 50_000),
        Kind::SageFemme => (250_000, 40_000),
        Kind::Liberal => (450_000, 100_000),
        Kind::Salarie | Kind::Commerce => (180_000, 25_000),
    };
    let count = 1 + usize::from(rng.chance(extra_ppm)) + usize::from(rng.chance(third_ppm));
    for n in 0..count {
        ex.activities.push(activity(ctx, rng, prof, n));
    }
    ex
}

/// One activity; `n` is its rank (0 = main activity), which shifts the choice of site.
fn activity(ctx: &Ctx, rng: &mut Rng, prof: &Profession, n: usize) -> Activity {
    use codes::{MODE_L as L, MODE_S as S};
    let own = Pool::Group(prof.code.parse().unwrap_or(0));
    let hosp = Site::Shared(Pool::Hospital, 0);
    let ind = Site::Individual(n as u32 + 1);
    let extra = n > 0;
    #[rustfmt::skip]
    let choices: &[(u32, (Site, Code))] = match prof.kind {
        Kind::Medecin if !extra => &[(25, (ind, L)), (20, (GROUP, L)), (42, (hosp, S)), (5, (MSP, L)), (5, (hosp, L)), (3, (LABO, S))],
        Kind::Medecin => &[(25, (hosp, L)), (15, (hosp, S)), (25, (ind, L)), (25, (GROUP, L)), (10, (MSP, L))],
        Kind::Infirmier if !extra => &[(72, (hosp, S)), (8, (ind, L)), (10, (GROUP, L)), (2, (MSP, L)), (8, (Site::None, S))],
        Kind::Infirmier => &[(50, (hosp, S)), (30, (GROUP, L)), (20, (ind, L))],
        Kind::Pharmacien if !extra => &[(33, (OFFICINE, L)), (37, (OFFICINE, S)), (10, (LABO, L)), (15, (hosp, S)), (5, (Site::None, S))],
        Kind::Pharmacien => &[(80, (OFFICINE, S)), (20, (hosp, S))],
        Kind::Dentiste => &[(45, (ind, L)), (40, (GROUP, L)), (10, (hosp, S)), (5, (MSP, L))],
        Kind::SageFemme if !extra => &[(70, (hosp, S)), (22, (ind, L)), (8, (MSP, L))],
        Kind::SageFemme => &[(40, (hosp, S)), (60, (ind, L))],
        Kind::Liberal => &[(40, (ind, L)), (40, (GROUP, L)), (15, (hosp, S)), (5, (MSP, L))],
        Kind::Salarie => match prof.code {
            "31" => &[(85, (DENTAL, S)), (15, (hosp, S))],
            "86" => &[(50, (LABO, S)), (45, (hosp, S)), (5, (Site::None, S))],
            _ => &[(80, (hosp, S)), (12, (GROUP, S)), (8, (Site::None, S))],
        },
        Kind::Commerce => &[(30, (GROUP, L)), (65, (GROUP, S)), (5, (Site::None, S))],
    };
    let &(site, mut mode) = rng.weighted(choices);
    let site = match site {
        Site::Shared(Pool::Group(0), _) => Site::Shared(own, ctx.pools.pick(own, rng)),
        Site::Shared(pool, _) => Site::Shared(pool, ctx.pools.pick(pool, rng)),
        other => other,
    };
    if rng.chance(5_000) {
        mode = codes::MODE_B;
    }
    let mut a = Activity {
        key: rng.next_u64(),
        site,
        mode,
        section: None,
        role: None,
        genre: None,
        service: None,
        phone_version: 0,
    };
    a.genre = match rng.below(100) {
        0..=3 => Some(codes::GENRE_REMPLACEMENT),
        4 if prof.kind == Kind::Medecin => Some(codes::GENRE_REGULATION),
        5..=54 => Some(codes::GENRE_STANDARD),
        _ => None,
    };
    let is_l = a.mode == codes::MODE_L;
    match a.site {
        Site::Shared(Pool::Hospital, _) => {
            if rng.chance(350_000) {
                a.service = Some(*rng.pick(names::HOSPITAL_SERVICES));
            }
            a.role = match rng.below(100) {
                0..=4 => Some(codes::ROLE_CHEF),
                5..=34 => Some(codes::ROLE_SALARIE),
                _ => None,
            };
        }
        Site::Shared(Pool::Group(_) | Pool::Msp, _) if is_l => {
            a.role = match rng.below(10) {
                0..=3 => Some(codes::ROLE_ASSOCIE),
                4 => Some(codes::ROLE_COLLABORATEUR),
                _ => None,
            };
        }
        Site::Individual(_) if rng.chance(500_000) => a.role = Some(codes::ROLE_TITULAIRE),
        _ => {}
    }
    if prof.kind == Kind::Pharmacien {
        (a.section, a.role) = match a.site {
            Site::Shared(Pool::Officine, _) if is_l => (Some(codes::SECTION_A), Some(codes::ROLE_TITULAIRE)),
            Site::Shared(Pool::Officine, _) => (Some(codes::SECTION_D), Some(codes::ROLE_ADJOINT)),
            Site::Shared(Pool::Labo, _) => (Some(codes::SECTION_G), a.role),
            Site::Shared(Pool::Hospital, _) => (Some(codes::SECTION_H), a.role),
            _ => (Some(codes::SECTION_D), None),
        };
    }
    a
}

// Placeholders resolved in `activity`: index 0 means "draw one from the pool".
const GROUP: Site = Site::Shared(Pool::Group(0), 0);
const DENTAL: Site = Site::Shared(Pool::Group(40), 0);
const MSP: Site = Site::Shared(Pool::Msp, 0);
const LABO: Site = Site::Shared(Pool::Labo, 0);
const OFFICINE: Site = Site::Shared(Pool::Officine, 0);

/// One change event: a new phone, a move, a new or dropped activity, a new savoir-faire.
fn mutate(ctx: &Ctx, p: &mut Professional, rng: &mut Rng) {
    let ex = &mut p.exercices[0];
    let n = ex.activities.len() as u64;
    if n == 0 {
        // Nothing to move: the change people without activity see is a new name.
        p.nom = names::family(rng);
        return;
    }
    let target = rng.below(n) as usize;
    match rng.below(100) {
        40..=64 => {
            let a = &mut ex.activities[target];
            a.key = rng.next_u64();
            if let Site::Shared(pool, _) = a.site {
                a.site = Site::Shared(pool, ctx.pools.pick(pool, rng));
            }
        }
        65..=79 => {
            let prof = ex.profession;
            let mut a = activity(ctx, rng, prof, ex.activities.len());
            if let Site::Individual(_) = a.site {
                // After a removal the count no longer gives a free rank: take the next one.
                let ranks = ex.activities.iter().map(|a| match a.site {
                    Site::Individual(r) => r,
                    _ => 0,
                });
                a.site = Site::Individual(ranks.max().unwrap_or(0) + 1);
            }
            ex.activities.push(a);
        }
        80..=89 if n > 1 => {
            ex.activities.remove(target);
        }
        90..=99 if !ex.profession.savoir_faire.is_empty() => {
            let &(_, ty, sf) = rng.pick(ex.profession.savoir_faire);
            ex.savoir_faire.push((ty, sf));
        }
        _ => ex.activities[target].phone_version += 1,
    }
}
