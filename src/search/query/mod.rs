//! Searching the index: what a user typed becomes a forgiving query (identifiers exactly,
//! every name word exactly, as a prefix or, when nothing matches so, with a typo), filters
//! restrict it, and one page of hits comes back, ranked by the kind of match, with the
//! result's exact count and, when asked, its facet counts. Never fails on what was typed.

use std::ops::Bound;

use tantivy::Searcher;
use tantivy::collector::sort_key::{SortBySimilarityScore, SortByStaticFastValue};
use tantivy::collector::{Collector, Count, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, DisjunctionMaxQuery, FuzzyTermQuery, InvertedIndexRangeQuery, Occur,
    Query, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{DocAddress, Order, TantivyDocument, Term};

use super::document::MAX_PREFIX_CHARS;
use super::facets::{self, FacetCounter};
use super::filters::PROFESSION;
use super::index::{IndexError, SearchIndex};
use super::labels::Labels;
use super::schema::{NAME_KEY, fold_words};
use tiers::{Typos, Ways};

mod tiers;

/// Words longer than this are matched exactly and as a prefix, never with typos: the typo
/// automaton grows with the word, and no name is this long.
const MAX_FUZZY_CHARS: usize = 24;
/// The deepest result any search may reach, whatever its caller checked: the collector
/// holds `offset + limit` hits in memory.
pub(super) const HARD_WINDOW: usize = 100_000;
/// A prefix matched through the dictionary (other words than names, and name prefixes
/// longer than the indexed n-grams) reads at most this many terms: a short prefix of a
/// common word costs a bounded union, not the whole dictionary's postings.
const PREFIX_TERMS: u64 = 64;
/// Other words than names are matched as prefixes from this length on: shorter ones would
/// match most of the directory for little use.
const MIN_TEXT_PREFIX_CHARS: usize = 3;

/// The score of each kind of match; a hit's score is the sum over the query's words of its
/// best match, so hits rank by how many words matched in names, then by fewest typos, then
/// by fewest prefixes (all words exact first): per word, 10,000 for a name, 100 unless a
/// typo, 1 if exact. With at most 32 words each level's sum stays under the next level's
/// unit (32 × 101 < 10,000, 32 × 1 < 100) and every sum is an integer an f32 holds exactly.
/// An identifier outranks every word match (32 × 10,101 < 1,000,000). Typos only count
/// among hits that all have one (`SearchIndex::search`).
mod score {
    pub const IDENTIFIER: f32 = 1_000_000.0;
    pub const NAME_EXACT: f32 = 10_101.0;
    pub const NAME_PREFIX: f32 = 10_100.0;
    pub const NAME_TYPO: f32 = 10_000.0;
    pub const TEXT_EXACT: f32 = 101.0;
    pub const TEXT_PREFIX: f32 = 100.0;
}

/// Words of the query as the index sees them (lower case, without accents).
pub(super) fn query_words(query: &str) -> Vec<String> {
    let mut words = Vec::new();
    fold_words(query, |word| words.push(word.to_owned()));
    words
}

fn constant(query: Box<dyn Query>, score: f32) -> Box<dyn Query> {
    Box::new(ConstScoreQuery::new(query, score))
}

fn term(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::Basic,
    ))
}

/// Terms of `field` that start with `prefix`, at most `PREFIX_TERMS` of them (in order).
fn prefix_range(field: Field, prefix: &str) -> Box<dyn Query> {
    // No term that starts with the prefix sorts after it followed by the last character.
    let mut query = InvertedIndexRangeQuery::new(
        Bound::Included(Term::from_field_text(field, prefix)),
        Bound::Excluded(Term::from_field_text(field, &format!("{prefix}{}", char::MAX))),
    );
    query.limit(PREFIX_TERMS);
    Box::new(query)
}

/// Hits ranked by score, ties by name (then by document).
type Ranked = Vec<((f32, Option<u64>), DocAddress)>;

/// One page of a result, its exact count, and its facet counts when asked.
struct Page {
    hits: Ranked,
    total: usize,
    counts: Option<facets::Counts>,
}

impl SearchIndex {
    /// Runs a search; never fails on what the user typed. The result is one set whatever
    /// the options (facets or not, any page): the hits whose every word matches exactly or
    /// as a prefix, or, only when there is none, those that need a typo. So a typeahead and
    /// the settled query count the same hits, and `dupont jea` is not swollen by every
    /// DUPOND and DUPONS of the country.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResponse, IndexError> {
        let searcher = self.reader.searcher();
        // Callers check `SearchRequest::validate`; this holds even for one that did not.
        let per_page = request.per_page.clamp(1, 100);
        let offset = request.page.saturating_sub(1).saturating_mul(per_page);
        if offset.saturating_add(per_page) > HARD_WINDOW {
            return Err(IndexError::Window);
        }
        let top = || {
            TopDocs::with_limit(per_page).and_offset(offset).order_by((
                (SortBySimilarityScore, Order::Desc),
                (SortByStaticFastValue::<u64>::for_field(NAME_KEY), Order::Asc),
            ))
        };
        let exact = self.query(request, Typos::Refused);
        let mut page = self.page(&searcher, request, exact.as_ref(), Some(offset + per_page), top)?;
        if page.total == 0 && forgives_typos(&request.q) {
            let forgiving = self.query(request, Typos::Forgiven);
            page = self.page(&searcher, request, forgiving.as_ref(), None, top)?;
        }
        let labels = self.labels();
        let mut results = Vec::with_capacity(page.hits.len());
        for ((score, _), address) in page.hits {
            let document: TantivyDocument = searcher.doc(address)?;
            results.push(self.hit(&document, score, &labels));
        }
        Ok(SearchResponse {
            total: page.total,
            results,
            facets: page
                .counts
                .map(|counts| facets::ranked(counts, &labels))
                .unwrap_or_default(),
        })
    }

    /// The page (cut by `top`) of `query`'s result, its count and its facets when asked.
    /// With `tier_window` (the page's end), a tier of the result that holds the whole page
    /// ranks it alone (`tiers`): the result is then counted without being ranked, which
    /// scores nothing (tantivy walks the matches without scoring them for `Count`, and for
    /// `FacetCounter`).
    fn page<C>(
        &self,
        searcher: &Searcher,
        request: &SearchRequest,
        query: &dyn Query,
        tier_window: Option<usize>,
        top: impl Fn() -> C,
    ) -> Result<Page, IndexError>
    where
        C: Collector<Fruit = Ranked>,
    {
        let tier = match tier_window {
            Some(window) => self.tier_hits(searcher, request, window, &top)?,
            None => None,
        };
        Ok(match (tier, request.facets) {
            (Some(hits), false) => Page {
                hits,
                total: searcher.search(query, &Count)?,
                counts: None,
            },
            (Some(hits), true) => {
                let (total, counts) = searcher.search(query, &(Count, FacetCounter))?;
                Page {
                    hits,
                    total,
                    counts: Some(counts),
                }
            }
            (None, facets) => {
                let (hits, total, counts) = searcher.search(query, &(top(), Count, facets.then_some(FacetCounter)))?;
                Page { hits, total, counts }
            }
        })
    }

    /// What the user typed (if anything), typos forgiven or not, and every known filter,
    /// all required.
    fn query(&self, request: &SearchRequest, typos: Typos) -> Box<dyn Query> {
        let text = request.q.trim();
        let text = (!text.is_empty()).then(|| self.text_query(text, typos));
        self.filtered(request, text)
    }

    /// `text` (if any) and every known filter of the request, all required. A filter takes
    /// a code, or a label typed in part (any code whose label holds it).
    fn filtered(&self, request: &SearchRequest, text: Option<Box<dyn Query>>) -> Box<dyn Query> {
        let labels = self.labels();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        clauses.extend(text.map(|text| (Occur::Must, text)));
        for (name, value) in &request.filters {
            if let Some(field) = self.fields.filter(name) {
                let codes: Vec<Box<dyn Query>> =
                    labels.codes(name, value).iter().map(|code| term(field, code)).collect();
                // Filters restrict, they do not rank.
                clauses.push((Occur::Must, constant(Box::new(BooleanQuery::union(codes)), 0.0)));
            }
        }
        if clauses.is_empty() {
            Box::new(AllQuery)
        } else {
            Box::new(BooleanQuery::new(clauses))
        }
    }

    /// One result as the API shows it, from the document's stored fields.
    fn hit(&self, document: &TantivyDocument, score: f32, labels: &Labels) -> Hit {
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
        let professions: Vec<String> = all(f.profession);
        let profession_labels = professions
            .iter()
            .filter_map(|code| Some((code.clone(), labels.label(PROFESSION, code)?.to_owned())))
            .collect();
        Hit {
            national_id: text(f.national_id),
            name: text(f.display_name),
            professions,
            profession_labels,
            departements: all(f.departement),
            removed: text(f.removed) == "true",
            score,
        }
    }

    /// An exact identifier, or every word, each matching at best in names exactly, as a
    /// prefix (typeahead, any word: `lefe hel`) or, if `typos` forgives them, with typos
    /// (one edit up to 6 letters, two beyond), else in the other words exactly or as a
    /// prefix.
    fn text_query(&self, text: &str, typos: Typos) -> Box<dyn Query> {
        let f = self.fields;
        let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut candidates = vec![text.to_owned(), text.to_lowercase()];
        if let Ok(id) = crate::national_id::NationalId::parse(text) {
            candidates.push(id.to_string());
        }
        candidates.sort_unstable();
        candidates.dedup();
        for candidate in candidates {
            let either = BooleanQuery::union(vec![term(f.national_id, &candidate), term(f.identifiers, &candidate)]);
            alternatives.push((Occur::Should, constant(Box::new(either), score::IDENTIFIER)));
        }
        let words: Vec<(Occur, Box<dyn Query>)> = query_words(text)
            .iter()
            .map(|word| (Occur::Must, self.word_query(word, Ways::Any, typos)))
            .collect();
        if !words.is_empty() {
            alternatives.push((Occur::Should, Box::new(BooleanQuery::new(words))));
        }
        Box::new(BooleanQuery::new(alternatives))
    }

    /// One word's ways to match (all of them, or only those in names: `Ways`; typos or
    /// not), scored by the best one (`score`).
    fn word_query(&self, word: &str, ways: Ways, typos: Typos) -> Box<dyn Query> {
        let f = self.fields;
        let chars = word.chars().count();
        let exact = constant(term(f.names, word), score::NAME_EXACT);
        if ways == Ways::ExactName {
            return exact;
        }
        let distance = match typos {
            Typos::Forgiven => typo_distance(word),
            Typos::Refused => 0,
        };
        let name_prefix = if chars <= MAX_PREFIX_CHARS {
            term(f.name_prefixes, word)
        } else {
            prefix_range(f.names, word)
        };
        let mut alternatives = vec![exact, constant(name_prefix, score::NAME_PREFIX)];
        if distance > 0 {
            let typo = FuzzyTermQuery::new(Term::from_field_text(f.names, word), distance, true);
            alternatives.push(constant(Box::new(typo), score::NAME_TYPO));
        }
        if ways == Ways::Any {
            alternatives.push(constant(term(f.text, word), score::TEXT_EXACT));
            if chars >= MIN_TEXT_PREFIX_CHARS {
                alternatives.push(constant(prefix_range(f.text, word), score::TEXT_PREFIX));
            }
        }
        Box::new(DisjunctionMaxQuery::new(alternatives))
    }
}

/// The edits forgiven in a word of a name. Typos are forgiven in names, where people make
/// them; digits are identifiers, codes or postcodes, matched exactly (a fuzzy automaton on
/// them costs much and finds nothing useful).
fn typo_distance(word: &str) -> u8 {
    match word.chars().count() {
        _ if word.chars().any(|c| c.is_ascii_digit()) => 0,
        0..=3 => 0,
        n if n > MAX_FUZZY_CHARS => 0,
        4..=6 => 1,
        _ => 2,
    }
}

/// Whether forgiving typos may find more than refusing them: a word of `q` takes a typo.
fn forgives_typos(q: &str) -> bool {
    query_words(q).iter().any(|word| typo_distance(word) > 0)
}

/// A search as the API and the command line take it.
#[derive(Debug, Clone, serde::Deserialize)]
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
    /// Whether to count the facets of the whole result: a typeahead skips them, and asks
    /// once the query settles.
    #[serde(default = "with_facets")]
    pub facets: bool,
}

fn with_facets() -> bool {
    true
}

impl Default for SearchRequest {
    fn default() -> SearchRequest {
        SearchRequest {
            q: String::new(),
            filters: Vec::new(),
            page: first_page(),
            per_page: default_per_page(),
            facets: with_facets(),
        }
    }
}

fn first_page() -> usize {
    1
}

fn default_per_page() -> usize {
    20
}

use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    pub national_id: String,
    pub name: String,
    pub professions: Vec<String>,
    /// Profession code → its label in the extract, for the codes that have one.
    pub profession_labels: BTreeMap<String, String>,
    pub departements: Vec<String>,
    pub removed: bool,
    pub score: f32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FacetCount {
    pub value: String,
    /// The code's label in the extract, when it has one.
    pub label: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchResponse {
    /// How many hits in all, whatever the page and whether facets were asked.
    pub total: usize,
    pub results: Vec<Hit>,
    /// Empty when the request asked for no facets.
    pub facets: HashMap<String, Vec<FacetCount>>,
}

#[cfg(test)]
mod tests;
