//! Searching the index: what a user typed becomes a forgiving query (identifiers exactly,
//! names with typos, the last word as a prefix), filters restrict it, and one page of hits
//! comes back with the facet counts of the whole result. Never fails on what was typed.

use std::collections::HashMap;

use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::tokenizer::TokenStream;
use tantivy::{TantivyDocument, Term};

use super::filters::FACETS;
use super::index::{IndexError, SearchIndex};
use super::schema::analyzer;

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
        let query = self.query(request);
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
            results.push(self.hit(&document, score));
        }
        Ok(SearchResponse {
            total,
            results,
            facets: counted(&facet_counts),
        })
    }

    /// What the user typed (if anything) and every known filter, all required.
    fn query(&self, request: &SearchRequest) -> Box<dyn Query> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let text = request.q.trim();
        if !text.is_empty() {
            clauses.push((Occur::Must, self.text_query(text)));
        }
        for (name, value) in &request.filters {
            if let Some(field) = self.fields.filter(name) {
                clauses.push((
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, value),
                        IndexRecordOption::Basic,
                    )),
                ));
            }
        }
        if clauses.is_empty() {
            Box::new(AllQuery)
        } else {
            Box::new(BooleanQuery::new(clauses))
        }
    }

    /// One result as the API shows it, from the document's stored fields.
    fn hit(&self, document: &TantivyDocument, score: f32) -> Hit {
        let f = self.fields;
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
        Hit {
            national_id: text(f.national_id),
            name: text(f.display_name),
            professions: all(f.profession),
            departements: all(f.departement),
            removed: text(f.removed) == "true",
            score,
        }
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

/// The 20 most frequent values of each facet over the whole result, ties by value.
fn counted(facet_counts: &tantivy::collector::FacetCounts) -> HashMap<String, Vec<FacetCount>> {
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
    counted
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
mod tests;
