//! The tantivy index of the published generation: one typed schema, built in full from
//! Postgres into a fresh directory (then swapped in), or updated from a generation's
//! changes in one commit (delete + add). Blocking: callers run it off the async workers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    FacetOptions, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{AsciiFoldingFilter, LowerCaser, SimpleTokenizer, TextAnalyzer, TokenStream};
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term, doc};

use super::document::SearchValues;

/// Bumped when the schema changes: an index of another version is rebuilt.
pub const SCHEMA_VERSION: u32 = 1;
const ANALYZER: &str = "folded";

/// Words longer than this are matched exactly and as a prefix, never with typos: the typo
/// automaton grows with the word, and no name is this long.
const MAX_FUZZY_CHARS: usize = 24;
/// The deepest result any search may reach, whatever its caller checked: the collector
/// holds `offset + limit` hits in memory.
const HARD_WINDOW: usize = 100_000;

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

/// The schema's fields, by name once and for all.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    pub national_id: Field,
    pub identifiers: Field,
    pub names: Field,
    pub display_name: Field,
    pub text: Field,
    pub profession: Field,
    pub categorie: Field,
    pub savoir_faire: Field,
    pub departement: Field,
    pub commune: Field,
    pub code_postal: Field,
    pub mode: Field,
    pub secteur: Field,
    pub removed: Field,
    pub facets: Field,
}

pub use super::filters::{FACETS, FILTERS};
use crate::store::RunId;

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let folded = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        national_id: builder.add_text_field("national_id", STRING | STORED),
        identifiers: builder.add_text_field("identifiers", STRING),
        names: builder.add_text_field("names", folded.clone()),
        display_name: builder.add_text_field("display_name", STORED),
        text: builder.add_text_field("text", folded),
        profession: builder.add_text_field("profession", STRING | STORED),
        categorie: builder.add_text_field("categorie", STRING),
        savoir_faire: builder.add_text_field("savoir_faire", STRING),
        departement: builder.add_text_field("departement", STRING | STORED),
        commune: builder.add_text_field("commune", STRING),
        code_postal: builder.add_text_field("code_postal", STRING),
        mode: builder.add_text_field("mode", STRING),
        secteur: builder.add_text_field("secteur", STRING),
        removed: builder.add_text_field("removed", STRING | STORED),
        facets: builder.add_facet_field("facets", FacetOptions::default()),
    };
    (builder.build(), fields)
}

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

impl Fields {
    fn filter(&self, name: &str) -> Option<Field> {
        Some(match name {
            "profession" => self.profession,
            "categorie" => self.categorie,
            "savoir_faire" => self.savoir_faire,
            "departement" => self.departement,
            "commune" => self.commune,
            "code_postal" => self.code_postal,
            "mode" => self.mode,
            "secteur" => self.secteur,
            "removed" => self.removed,
            _ => return None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("search index directory {0}: {1}")]
    Directory(String, String),
    #[error("a search may not reach past result {HARD_WINDOW}")]
    Window,
}

/// The index writer's memory budget (tantivy shares it among its indexing threads): the
/// server's memory beside the snapshot while a full build runs; a smaller budget only means
/// more, smaller segments to merge.
const WRITER_HEAP_BYTES: usize = 50_000_000;

/// An open index, its reader, and (once something is written) its writer.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: std::sync::Mutex<Option<tantivy::IndexWriter>>,
    pub fields: Fields,
    pub path: PathBuf,
}

/// What a commit records: the schema version and the generation indexed.
fn payload(generation: i64) -> String {
    format!("{SCHEMA_VERSION}:{generation}")
}

impl SearchIndex {
    /// Creates an empty index in `path` (a new directory).
    pub fn create(path: &Path) -> Result<SearchIndex, IndexError> {
        std::fs::create_dir_all(path).map_err(|e| IndexError::Directory(path.display().to_string(), e.to_string()))?;
        let (schema, _) = schema();
        let index = Index::create_in_dir(path, schema)?;
        SearchIndex::wrap(index, path)
    }

    /// Opens the index in `path` if it exists and has the current schema.
    pub fn open(path: &Path) -> Option<SearchIndex> {
        let index = Index::open_in_dir(path).ok()?;
        let search = SearchIndex::wrap(index, path).ok()?;
        search
            .generation_with_version()
            .filter(|(v, _)| *v == SCHEMA_VERSION)
            .map(|_| search)
    }

    fn wrap(index: Index, path: &Path) -> Result<SearchIndex, IndexError> {
        index.tokenizers().register(ANALYZER, analyzer());
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let (_, fields) = schema();
        Ok(SearchIndex {
            index,
            reader,
            writer: std::sync::Mutex::new(None),
            fields,
            path: path.to_owned(),
        })
    }

    fn generation_with_version(&self) -> Option<(u32, i64)> {
        let metas = self.index.load_metas().ok()?;
        let (version, generation) = metas
            .payload?
            .split_once(':')
            .map(|(v, g)| (v.parse().ok(), g.parse().ok()))?;
        Some((version?, generation?))
    }

    /// The generation this index holds.
    pub fn generation(&self) -> Option<RunId> {
        self.generation_with_version().map(|(_, g)| RunId(g))
    }

    /// Runs `work` with the index's writer, opened on first use (a reader-only process,
    /// like the command line beside a server, never takes the writer's lock).
    fn with_writer<T>(
        &self,
        work: impl FnOnce(&mut tantivy::IndexWriter) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        let mut guard = self
            .writer
            .lock()
            .map_err(|_| IndexError::Directory(self.path.display().to_string(), "writer poisoned".into()))?;
        let writer = match guard.as_mut() {
            Some(writer) => writer,
            None => guard.insert(self.index.writer(WRITER_HEAP_BYTES)?),
        };
        work(writer)
    }

    /// Adds these professionals' documents; with `replace`, first deletes what the index
    /// holds for them. Visible at the next commit. A full build into a fresh index does not
    /// replace: each delete costs a query weight at commit (about 600 bytes), which at
    /// national scale is a gigabyte for nothing.
    pub fn add(&self, documents: &[SearchValues], replace: bool) -> Result<(), IndexError> {
        self.with_writer(|writer| {
            for values in documents {
                if replace {
                    writer.delete_term(Term::from_field_text(self.fields.national_id, &values.national_id));
                }
                writer.add_document(self.document(values))?;
            }
            Ok(())
        })
    }

    /// Makes what was added visible, recording the generation it brings the index to.
    pub fn commit(&self, generation: RunId) -> Result<(), IndexError> {
        self.with_writer(|writer| {
            let mut commit = writer.prepare_commit()?;
            commit.set_payload(&payload(generation.0));
            commit.commit()?;
            Ok(())
        })?;
        self.reader.reload()?;
        Ok(())
    }

    fn document(&self, v: &SearchValues) -> TantivyDocument {
        let f = &self.fields;
        let mut document = doc!(
            f.national_id => v.national_id.clone(),
            f.display_name => v.display_name.clone(),
            f.removed => if v.removed { "true" } else { "false" },
        );
        for (field, values) in [
            (f.identifiers, &v.identifiers),
            (f.profession, &v.professions),
            (f.categorie, &v.categories),
            (f.savoir_faire, &v.savoir_faire),
            (f.departement, &v.departements),
            (f.commune, &v.communes),
            (f.code_postal, &v.postcodes),
            (f.mode, &v.modes),
            (f.secteur, &v.secteurs),
        ] {
            for value in values {
                document.add_text(field, value);
            }
        }
        for name in &v.names {
            document.add_text(f.names, name);
        }
        for text in &v.text {
            document.add_text(f.text, text);
        }
        for (facet, values) in [
            ("profession", &v.professions),
            ("departement", &v.departements),
            ("savoir_faire", &v.savoir_faire),
            ("secteur", &v.secteurs),
        ] {
            for value in values {
                document.add_facet(f.facets, tantivy::schema::Facet::from_path([facet, value.as_str()]));
            }
        }
        document
    }

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
