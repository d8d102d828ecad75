use std::collections::{HashMap, HashSet};
use std::io::Read;

use super::population::{IdType, Population};
use super::professional::{self, Ctx};
use super::rng::{Geometric, IdPermutation, Rng, luhn_valid};
use super::structures::Pools;
use super::*;

/// The headers as written in the spec (extract-format.md), `|`-separated with spaces.
const SPEC_ACTIVITE: &str = "Type d'identifiant PP | Identifiant PP | Identification nationale PP | Code civilité d'exercice | \
Libellé civilité d'exercice | Code civilité | Libellé civilité | Nom d'exercice | Prénom d'exercice | \
Code profession | Libellé profession | Code catégorie professionnelle | Libellé catégorie professionnelle | \
Code type savoir-faire | Libellé type savoir-faire | Code savoir-faire | Libellé savoir-faire | \
Code mode exercice | Libellé mode exercice | Numéro SIRET site | Numéro SIREN site | Numéro FINESS site | \
Numéro FINESS établissement juridique | Identifiant technique de la structure | Raison sociale site | \
Enseigne commerciale site | Complément destinataire (coord. structure) | \
Complément point géographique (coord. structure) | Numéro Voie (coord. structure) | \
Indice répétition voie (coord. structure) | Code type de voie (coord. structure) | \
Libellé type de voie (coord. structure) | Libellé Voie (coord. structure) | \
Mention distribution (coord. structure) | Bureau cedex (coord. structure) | Code postal (coord. structure) | \
Code commune (coord. structure) | Libellé commune (coord. structure) | Code pays (coord. structure) | \
Libellé pays (coord. structure) | Téléphone (coord. structure) | Téléphone 2 (coord. structure) | \
Télécopie (coord. structure) | Adresse e-mail (coord. structure) | Code Département (structure) | \
Libellé Département (structure) | Ancien identifiant de la structure | Autorité d'enregistrement | \
Code secteur d'activité | Libellé secteur d'activité | Code section tableau pharmaciens | \
Libellé section tableau pharmaciens | Code rôle | Libellé rôle | Code genre activité | Libellé genre activité";
const SPEC_SF: &str = "Type d'identifiant PP | Identifiant PP | Identification nationale PP | Nom d'exercice | \
Prénom d'exercice | Code profession | Libellé profession | Code catégorie professionnelle | \
Libellé catégorie professionnelle | Code type savoir-faire | Libellé type savoir-faire | \
Code savoir-faire | Libellé savoir-faire";
const SPEC_DIPL: &str = "Type d'identifiant PP | Identifiant PP | Identification nationale PP | Nom d'exercice | \
Prénom d'exercice | Code type diplôme obtenu | Libellé type diplôme obtenu | Code diplôme obtenu | \
Libellé diplôme obtenu | Code type autorisation | Libellé type autorisation | \
Code discipline autorisation | Libellé discipline autorisation";

fn spec_header(spec: &str) -> String {
    spec.split(" | ").map(|l| format!("{l}|")).collect()
}

pub(super) struct Extract {
    pub(super) summary: GenSummary,
    /// Entry name -> text.
    pub(super) files: HashMap<String, String>,
    bytes: Vec<u8>,
}

fn run(n: u64, seed: u64, day: u32) -> Extract {
    run_ordered(n, seed, day, Order::Grouped)
}

pub(super) fn run_ordered(n: u64, seed: u64, day: u32, order: Order) -> Extract {
    let dir = tempfile::tempdir().unwrap();
    let opts = GenOptions {
        professionals: n,
        seed,
        day,
        out_dir: dir.path().to_owned(),
        order,
    };
    let summary = generate(&opts, &|_| {}).unwrap();
    let bytes = std::fs::read(&summary.zip_path).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).unwrap();
    let mut files = HashMap::new();
    for k in 0..archive.len() {
        let mut f = archive.by_index(k).unwrap();
        let mut text = String::new();
        f.read_to_string(&mut text).unwrap();
        files.insert(f.name().unwrap().into_owned(), text);
    }
    Extract { summary, files, bytes }
}

pub(super) fn entry<'a>(x: &'a Extract, prefix: &str) -> &'a str {
    x.files
        .iter()
        .find(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v.as_str())
        .unwrap()
}

#[test]
fn headers_match_the_spec() {
    assert_eq!(format::ACTIVITE_HEADER.len(), 56);
    assert_eq!(format::SAVOIR_FAIRE_HEADER.len(), 13);
    assert_eq!(format::DIPLOME_HEADER.len(), 13);
    let x = run(300, 1, 0);
    for (prefix, spec) in [
        ("PS_LibreAcces_Personne_activite_", SPEC_ACTIVITE),
        ("PS_LibreAcces_SavoirFaire_", SPEC_SF),
        ("PS_LibreAcces_Dipl_AutExerc_", SPEC_DIPL),
    ] {
        let first = entry(&x, prefix).lines().next().unwrap();
        assert_eq!(first, spec_header(spec), "{prefix}");
    }
}

#[test]
fn names_and_timestamps() {
    assert_eq!(extract_timestamp(0).unwrap().0, "202611250900");
    assert_eq!(extract_timestamp(7).unwrap().0, "202612020900");
    // Across the spring DST change the local hour stays 09:00.
    assert_eq!(extract_timestamp(150).unwrap().0, "202704240900");
    let x = run(200, 3, 2);
    assert!(x.summary.zip_path.ends_with("PS_LibreAcces_202611270900.zip"));
    let mut names: Vec<_> = x.files.keys().cloned().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "PS_LibreAcces_Dipl_AutExerc_202611270900.txt",
            "PS_LibreAcces_Personne_activite_202611270900.txt",
            "PS_LibreAcces_SavoirFaire_202611270900.txt",
        ]
    );
}

#[test]
fn every_line_has_the_header_field_count() {
    let x = run(5_000, 7, 0);
    for (name, text) in &x.files {
        assert!(!text.contains('\r') && !text.starts_with('\u{feff}'), "{name}");
        assert!(text.ends_with("|\n"), "{name}");
        let mut lines = text.split_terminator('\n');
        let cols = lines.next().unwrap().split('|').count();
        for (k, line) in lines.enumerate() {
            assert!(line.ends_with('|'), "{name}:{k}: {line}");
            assert_eq!(line.split('|').count(), cols, "{name}:{k}: {line}");
        }
    }
    let activite = entry(&x, "PS_LibreAcces_Personne_activite_");
    assert_eq!(activite.lines().count() as u64 - 1, x.summary.activity_lines);
    let total: usize = x.files.values().map(String::len).sum();
    assert_eq!(total as u64, x.summary.uncompressed_bytes);
}

#[test]
fn identifiers_are_valid_unique_and_grouped() {
    let x = run(5_000, 11, 0);
    let activite = entry(&x, "PS_LibreAcces_Personne_activite_");
    let mut seen_order = Vec::new();
    let mut done = HashSet::new();
    let mut last = String::new();
    let (mut rpps, mut adeli) = (0u64, 0u64);
    for line in activite.lines().skip(1) {
        let f: Vec<&str> = line.split('|').collect();
        let national = f[2];
        assert_eq!(national, format!("{}{}", f[0], f[1]));
        if national != last {
            // A professional's lines are consecutive: seen once as a run.
            assert!(done.insert(national.to_owned()), "{national} split");
            seen_order.push(national.to_owned());
            last = national.to_owned();
            match f[0] {
                "8" => {
                    rpps += 1;
                    assert!(f[1].len() == 11 && luhn_valid(f[1]), "bad RPPS {}", f[1]);
                }
                "0" => {
                    adeli += 1;
                    assert!(f[1].len() == 9 && f[1].starts_with('0'), "bad ADELI {}", f[1]);
                }
                t => panic!("type {t}"),
            }
        }
    }
    assert_eq!(done.len() as u64, x.summary.professionals);
    let adeli_pct = adeli as f64 * 100.0 / (rpps + adeli) as f64;
    assert!((1.5..2.5).contains(&adeli_pct), "ADELI {adeli_pct} %");
    let mut sorted = seen_order.clone();
    sorted.sort();
    assert_ne!(sorted, seen_order, "file order must not be sorted by id");
}

#[test]
fn same_options_give_the_same_bytes() {
    let a = run(2_000, 42, 3);
    let b = run(2_000, 42, 3);
    assert_eq!(a.bytes, b.bytes);
    assert_eq!(a.summary.uncompressed_bytes, b.summary.uncompressed_bytes);
    let c = run(2_000, 43, 3);
    assert_ne!(a.bytes, c.bytes);
}

#[test]
fn sizes_and_mix_look_national() {
    let x = run(20_000, 5, 0);
    let s = &x.summary;
    let n = s.professionals as f64;
    let act = entry(&x, "PS_LibreAcces_Personne_activite_");
    let sf = entry(&x, "PS_LibreAcces_SavoirFaire_");
    let dip = entry(&x, "PS_LibreAcces_Dipl_AutExerc_");
    let per_line = |t: &str, lines: u64| t.len() as f64 / lines as f64;
    let (la, ls, ld) = (
        per_line(act, s.activity_lines),
        per_line(sf, s.savoir_faire_lines),
        per_line(dip, s.diploma_lines),
    );
    assert!((320.0..400.0).contains(&la), "activité {la} bytes a line");
    assert!((90.0..160.0).contains(&ls), "savoir-faire {ls} bytes a line");
    assert!((90.0..160.0).contains(&ld), "diplôme {ld} bytes a line");
    let (ra, rs, rd) = (
        s.activity_lines as f64 / n,
        s.savoir_faire_lines as f64 / n,
        s.diploma_lines as f64 / n,
    );
    assert!((1.34..1.46).contains(&ra), "{ra} activity lines a professional");
    assert!((0.32..0.42).contains(&rs), "{rs} savoir-faire lines a professional");
    assert!((1.30..1.50).contains(&rd), "{rd} diploma lines a professional");
    // Scaled to the national 1.7 M, each file is at least as heavy as the heavier of the
    // spec's figures and issue 10's: a benchmark on lighter data measures nothing.
    let national = |x: f64| x / n * 1_700_000.0;
    for (name, bytes, lines, min_bytes, min_lines) in [
        ("Personne_activite", act.len(), s.activity_lines, 845e6, 2.2e6),
        ("Dipl_AutExerc", dip.len(), s.diploma_lines, 250e6, 2.0e6),
        ("SavoirFaire", sf.len(), s.savoir_faire_lines, 67e6, 0.4e6),
    ] {
        let (b, l) = (national(bytes as f64), national(lines as f64));
        assert!(
            b >= min_bytes && l >= min_lines,
            "{name}: {b} bytes, {l} lines nationally"
        );
    }
    let mut by_prof: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut quirks = HashMap::<&str, u64>::new();
    let mut prev = "";
    for line in act.lines().skip(1) {
        let f: Vec<&str> = line.split('|').collect();
        by_prof.entry(f[9]).or_default().insert(f[2]);
        *quirks.entry("quote").or_default() += u64::from(line.contains('"'));
        *quirks.entry("student").or_default() += u64::from(f[11] == "E" && f[23].is_empty());
        *quirks.entry("duplicate").or_default() += u64::from(line == prev);
        *quirks.entry("corsica").or_default() += u64::from(f[36].starts_with("2A") || f[36].starts_with("2B"));
        *quirks.entry("overseas").or_default() += u64::from(f[36].starts_with("97"));
        *quirks.entry("dept_filled").or_default() += u64::from(!f[44].is_empty() || !f[45].is_empty());
        for (prefix, name) in [("F", "tech_F"), ("C", "tech_C"), ("R", "tech_R")] {
            *quirks.entry(name).or_default() += u64::from(f[23].starts_with(prefix));
        }
        prev = line;
    }
    let share = |code: &str| by_prof.get(code).map_or(0, HashSet::len) as f64 * 100.0 / n;
    assert!((12.0..16.0).contains(&share("10")), "médecins {} %", share("10"));
    assert!((37.0..43.0).contains(&share("60")), "infirmiers {} %", share("60"));
    for code in ["21", "40", "50", "70", "93"] {
        assert!(share(code) > 0.5, "profession {code}");
    }
    for q in [
        "quote",
        "student",
        "duplicate",
        "corsica",
        "overseas",
        "tech_F",
        "tech_C",
        "tech_R",
    ] {
        assert!(quirks.get(q).copied().unwrap_or(0) > 0, "no {q} line: {quirks:?}");
    }
    assert_eq!(quirks["dept_filled"], 0);
    let two_professions = by_prof.values().fold(HashMap::<&str, u32>::new(), |mut m, ids| {
        for id in ids {
            *m.entry(id).or_default() += 1;
        }
        m
    });
    assert!(two_professions.values().any(|&c| c >= 2), "nobody has two professions");
}

/// Per identifier type: (alive, removed, added, changed) from `d0` to `d1`. Changed as the
/// importer sees it: any of the professional's lines in any of the three files differs.
fn diff(n: u64, seed: u64, d0: u32, d1: u32) -> HashMap<IdType, [u64; 4]> {
    let ctx = |day| Ctx {
        seed,
        pools: Pools::new(n),
        pop: Population::new(n, seed, day).unwrap(),
    };
    let (a, b) = (ctx(d0), ctx(d1));
    let lines = |c: &Ctx, i| {
        let p = professional::build(c, i);
        let mut s = String::new();
        format::activite_lines(seed, &p, &mut s);
        format::savoir_faire_lines(&p, &mut s);
        format::diplome_lines(&p, &mut s);
        s
    };
    let mut out: HashMap<IdType, [u64; 4]> = HashMap::new();
    for i in 0..b.pop.end() {
        let (in_a, in_b) = (i < a.pop.end() && a.pop.alive(i), b.pop.alive(i));
        let row = out.entry(b.pop.id_type(i)).or_default();
        row[0] += u64::from(in_a);
        row[1] += u64::from(in_a && !in_b);
        row[2] += u64::from(!in_a && in_b);
        row[3] += u64::from(in_a && in_b && lines(&a, i) != lines(&b, i));
    }
    out
}

#[test]
fn day_to_day_changes_stay_under_the_import_gate() {
    let n = 20_000;
    let d = diff(n, 9, 0, 1);
    for (ty, [alive, removed, added, changed]) in &d {
        let pct = |x: u64| x as f64 * 100.0 / *alive as f64;
        assert!(pct(*removed) < 1.0, "{ty:?} removed {} %", pct(*removed));
        assert!(pct(*changed) < 5.0, "{ty:?} changed {} %", pct(*changed));
        if *ty == IdType::Rpps {
            assert!((0.15..0.5).contains(&pct(*removed)), "removed {} %", pct(*removed));
            // Issue 10: a day+1 changes 1–2 % of professionals.
            assert!((1.0..2.0).contains(&pct(*changed)), "changed {} %", pct(*changed));
            assert!((0.3..0.5).contains(&pct(*added)), "added {} %", pct(*added));
        } else {
            assert_eq!(*added, 0, "no new ADELI");
        }
    }
    // The small ADELI population stays under the 1 % removal gate on every day and seed.
    for seed in 0..20 {
        let pops: Vec<_> = (0..=30).map(|day| Population::new(n, seed, day).unwrap()).collect();
        for w in pops.windows(2) {
            let (mut alive, mut removed) = (0u64, 0u64);
            for i in 0..n {
                if w[0].id_type(i) == IdType::Adeli && w[0].alive(i) {
                    alive += 1;
                    removed += u64::from(!w[1].alive(i));
                }
            }
            assert!(
                removed * 100 < alive,
                "seed {seed} day {}: {removed}/{alive} ADELI removed",
                w[1].day()
            );
        }
    }
}

#[test]
fn later_days_keep_unchanged_professionals_identical() {
    let (a, b) = (run(3_000, 21, 4), run(3_000, 21, 5));
    let lines = |x: &Extract| -> HashSet<String> {
        entry(x, "PS_LibreAcces_Personne_activite_")
            .lines()
            .skip(1)
            .map(str::to_owned)
            .collect()
    };
    let (la, lb) = (lines(&a), lines(&b));
    let common = la.intersection(&lb).count() as f64;
    assert!(
        common / la.len() as f64 > 0.97,
        "only {common} of {} lines kept",
        la.len()
    );
    assert!(common < la.len() as f64, "nothing changed in a day");
}

#[test]
fn rng_building_blocks() {
    assert!(luhn_valid("79927398713"));
    assert!(!luhn_valid("79927398710"));
    let perm = IdPermutation::new(5);
    let ids: HashSet<u64> = (0..200_000).map(|i| perm.apply(i)).collect();
    assert_eq!(ids.len(), 200_000);
    assert!(ids.iter().all(|&v| v < rng::ID_DOMAIN));
    let g = Geometric::new(0.01, 2_000);
    let mut r = Rng::new(1);
    let first_day = (0..100_000).filter(|_| g.sample(r.next_u64()) == Some(1)).count();
    assert!((900..1_100).contains(&first_day), "{first_day}");
}
