//! Per-line realism of the generated files (shapes, code systems, which columns a real line
//! fills) and the two line orders: the same lines either way, grouped or not.

use std::collections::{HashMap, HashSet};

use super::Order;
use super::rng::luhn_valid;
use super::tests::{Extract, entry, run_ordered};

const PA: &str = "PS_LibreAcces_Personne_activite_";
const SF: &str = "PS_LibreAcces_SavoirFaire_";
const DIP: &str = "PS_LibreAcces_Dipl_AutExerc_";

/// Personne_activite (code, label) column pairs: both filled or both empty.
const PA_PAIRS: [(usize, usize); 14] = [
    (3, 4),
    (5, 6),
    (9, 10),
    (11, 12),
    (13, 14),
    (15, 16),
    (17, 18),
    (30, 31),
    (38, 39),
    (44, 45),
    (48, 49),
    (50, 51),
    (52, 53),
    (54, 55),
];

fn fields(line: &str) -> Vec<&str> {
    line.split('|').collect()
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn body<'a>(x: &'a Extract, prefix: &str) -> Vec<&'a str> {
    entry(x, prefix).lines().skip(1).collect()
}

/// (nom, prénom, professions) of each professional, from Personne_activite.
type People<'a> = HashMap<&'a str, (&'a str, &'a str, HashSet<&'a str>)>;

fn check_activite_line<'a>(f: &[&'a str], people: &mut People<'a>) -> Result<(), String> {
    if f.len() != 57 || !f[56].is_empty() {
        return Err("not 56 fields and a trailing |".into());
    }
    match f[0] {
        "8" if digits(f[1], 11) && luhn_valid(f[1]) => {}
        "0" if f[1].len() == 9 && f[1].starts_with('0') => {}
        _ => return Err("bad identifier".into()),
    }
    if f[2] != format!("{}{}", f[0], f[1]) {
        return Err("national id is not type + identifier".into());
    }
    if let Some((&c, &l)) = PA_PAIRS
        .iter()
        .map(|&(c, l)| (&f[c], &f[l]))
        .find(|(c, l)| c.is_empty() != l.is_empty())
    {
        return Err(format!("code {c:?} and label {l:?} not filled together"));
    }
    let ok = ["M", "MME"].contains(&f[5])
        && !f[7].is_empty()
        && !f[8].is_empty()
        && digits(f[9], 2)
        && ["C", "E", "M"].contains(&f[11])
        && f[44].is_empty() // Département columns: always empty in the real extract
        && (f[19].is_empty() || (digits(f[19], 14) && luhn_valid(f[19])))
        && (f[20].is_empty() || digits(f[20], 9))
        && [f[21], f[22]].iter().all(|v| v.is_empty() || v.len() == 9)
        && [f[40], f[41], f[42]].iter().all(|t| t.is_empty() || digits(t, 10) || (t.starts_with("00") && digits(t, 13)))
        && (f[43].is_empty() || (f[43].contains('@') && f[43].contains('.')))
        && (f[48].is_empty() || f[48].starts_with("SA"))
        && (f[52].is_empty() || f[52].starts_with("FON-"))
        && (f[54].is_empty() || f[54].starts_with("GENR"));
    if !ok {
        return Err("a field of the wrong shape".into());
    }
    if f[17].is_empty() {
        // No activity (students, registered without activity): nothing after savoir-faire.
        if f[17..56].iter().any(|v| !v.is_empty()) {
            return Err("activity columns filled without an activity".into());
        }
    } else {
        if !["L", "S", "B"].contains(&f[17]) || f[47].is_empty() || f[11] == "E" {
            return Err("bad activity".into());
        }
        let france = !f[36].is_empty();
        if !f[23].is_empty()
            && (f[35].is_empty() || f[34].is_empty() || f[40].is_empty() || (!france && f[38].is_empty()))
        {
            return Err("a site without address or phone".into());
        }
        let corsica = f[36].starts_with("2A") || f[36].starts_with("2B");
        if france && !(f[36].len() == 5 && (corsica || digits(f[36], 5)) && digits(f[35], 5)) {
            return Err("bad commune or postcode".into());
        }
    }
    let person = people.entry(f[2]).or_insert((f[7], f[8], HashSet::new()));
    if (person.0, person.1) != (f[7], f[8]) {
        return Err("name differs between lines of one professional".into());
    }
    person.2.insert(f[9]);
    Ok(())
}

#[test]
fn every_line_looks_like_a_real_one() {
    let x = run_ordered(2_000, 17, 0, Order::Grouped);
    let mut people = People::new();
    let mut filled = [0u64; 56];
    let mut lines_of: HashMap<&str, u32> = HashMap::new();
    let activite = body(&x, PA);
    for line in &activite {
        let f = fields(line);
        check_activite_line(&f, &mut people).unwrap_or_else(|e| panic!("{e}: {line}"));
        for (n, v) in f.iter().take(56).enumerate() {
            filled[n] += u64::from(!v.is_empty());
        }
        *lines_of.entry(f[2]).or_default() += 1;
    }
    // Every column a real line fills is filled somewhere; only Département never is.
    for (n, count) in filled.iter().enumerate() {
        assert_eq!(*count == 0, n == 44 || n == 45, "column {n} filled on {count} lines");
    }
    // Activities per professional: mostly one, a good quarter two, a few three or more.
    let n = lines_of.len() as f64;
    let share = |f: &dyn Fn(u32) -> bool| lines_of.values().filter(|&&c| f(c)).count() as f64 / n;
    let (one, two, more) = (share(&|c| c == 1), share(&|c| c == 2), share(&|c| c >= 3));
    assert!(
        (0.55..0.75).contains(&one),
        "{one} with one line ({two} two, {more} more)"
    );
    assert!((0.22..0.38).contains(&two), "{two} with two lines");
    assert!((0.03..0.10).contains(&more), "{more} with three or more");

    let known_types = ["S", "C", "CEX", "CAPA", "DNQ", "FQ", "OP", "SH", "DEC"];
    let mut savoir_faire: HashMap<&str, u32> = HashMap::new();
    for line in body(&x, SF) {
        let f = fields(line);
        let person = people.get(f[2]).unwrap_or_else(|| panic!("no activity line: {line}"));
        assert!(f.len() == 14 && f[..13].iter().all(|v| !v.is_empty()), "{line}");
        assert_eq!((person.0, person.1), (f[3], f[4]), "{line}");
        assert!(person.2.contains(f[5]), "a savoir-faire of another profession: {line}");
        assert!(known_types.contains(&f[9]), "{line}");
        *savoir_faire.entry(f[2]).or_default() += 1;
    }
    // Médecins hold a specialty and often a capacité or compétence besides.
    assert!(
        savoir_faire.values().any(|&c| c >= 3),
        "nobody holds three savoir-faire"
    );
    let mut diplomas: HashMap<&str, u32> = HashMap::new();
    for line in body(&x, DIP) {
        let f = fields(line);
        let person = people.get(f[2]).unwrap_or_else(|| panic!("no activity line: {line}"));
        assert!(f.len() == 14 && f[..5].iter().all(|v| !v.is_empty()), "{line}");
        assert_eq!((person.0, person.1), (f[3], f[4]), "{line}");
        let diploma = f[5..9].iter().all(|v| !v.is_empty());
        let authorisation = f[9..13].iter().all(|v| !v.is_empty());
        let empty = |r: std::ops::Range<usize>| f[r].iter().all(|v| v.is_empty());
        assert!(
            (diploma || empty(5..9)) && (authorisation || empty(9..13)) && (diploma || authorisation),
            "neither a whole diploma nor a whole authorisation: {line}"
        );
        *diplomas.entry(f[2]).or_default() += 1;
    }
    let with_diploma = diplomas.len() as f64 / n;
    assert!((0.85..0.98).contains(&with_diploma), "{with_diploma} with a diploma");
    assert!(diplomas.values().any(|&c| c >= 4), "nobody holds four diploma lines");
}

/// Lines per file, with for each professional the sequence of their lines in file order.
fn by_professional(text: &str) -> (Vec<&str>, HashMap<&str, Vec<&str>>) {
    let lines: Vec<&str> = text.lines().skip(1).collect();
    let mut own: HashMap<&str, Vec<&str>> = HashMap::new();
    for l in &lines {
        own.entry(fields(l)[2]).or_default().push(l);
    }
    (lines, own)
}

/// Whether each professional's lines are consecutive.
fn grouped(lines: &[&str]) -> bool {
    let mut done = HashSet::new();
    let mut last = "";
    for l in lines {
        let id = fields(l)[2];
        if id != last && !done.insert(id) {
            return false;
        }
        last = id;
    }
    true
}

#[test]
fn shuffled_order_has_the_same_lines_not_grouped() {
    let g = run_ordered(2_000, 23, 1, Order::Grouped);
    let s = run_ordered(2_000, 23, 1, Order::Shuffled);
    assert_eq!(
        GenSummaryCounts::of(&g),
        GenSummaryCounts::of(&s),
        "same counts and bytes"
    );
    let mut first_seen: Vec<Vec<&str>> = Vec::new();
    for prefix in [PA, SF, DIP] {
        let (gt, st) = (entry(&g, prefix), entry(&s, prefix));
        assert_eq!(gt.lines().next(), st.lines().next(), "{prefix}: header first");
        let (gl, gown) = by_professional(gt);
        let (sl, sown) = by_professional(st);
        let (mut a, mut b) = (gl.clone(), sl.clone());
        a.sort_unstable();
        b.sort_unstable();
        assert!(a == b, "{prefix}: not the same multiset of lines");
        assert!(grouped(&gl), "{prefix}: grouped order is not grouped");
        assert!(!grouped(&sl), "{prefix}: shuffled order is still grouped");
        // A professional's own lines keep their relative order (the main activity is first).
        assert!(gown == sown, "{prefix}: a professional's lines were reordered");
        let mut seen = HashSet::new();
        first_seen.push(gl.iter().map(|l| fields(l)[2]).filter(|id| seen.insert(*id)).collect());
    }
    // Grouped: professionals come in the same order in every file.
    let rank: HashMap<&str, usize> = first_seen[0].iter().enumerate().map(|(k, id)| (*id, k)).collect();
    for order in &first_seen[1..] {
        assert!(
            order.windows(2).all(|w| rank[w[0]] < rank[w[1]]),
            "professional order differs"
        );
    }
}

#[derive(Debug, PartialEq, Eq)]
struct GenSummaryCounts([u64; 5]);

impl GenSummaryCounts {
    fn of(x: &Extract) -> Self {
        let s = &x.summary;
        GenSummaryCounts([
            s.professionals,
            s.activity_lines,
            s.savoir_faire_lines,
            s.diploma_lines,
            s.uncompressed_bytes,
        ])
    }
}
