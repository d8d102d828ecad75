//! The OpenAPI description, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "annuaire", description = "Sectoral claims of French health professionals, from the Annuaire Santé."),
    paths(
        super::claims::get_claims,
        super::claims::get_claims_by_query,
        super::hooks::hydra_token,
        super::hooks::okta_token,
        super::entra::token,
        super::ops::healthz,
        super::ops::readyz,
        super::ops::metrics,
        super::ops::jwks,
        super::admin::list_jobs,
        super::admin::run_job,
        super::admin::list_imports,
        super::admin::approve_import,
        super::admin::import_diff,
        super::feed::changes,
        super::export::export,
        super::search::search,
        super::search::record,
        super::history::professional_history,
    ),
    components(schemas(super::error::Problem, super::error::Removal)),
    modifiers(&BearerKey)
)]
pub struct ApiDoc;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key from `annuaire keys create`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "entra",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("Entra ID's own token (RS256, its published keys, the configured issuer and audience, azp or appid of Entra's authentication events service)"))
                    .build(),
            ),
        );
    }
}
