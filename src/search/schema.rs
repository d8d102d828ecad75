//! The index's schema as one typed struct, the analyzer that folds case and accents, and
//! the names of the filters and facets a search takes. A change here bumps
//! `SCHEMA_VERSION`, so that an index of another version is rebuilt.

use tantivy::schema::{FAST, Field, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{AsciiFoldingFilter, LowerCaser, SimpleTokenizer, TextAnalyzer, TokenStream};

/// Bumped when the schema changes: an index of another version is rebuilt.
/// 2: name prefixes as edge n-grams, facets as fast columns, the name sort key, no
/// positions or frequencies (ranking is by match kind, not BM25).
/// 3: no field norms either.
/// 4: the national id and its bare form no longer repeated among the identifiers.
pub const SCHEMA_VERSION: u32 = 4;
/// The name the analyzer is registered under in every index.
pub(super) const ANALYZER: &str = "folded";

/// The schema's fields, by name once and for all.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    pub national_id: Field,
    pub identifiers: Field,
    pub names: Field,
    /// Every prefix of every name word, up to `MAX_PREFIX_CHARS`: a typed prefix is one
    /// term lookup, not an automaton over the dictionary.
    pub name_prefixes: Field,
    pub display_name: Field,
    /// The folded name, family first, packed in a u64 (`document::name_key`): ties by name.
    pub name_key: Field,
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
}

/// The name field of the sort key, for the collector that reads it.
pub(super) const NAME_KEY: &str = "name_key";

use super::filters::{CATEGORIE, CODE_POSTAL, COMMUNE, DEPARTEMENT, MODE, PROFESSION, REMOVED, SAVOIR_FAIRE, SECTEUR};
pub use super::filters::{FACETS, FILTERS};

pub(super) fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // Documents only: the score is the kind of match (exact, prefix, typo), so neither
    // term frequencies, positions nor field lengths (norms) are read; leaving them out
    // makes the build and the merges lighter.
    let indexed = |tokenizer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false),
        )
    };
    let folded = indexed(ANALYZER);
    // `STRING` without its norms: one term per value, as typed.
    let keyword = indexed("raw");
    let fields = Fields {
        national_id: builder.add_text_field("national_id", keyword.clone() | STORED),
        identifiers: builder.add_text_field("identifiers", keyword.clone()),
        names: builder.add_text_field("names", folded.clone()),
        name_prefixes: builder.add_text_field("name_prefixes", keyword.clone()),
        display_name: builder.add_text_field("display_name", STORED),
        name_key: builder.add_u64_field(NAME_KEY, FAST),
        text: builder.add_text_field("text", folded),
        // Facets are counted from fast columns (`facets.rs`).
        profession: builder.add_text_field(PROFESSION, keyword.clone() | STORED | FAST),
        categorie: builder.add_text_field(CATEGORIE, keyword.clone()),
        savoir_faire: builder.add_text_field(SAVOIR_FAIRE, keyword.clone() | FAST),
        departement: builder.add_text_field(DEPARTEMENT, keyword.clone() | STORED | FAST),
        commune: builder.add_text_field(COMMUNE, keyword.clone()),
        code_postal: builder.add_text_field(CODE_POSTAL, keyword.clone()),
        mode: builder.add_text_field(MODE, keyword.clone()),
        secteur: builder.add_text_field(SECTEUR, keyword.clone() | FAST),
        removed: builder.add_text_field(REMOVED, keyword.clone() | STORED),
    };
    (builder.build(), fields)
}

thread_local! {
    /// One analyzer per thread: building one allocates, and documents fold many words.
    static FOLDER: std::cell::RefCell<TextAnalyzer> = std::cell::RefCell::new(analyzer());
}

/// Hands each word of `text`, as the index sees it (lower case, without accents), to `each`.
pub(super) fn fold_words(text: &str, mut each: impl FnMut(&str)) {
    FOLDER.with_borrow_mut(|analyzer| {
        let mut stream = analyzer.token_stream(text);
        while stream.advance() {
            each(&stream.token().text);
        }
    });
}

pub(super) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

impl Fields {
    pub(super) fn filter(&self, name: &str) -> Option<Field> {
        Some(match name {
            PROFESSION => self.profession,
            CATEGORIE => self.categorie,
            SAVOIR_FAIRE => self.savoir_faire,
            DEPARTEMENT => self.departement,
            COMMUNE => self.commune,
            CODE_POSTAL => self.code_postal,
            MODE => self.mode,
            SECTEUR => self.secteur,
            REMOVED => self.removed,
            _ => return None,
        })
    }
}
