//! The names of the search filters and facets, once: the index's field names, the API's
//! query parameters and the facet paths all come from this list.

pub const PROFESSION: &str = "profession";
pub const CATEGORIE: &str = "categorie";
pub const SAVOIR_FAIRE: &str = "savoir_faire";
pub const DEPARTEMENT: &str = "departement";
pub const COMMUNE: &str = "commune";
pub const CODE_POSTAL: &str = "code_postal";
pub const MODE: &str = "mode";
pub const SECTEUR: &str = "secteur";
/// `true` or `false`: whether the professional was removed from the directory.
pub const REMOVED: &str = "removed";

/// The filters a search can take, each an exact code.
pub const FILTERS: [&str; 9] = [
    PROFESSION,
    CATEGORIE,
    SAVOIR_FAIRE,
    DEPARTEMENT,
    COMMUNE,
    CODE_POSTAL,
    MODE,
    SECTEUR,
    REMOVED,
];

/// Facets counted for every search (each one of the filters).
pub const FACETS: [&str; 4] = [PROFESSION, DEPARTEMENT, SAVOIR_FAIRE, SECTEUR];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_facet_is_a_filter() {
        assert!(FACETS.iter().all(|facet| FILTERS.contains(facet)));
    }
}
