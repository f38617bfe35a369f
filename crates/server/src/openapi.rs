//! The OpenAPI document, generated from the handlers' annotations and the
//! request and response types, served at `/api/v1/openapi.json`.
//!
//! Every route the server answers is in it: the token API under `/api/v1`,
//! and, tagged `public`, the routes that take no token (provider webhooks,
//! form posts, the chat visitor API, health and metrics). The handlers'
//! annotations give their own answers (bodies, the 403s and 409s of their
//! rules); [`Conventions`] then adds the answers every route of a shape
//! gives through the shared extractors, so no annotation can forget them:
//!
//! - a route that takes a token: `401`;
//! - a path parameter: `404` (no such record, or not an id at all);
//! - query parameters: `400` (unknown or malformed);
//! - a JSON body: `400` (malformed), `413`, `415` and `422` (a value of the
//!   wrong type or form, naming the field);
//!
//! and every error answer is a [`Problem`] as `application/problem+json`.

use std::sync::OnceLock;

use axum::{Router, routing::get};
use utoipa::{
    Modify, OpenApi,
    openapi::{
        ContentBuilder, Ref, RefOr, ResponseBuilder,
        path::{Operation, ParameterIn},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use crate::routes::{
    chat, directory, email, events, forms, notifications, ops, outbox, routing, tickets, voice,
    whatsapp, workflows,
};
use crate::{AppState, problem::Problem};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The API's OpenAPI description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard API", description = "Help desk ticket routing. Authenticate with `Authorization: Bearer <token>`; the routes tagged `public` take no token (channel keys and provider signatures instead)."),
    paths(
        directory::list_users, directory::create_user, directory::get_user, directory::update_user, directory::create_token,
        directory::list_teams, directory::create_team, directory::get_team, directory::update_team,
        directory::list_skills, directory::create_skill,
        directory::list_contacts, directory::create_contact, directory::get_contact, directory::update_contact,
        directory::list_channels, directory::create_channel, directory::get_channel, directory::update_channel,
        tickets::create_ticket, tickets::list_tickets, tickets::get_ticket, tickets::update_ticket, tickets::set_owner,
        tickets::add_message, tickets::list_messages, tickets::history,
        routing::explain, routing::availability, routing::set_availability, routing::set_working_hours, routing::add_out_of_office,
        notifications::list, notifications::mark_read, notifications::stream, notifications::user_settings, notifications::set_user_settings,
        notifications::defaults, notifications::set_defaults, notifications::apply_defaults, notifications::email_settings, notifications::set_email_settings,
        workflows::list, workflows::create, workflows::from_template, workflows::show, workflows::update,
        workflows::remove, workflows::enroll, workflows::test, workflows::ticket_workflows, workflows::handoff,
        events::events,
        outbox::list_outbox, outbox::retry_outbox,
        email::inbound_email,
        openapi_json, ops::healthz, ops::readyz, ops::metrics,
        whatsapp::verify_subscription, whatsapp::notification,
        voice::incoming_call, voice::leg_answered, voice::dial_status, voice::recording, voice::recording_status,
        forms::submit, forms::preflight,
        chat::widget, chat::start, chat::start_preflight, chat::list, chat::send, chat::messages_preflight,
        chat::events, chat::events_preflight,
    ),
    components(schemas(
        Problem,
        switchboard_store::View, switchboard_domain::TicketType, switchboard_domain::Priority,
        switchboard_store::OutboxState,
        switchboard_domain::workflows::templates::HandoffTemplate,
        switchboard_domain::workflows::templates::NoFirstReplyTemplate,
        switchboard_domain::workflows::templates::TemplateName,
    )),
    modifiers(&Conventions),
    security(("bearer" = [])),
    tags(
        (name = "public", description = "Routes without a token: provider webhooks (signed), form posts and the chat visitor API (by channel key), health and metrics."),
    ),
)]
pub struct ApiDoc;

/// Adds the bearer scheme, marks public routes as taking no token, and adds
/// the answers the shared extractors give (see the module documentation).
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ]
            .into_iter()
            .flatten()
            {
                conventions(op);
            }
        }
    }
}

fn conventions(op: &mut Operation) {
    let public = op
        .tags
        .as_ref()
        .is_some_and(|t| t.iter().any(|t| t == "public"));
    if public {
        op.security = Some(Vec::new());
    } else {
        add(op, 401);
    }
    let params = op.parameters.as_deref().unwrap_or_default();
    let in_path = params.iter().any(|p| p.parameter_in == ParameterIn::Path);
    let in_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
    if in_path {
        add(op, 404);
    }
    if in_query {
        add(op, 400);
    }
    let json_body = op
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.keys().any(|k| k.ends_with("json")));
    if json_body {
        for status in [400, 413, 415, 422] {
            add(op, status);
        }
    }
    // Error bodies are problems, whatever the annotation said.
    for (status, response) in op.responses.responses.iter_mut() {
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        if let RefOr::T(response) = response
            && let Some(json) = response.content.shift_remove("application/json")
        {
            response.content.insert(PROBLEM_JSON.into(), json);
        }
    }
}

/// Adds a problem answer for `status` unless the operation documents one.
fn add(op: &mut Operation, status: u16) {
    let key = status.to_string();
    if op.responses.responses.contains_key(&key) {
        return;
    }
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let response = ResponseBuilder::new()
        .description(reason)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build();
    op.responses.responses.insert(key, response.into());
}

/// The OpenAPI document route, for `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "public",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
pub(crate) async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    use utoipa::OpenApi;
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    axum::Json(DOC.get_or_init(ApiDoc::openapi).clone())
}
