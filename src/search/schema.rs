//! The index's schema as one typed struct, the analyzer that folds case and accents, and
//! the names of the filters and facets a search takes. A change here bumps
//! `SCHEMA_VERSION`, so that an index of another version is rebuilt.

use tantivy::schema::{FacetOptions, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{AsciiFoldingFilter, LowerCaser, SimpleTokenizer, TextAnalyzer};

/// Bumped when the schema changes: an index of another version is rebuilt.
pub const SCHEMA_VERSION: u32 = 1;
/// The name the analyzer is registered under in every index.
pub(super) const ANALYZER: &str = "folded";

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

/// The filters a search can take, each an exact code.
pub const FILTERS: [&str; 9] = [
    "profession",
    "categorie",
    "savoir_faire",
    "departement",
    "commune",
    "code_postal",
    "mode",
    "secteur",
    "removed",
];

/// Facets counted for every search.
pub const FACETS: [&str; 4] = ["profession", "departement", "savoir_faire", "secteur"];

pub(super) fn schema() -> (Schema, Fields) {
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

pub(super) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

impl Fields {
    pub(super) fn filter(&self, name: &str) -> Option<Field> {
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
