//! The OpenAPI document, generated from the handlers' annotations and the
//! request and response types, served at `/api/v1/openapi.json`.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::routes::{directory, email, events, outbox, routing, tickets};

/// The API's OpenAPI description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard API", description = "Help desk ticket routing. Authenticate with `Authorization: Bearer <token>`."),
    paths(
        directory::list_users, directory::create_user, directory::get_user, directory::update_user, directory::create_token,
        directory::list_teams, directory::create_team, directory::get_team, directory::update_team,
        directory::list_skills, directory::create_skill,
        directory::list_contacts, directory::create_contact, directory::get_contact, directory::update_contact,
        directory::list_channels, directory::create_channel, directory::get_channel, directory::update_channel,
        tickets::create_ticket, tickets::list_tickets, tickets::get_ticket, tickets::update_ticket, tickets::set_owner,
        tickets::add_message, tickets::list_messages, tickets::history,
        routing::explain, routing::availability, routing::set_availability, routing::set_working_hours, routing::add_out_of_office, routing::notifications,
        events::events,
        outbox::list_outbox, outbox::retry_outbox,
        email::inbound_email,
    ),
    components(schemas(crate::problem::Problem)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
