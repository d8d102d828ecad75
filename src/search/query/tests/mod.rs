//! The query builder, paging and facets against a small index built in a tempdir.

use std::borrow::Cow;

use super::*;
use crate::search::document::SearchValues;
use crate::search::filters::FACETS;

mod pages;

/// One professional: national id, name, profession, département; `extra` words in text.
fn professional(id: &str, name: &str, profession: &str, departement: &str, extra: &str) -> SearchValues<'static> {
    let owned = |text: &str| Cow::Owned(text.to_owned());
    SearchValues {
        national_id: owned(id),
        names: vec![name.to_owned()],
        display_name: name.to_owned(),
        sort_name: name
            .split_once(' ')
            .map_or(name.to_owned(), |(given, family)| format!("{family} {given}")),
        text: vec![owned(extra)],
        professions: [owned(profession)].into(),
        departements: [owned(departement)].into(),
        ..SearchValues::default()
    }
}

fn index_of(documents: &[SearchValues]) -> (tempfile::TempDir, SearchIndex) {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::create(&dir.path().join("index")).unwrap();
    index
        .add(documents.iter().map(|values| index.prepare(values)).collect(), false)
        .unwrap();
    index.commit(crate::store::RunId(1)).unwrap();
    (dir, index)
}

fn request(q: &str, filters: &[(&str, &str)], page: usize, per_page: usize) -> SearchRequest {
    SearchRequest {
        q: q.to_owned(),
        filters: filters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        page,
        per_page,
        facets: true,
    }
}

fn ids(response: &SearchResponse) -> Vec<&str> {
    response.results.iter().map(|h| h.national_id.as_str()).collect()
}

fn small_index() -> (tempfile::TempDir, SearchIndex) {
    index_of(&[
        professional("810000000001", "Hélène Lefèvre", "10", "69", "cardiologie"),
        professional("810000000002", "Marc Dupont", "10", "75", "rue Martin"),
        professional("810000000003", "Luc Dupond", "60", "69", ""),
        professional("810000000004", "Anne Martin", "60", "75", ""),
    ])
}

#[test]
fn words_are_folded_as_the_index_folds_them() {
    assert_eq!(query_words("Hélène LEFÈVRE-Martin"), ["helene", "lefevre", "martin"]);
}

#[test]
fn names_forgive_accents_case_and_typos_when_nothing_matches_without() {
    let (_dir, index) = small_index();
    let found = index.search(&request("HELENE lefevre", &[], 1, 20)).unwrap();
    assert_eq!(ids(&found), ["810000000001"]);
    // An exact spelling leaves out the names one letter off.
    let found = index.search(&request("dupont", &[], 1, 20)).unwrap();
    assert_eq!((ids(&found), found.total), (vec!["810000000002"], 1));
    let found = index.search(&request("dupond", &[], 1, 20)).unwrap();
    assert_eq!((ids(&found), found.total), (vec!["810000000003"], 1));
    // No name is spelt so: both one letter off, by name.
    let found = index.search(&request("duponf", &[], 1, 20)).unwrap();
    assert_eq!((ids(&found), found.total), (vec!["810000000003", "810000000002"], 2));
    // The last word is a prefix (typeahead).
    let found = index.search(&request("lef", &[], 1, 20)).unwrap();
    assert_eq!(ids(&found), ["810000000001"]);
}

#[test]
fn every_word_is_a_prefix_in_any_order() {
    let (_dir, index) = small_index();
    for q in ["lefe hel", "hel lefe", "LEFÈ", "h l", "helene lefev"] {
        let found = index.search(&request(q, &[], 1, 20)).unwrap();
        assert_eq!(ids(&found), ["810000000001"], "{q}");
    }
}

/// Jean DUPONT and the weaker matches of `dupont jean` and `dup jea`.
fn duponts() -> (tempfile::TempDir, SearchIndex) {
    index_of(&[
        professional("810000000011", "Jean Dupont", "10", "69", ""),
        professional("810000000012", "Jeanne Dupont", "10", "69", ""),
        professional("810000000013", "Jean Dupond", "10", "69", ""),
        professional("810000000014", "Jean Dupontel", "10", "69", ""),
        professional("810000000015", "Paul Durand", "10", "69", "rue Jean Dupont"),
        professional("810000000016", "Alain Dupont", "10", "69", ""),
    ])
}

#[test]
fn all_words_exact_then_prefixes_then_typos_then_other_words_ties_by_name() {
    let (_dir, index) = duponts();
    let found = index.search(&request("dupont jean", &[], 1, 20)).unwrap();
    assert_eq!(
        ids(&found),
        [
            "810000000011", // both words exact
            "810000000012", // a prefix (Jeanne), DUPONT Jeanne before
            "810000000014", // a prefix (Dupontel), DUPONTEL Jean: ties by name
            "810000000015", // both words, but not in the name
        ]
    );
    // Jean DUPOND, a typo away, only when no hit needs none: exact words first, then
    // prefixes, then more typos.
    let found = index.search(&request("dupont jaen", &[], 1, 20)).unwrap();
    assert_eq!(ids(&found), ["810000000011", "810000000014", "810000000013"]);
    assert_eq!(found.total, 3);
    // Every word a prefix: the names tie, so they come by name; the address comes last.
    let found = index.search(&request("dup jea", &[], 1, 20)).unwrap();
    assert_eq!(
        ids(&found),
        [
            "810000000013",
            "810000000011",
            "810000000012",
            "810000000014",
            "810000000015"
        ]
    );
    // Without facets: the same hits and total, no counts.
    let mut typeahead = request("dup jea", &[], 1, 20);
    typeahead.facets = false;
    let quick = index.search(&typeahead).unwrap();
    assert_eq!((ids(&quick), quick.total), (ids(&found), found.total));
    assert!(quick.facets.is_empty() && !found.facets.is_empty());
}

#[test]
fn an_identifier_outranks_every_word_match() {
    let mut documents = vec![professional("810000000021", "Marc Petit", "10", "69", "")];
    // Another professional whose address holds the first one's id as a word.
    documents.push(professional("810000000022", "Anne Petit", "10", "69", "810000000021"));
    let (_dir, index) = index_of(&documents);
    let found = index.search(&request("810000000021", &[], 1, 20)).unwrap();
    assert_eq!(ids(&found), ["810000000021", "810000000022"]);
}

#[test]
fn a_name_outranks_the_same_word_elsewhere_and_identifiers_match_exactly() {
    let (_dir, index) = small_index();
    let found = index.search(&request("martin", &[], 1, 20)).unwrap();
    assert_eq!(ids(&found), ["810000000004", "810000000002"]);
    for id in ["810000000003", "10000000003"] {
        let found = index.search(&request(id, &[], 1, 20)).unwrap();
        assert_eq!(ids(&found), ["810000000003"], "{id}");
    }
    let found = index.search(&request("nobody", &[], 1, 20)).unwrap();
    assert_eq!((found.total, found.results.len()), (0, 0));
}

#[test]
fn filters_restrict_and_unknown_filters_are_ignored() {
    let (_dir, index) = small_index();
    let found = index.search(&request("", &[("departement", "69")], 1, 20)).unwrap();
    assert_eq!(found.total, 2);
    let mut got = ids(&found);
    got.sort_unstable();
    assert_eq!(got, ["810000000001", "810000000003"]);
    let found = index
        .search(&request("dupont", &[("profession", "60")], 1, 20))
        .unwrap();
    assert_eq!(ids(&found), ["810000000003"]);
    let found = index
        .search(&request("", &[("profession", "60"), ("departement", "75")], 1, 20))
        .unwrap();
    assert_eq!(ids(&found), ["810000000004"]);
    let found = index.search(&request("", &[("colour", "blue")], 1, 20)).unwrap();
    assert_eq!(found.total, 4);
}

#[test]
fn pages_cut_one_ranking_into_disjoint_windows() {
    let documents: Vec<SearchValues> = (0..25)
        .map(|i| professional(&format!("8100000001{i:02}"), "Paul Bernard", "10", "69", ""))
        .collect();
    let (_dir, index) = index_of(&documents);
    let mut seen = Vec::new();
    for (page, expected) in [(1, 10), (2, 10), (3, 5), (4, 0)] {
        let found = index.search(&request("bernard", &[], page, 10)).unwrap();
        assert_eq!(found.total, 25, "page {page}");
        assert_eq!(found.results.len(), expected, "page {page}");
        seen.extend(ids(&found).into_iter().map(str::to_owned));
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 25, "every hit once");
    // Out-of-range sizes are clamped here (callers validate first)...
    assert_eq!(index.search(&request("", &[], 1, 0)).unwrap().results.len(), 1);
    assert_eq!(index.search(&request("", &[], 1, 500)).unwrap().results.len(), 25);
    assert_eq!(index.search(&request("", &[], 0, 10)).unwrap().results.len(), 10);
    // ...but no request reaches past the hard window.
    let deep = index.search(&request("", &[], 2_000, 100));
    assert!(matches!(deep, Err(IndexError::Window)));
}

#[test]
fn facets_count_the_whole_result_most_frequent_first() {
    let mut documents = vec![
        professional("810000000201", "Jean Moreau", "60", "69", ""),
        professional("810000000202", "Rose Moreau", "60", "13", ""),
        professional("810000000203", "Yves Moreau", "10", "69", ""),
        professional("810000000204", "Eve Petit", "40", "69", ""),
    ];
    documents[2].secteurs = [Cow::Borrowed("1")].into();
    let (_dir, index) = index_of(&documents);
    // One hit per page, facets over all three Moreau.
    let found = index.search(&request("moreau", &[], 1, 1)).unwrap();
    assert_eq!(found.results.len(), 1);
    let counts = |facet: &str| -> Vec<(String, u64)> {
        found.facets[facet].iter().map(|c| (c.value.clone(), c.count)).collect()
    };
    assert_eq!(counts("profession"), [("60".to_owned(), 2), ("10".to_owned(), 1)]);
    assert_eq!(counts("departement"), [("69".to_owned(), 2), ("13".to_owned(), 1)]);
    assert_eq!(counts("secteur"), [("1".to_owned(), 1)]);
    assert!(counts("savoir_faire").is_empty());
    assert_eq!(found.facets.len(), FACETS.len());
    // Filtering narrows the counts too.
    let found = index
        .search(&request("moreau", &[("departement", "69")], 1, 20))
        .unwrap();
    let professions: Vec<(&str, u64)> = found.facets["profession"]
        .iter()
        .map(|c| (c.value.as_str(), c.count))
        .collect();
    assert_eq!(professions, [("10", 1), ("60", 1)], "ties by value");
}

#[test]
fn removed_professionals_are_found_and_filtered() {
    let mut gone = professional("810000000301", "Léa Garnier", "10", "69", "");
    gone.removed = true;
    let (_dir, index) = index_of(&[gone, professional("810000000302", "Léo Garnier", "10", "69", "")]);
    let found = index
        .search(&request("garnier", &[("removed", "true")], 1, 20))
        .unwrap();
    assert_eq!(ids(&found), ["810000000301"]);
    assert!(found.results[0].removed);
    let found = index
        .search(&request("garnier", &[("removed", "false")], 1, 20))
        .unwrap();
    assert_eq!(ids(&found), ["810000000302"]);
    assert_eq!(found.results[0].professions, ["10"]);
    assert_eq!(found.results[0].departements, ["69"]);
    assert_eq!(found.results[0].name, "Léo Garnier");
}

#[test]
fn labels_show_beside_codes_and_filters_take_a_label_typed_in_part() {
    let (_dir, index) = small_index();
    let mut seen = crate::search::labels::Collected::default();
    let details: crate::search::document::DetailsView =
        serde_json::from_str(r#"{"savoir_faire":[],"labels":{"profession":{"10":"Médecin","60":"Infirmier"}}}"#)
            .unwrap();
    seen.note(&details);
    index.set_labels(seen, true).unwrap();

    let found = index.search(&request("", &[("profession", "infirm")], 1, 20)).unwrap();
    let mut got = ids(&found);
    got.sort_unstable();
    assert_eq!(got, ["810000000003", "810000000004"]);
    assert_eq!(found.results[0].profession_labels["60"], "Infirmier");
    let facet = &found.facets["profession"][0];
    assert_eq!(
        (facet.value.as_str(), facet.label.as_deref(), facet.count),
        ("60", Some("Infirmier"), 2)
    );
    // Accents and case aside, and the code itself still works.
    assert_eq!(
        index
            .search(&request("", &[("profession", "MÉDEC")], 1, 20))
            .unwrap()
            .total,
        2
    );
    assert_eq!(
        index
            .search(&request("", &[("profession", "10")], 1, 20))
            .unwrap()
            .total,
        2
    );
    // A label no code has finds nothing, as an unknown code does.
    assert_eq!(
        index
            .search(&request("", &[("profession", "dentiste")], 1, 20))
            .unwrap()
            .total,
        0
    );
    // Départements have no label in the extract.
    assert_eq!(found.facets["departement"][0].label, None);
}
