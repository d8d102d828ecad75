//! Searching the index: what a user typed becomes a forgiving query (identifiers exactly,
//! names with typos, the last word as a prefix), filters restrict it, and one page of hits
//! comes back with the facet counts of the whole result. Never fails on what was typed.

use std::collections::HashMap;

use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::tokenizer::TokenStream;
use tantivy::{TantivyDocument, Term};

use super::index::{IndexError, SearchIndex};
use super::schema::{FACETS, analyzer};

/// Words longer than this are matched exactly and as a prefix, never with typos: the typo
/// automaton grows with the word, and no name is this long.
const MAX_FUZZY_CHARS: usize = 24;
/// The deepest result any search may reach, whatever its caller checked: the collector
/// holds `offset + limit` hits in memory.
pub(super) const HARD_WINDOW: usize = 100_000;

/// Words of the query as the index sees them (lower case, without accents).
pub(super) fn query_words(query: &str) -> Vec<String> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(query);
    let mut words = Vec::new();
    while stream.advance() {
        words.push(stream.token().text.clone());
    }
    words
}

impl SearchIndex {
    /// Runs a search; never fails on what the user typed.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResponse, IndexError> {
        let f = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let text = request.q.trim();
        if !text.is_empty() {
            clauses.push((Occur::Must, self.text_query(text)));
        }
        for (name, value) in &request.filters {
            if let Some(field) = f.filter(name) {
                clauses.push((
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, value),
                        IndexRecordOption::Basic,
                    )),
                ));
            }
        }
        let query: Box<dyn Query> = if clauses.is_empty() {
            Box::new(AllQuery)
        } else {
            Box::new(BooleanQuery::new(clauses))
        };
        let searcher = self.reader.searcher();
        let mut facets = FacetCollector::for_field("facets");
        for facet in FACETS {
            facets.add_facet(tantivy::schema::Facet::from_path([facet]));
        }
        // Callers check `SearchRequest::validate`; this holds even for one that did not.
        let per_page = request.per_page.clamp(1, 100);
        let offset = request.page.saturating_sub(1).saturating_mul(per_page);
        if offset.saturating_add(per_page) > HARD_WINDOW {
            return Err(IndexError::Window);
        }
        let top = TopDocs::with_limit(per_page).and_offset(offset).order_by_score();
        let (hits, total, facet_counts) = searcher.search(&query, &(top, Count, facets))?;
        let mut results = Vec::with_capacity(hits.len());
        for (score, address) in hits {
            let document: TantivyDocument = searcher.doc(address)?;
            let text = |field: Field| {
                document
                    .get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let all = |field: Field| {
                document
                    .get_all(field)
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            };
            results.push(Hit {
                national_id: text(f.national_id),
                name: text(f.display_name),
                professions: all(f.profession),
                departements: all(f.departement),
                removed: text(f.removed) == "true",
                score,
            });
        }
        let mut counted = HashMap::new();
        for facet in FACETS {
            let root = tantivy::schema::Facet::from_path([facet]);
            let mut values: Vec<FacetCount> = facet_counts
                .get(root.clone())
                .map(|(value, count)| FacetCount {
                    value: value.to_path().last().map(|s| s.to_string()).unwrap_or_default(),
                    count,
                })
                .collect();
            values.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
            values.truncate(20);
            counted.insert(facet.to_owned(), values);
        }
        Ok(SearchResponse {
            total,
            results,
            facets: counted,
        })
    }

    /// Identifiers exactly (first), then names and the rest, each word matching exactly,
    /// in names with typos (one edit up to 6 letters, two beyond), and the last word as a
    /// prefix (typeahead).
    fn text_query(&self, text: &str) -> Box<dyn Query> {
        let f = self.fields;
        let mut identifier_terms: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut candidates = vec![text.to_owned(), text.to_lowercase()];
        if let Ok(id) = crate::national_id::NationalId::parse(text) {
            candidates.push(id.to_string());
        }
        for candidate in candidates {
            let term = TermQuery::new(
                Term::from_field_text(f.identifiers, &candidate),
                IndexRecordOption::Basic,
            );
            identifier_terms.push((Occur::Should, Box::new(BoostQuery::new(Box::new(term), 100.0))));
        }
        let words = query_words(text);
        let mut word_clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (i, word) in words.iter().enumerate() {
            let last = i + 1 == words.len();
            // Typos are forgiven in names, where people make them; digits are identifiers,
            // codes or postcodes, matched exactly (a fuzzy automaton on them costs much and
            // finds nothing useful).
            let distance = match word.chars().count() {
                _ if word.chars().any(|c| c.is_ascii_digit()) => 0,
                0..=3 => 0,
                n if n > MAX_FUZZY_CHARS => 0,
                4..=6 => 1,
                _ => 2,
            };
            let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for (field, boost) in [(f.names, 3.0), (f.text, 1.0)] {
                let term = Term::from_field_text(field, word);
                alternatives.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(
                        Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)),
                        boost * 2.0,
                    )),
                ));
                if distance > 0 && field == f.names {
                    alternatives.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(
                            Box::new(FuzzyTermQuery::new(term.clone(), distance, true)),
                            boost,
                        )),
                    ));
                }
                if last && word.chars().count() >= 2 {
                    alternatives.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(
                            Box::new(FuzzyTermQuery::new_prefix(term, 0, true)),
                            boost,
                        )),
                    ));
                }
            }
            word_clauses.push((Occur::Must, Box::new(BooleanQuery::new(alternatives))));
        }
        if !word_clauses.is_empty() {
            identifier_terms.push((Occur::Should, Box::new(BooleanQuery::new(word_clauses))));
        }
        Box::new(BooleanQuery::new(identifier_terms))
    }
}

/// A search as the API and the command line take it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SearchRequest {
    #[serde(default)]
    pub q: String,
    /// Filter name (one of `FILTERS`) → exact code.
    #[serde(default)]
    pub filters: Vec<(String, String)>,
    #[serde(default = "first_page")]
    pub page: usize,
    #[serde(default = "default_per_page")]
    pub per_page: usize,
}

fn first_page() -> usize {
    1
}

fn default_per_page() -> usize {
    20
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    pub national_id: String,
    pub name: String,
    pub professions: Vec<String>,
    pub departements: Vec<String>,
    pub removed: bool,
    pub score: f32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchResponse {
    pub total: usize,
    pub results: Vec<Hit>,
    pub facets: HashMap<String, Vec<FacetCount>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::document::SearchValues;

    /// One professional: national id, name, profession, département; `extra` words in text.
    fn professional(id: &str, name: &str, profession: &str, departement: &str, extra: &str) -> SearchValues {
        SearchValues {
            national_id: id.to_owned(),
            identifiers: [id.to_owned(), id[1..].to_owned()].into(),
            names: vec![name.to_owned()],
            display_name: name.to_owned(),
            text: vec![extra.to_owned()],
            professions: [profession.to_owned()].into(),
            departements: [departement.to_owned()].into(),
            ..SearchValues::default()
        }
    }

    fn index_of(documents: &[SearchValues]) -> (tempfile::TempDir, SearchIndex) {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::create(&dir.path().join("index")).unwrap();
        index.add(documents, false).unwrap();
        index.commit(1).unwrap();
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
    fn names_forgive_accents_case_and_typos_exact_first() {
        let (_dir, index) = small_index();
        let found = index.search(&request("HELENE lefevre", &[], 1, 20)).unwrap();
        assert_eq!(ids(&found), ["810000000001"]);
        // One letter off: both Duponts, the exact spelling first.
        let found = index.search(&request("dupont", &[], 1, 20)).unwrap();
        assert_eq!(ids(&found), ["810000000002", "810000000003"]);
        // The last word is a prefix (typeahead).
        let found = index.search(&request("lef", &[], 1, 20)).unwrap();
        assert_eq!(ids(&found), ["810000000001"]);
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
        documents[2].secteurs = ["1".to_owned()].into();
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
}
