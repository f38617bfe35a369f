//! Users, API tokens, teams, skills, contacts and channels. Everyone in the
//! account can read them; only admins change users, teams, skills and
//! channels; agents may also create and edit contacts.

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_domain::{input::*, *};
use switchboard_store::{Page, TokenInfo};

use crate::{
    AppState,
    auth::{self, Caller},
    extract::{Json, Path, Query},
    problem::ApiError,
};

type Result<T> = std::result::Result<T, ApiError>;
type Reply<T> = Result<axum::Json<T>>;
type Created<T> = Result<(StatusCode, axum::Json<T>)>;

/// The routes of this area.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user).patch(update_user))
        .route("/users/{id}/tokens", post(create_token))
        .route("/teams", get(list_teams).post(create_team))
        .route("/teams/{id}", get(get_team).patch(update_team))
        .route("/skills", get(list_skills).post(create_skill))
        .route("/contacts", get(list_contacts).post(create_contact))
        .route("/contacts/{id}", get(get_contact).patch(update_contact))
        .route("/channels", get(list_channels).post(create_channel))
        .route("/channels/{id}", get(get_channel).patch(update_channel))
}

fn all<T>(items: Vec<T>) -> axum::Json<Page<T>> {
    axum::Json(Page {
        items,
        next_cursor: None,
    })
}

fn created<T>(value: T) -> Created<T> {
    Ok((StatusCode::CREATED, axum::Json(value)))
}

/// Cursor pagination parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// Checks a page size.
pub fn page_limit(limit: Option<u32>) -> Result<u32> {
    match limit.unwrap_or(50) {
        n @ 1..=200 => Ok(n),
        _ => Err(ApiError::BadRequest {
            field: Some("limit".into()),
            detail: "limit is 1 to 200".into(),
        }),
    }
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = Page<User>)))]
pub(crate) async fn list_users(State(s): State<AppState>, Caller(me): Caller) -> Reply<Page<User>> {
    Ok(all(s.store.list_users(me.account_id).await?))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = User), (status = 403, description = "The caller's role does not allow this", body = crate::problem::Problem), (status = 409, description = "Clashes with existing data (the field is named)", body = crate::problem::Problem)))]
pub(crate) async fn create_user(
    State(s): State<AppState>,
    caller: Caller,
    Json(input): Json<NewUser>,
) -> Created<User> {
    caller.require_can_manage(input.role)?;
    created(s.store.create_user(caller.0.account_id, input).await?)
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path, description = "Its id")),
    responses((status = 200, body = User)))]
pub(crate) async fn get_user(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<UserId>,
) -> Reply<User> {
    Ok(axum::Json(s.store.get_user(me.account_id, id).await?))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path, description = "Its id")), request_body = UserPatch,
    responses((status = 200, body = User), (status = 403, description = "The caller's role does not allow this", body = crate::problem::Problem), (status = 409, description = "Clashes with existing data (the field is named)", body = crate::problem::Problem)))]
pub(crate) async fn update_user(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
    Json(patch): Json<UserPatch>,
) -> Reply<User> {
    // Existence first, so another account's id is a 404 even for an agent.
    let target = s.store.get_user(caller.0.account_id, id).await?;
    caller.require_can_manage(target.role)?;
    if let Some(role) = patch.role {
        caller.require_can_manage(role)?;
    }
    let user = s.store.update_user(caller.0.account_id, id, patch).await?;
    // A deactivation or role change must apply to the user's next request.
    s.auth_cache.clear();
    Ok(axum::Json(user))
}

/// Body of a token request.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A label to recognise the token by: at most 100 characters (default `api`).
    #[schema(max_length = 100)]
    pub name: Option<String>,
}

/// A newly created token: the secret is shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    /// The secret, for `Authorization: Bearer <token>`.
    pub token: String,
    /// The token's description.
    #[serde(flatten)]
    pub info: TokenInfo,
}

#[utoipa::path(post, path = "/api/v1/users/{id}/tokens", tag = "users", params(("id" = i64, Path, description = "Its id")), request_body = Option<NewToken>,
    responses((status = 201, body = IssuedToken), (status = 403, description = "The caller's role does not allow this", body = crate::problem::Problem)))]
pub(crate) async fn create_token(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Created<IssuedToken> {
    // No body, or `null`, asks for the defaults.
    let input: NewToken = if body.is_empty() {
        NewToken::default()
    } else {
        crate::extract::parse_json::<Option<NewToken>>(&headers, &body)?.unwrap_or_default()
    };
    let target = s.store.get_user(caller.0.account_id, id).await?;
    if target.id != caller.0.user_id {
        caller.require_can_manage(target.role)?;
    }
    let name = input.name.unwrap_or_else(|| "api".into());
    if name.chars().count() > 100 {
        return Err(ApiError::invalid("name", "at most 100 characters"));
    }
    let token = auth::new_token();
    let info = s
        .store
        .create_token(caller.0.account_id, id, name, auth::hash_token(&token))
        .await?;
    created(IssuedToken { token, info })
}

#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", responses((status = 200, body = Page<Team>)))]
pub(crate) async fn list_teams(State(s): State<AppState>, Caller(me): Caller) -> Reply<Page<Team>> {
    Ok(all(s.store.list_teams(me.account_id).await?))
}

#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", request_body = NewTeam,
    responses((status = 201, body = Team), (status = 403, description = "The caller's role does not allow this", body = crate::problem::Problem), (status = 409, description = "Clashes with existing data (the field is named)", body = crate::problem::Problem)))]
pub(crate) async fn create_team(
    State(s): State<AppState>,
    caller: Caller,
    Json(input): Json<NewTeam>,
) -> Created<Team> {
    caller.require_admin()?;
    created(s.store.create_team(caller.0.account_id, input).await?)
}

#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = i64, Path, description = "Its id")), responses((status = 200, body = Team)))]
pub(crate) async fn get_team(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<TeamId>,
) -> Reply<Team> {
    Ok(axum::Json(s.store.get_team(me.account_id, id).await?))
}

#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = i64, Path, description = "Its id")), request_body = TeamPatch,
    responses((status = 200, body = Team), (status = 403, description = "The caller's role does not allow this", body = crate::problem::Problem), (status = 409, description = "Clashes with existing data (the field is named)", body = crate::problem::Problem)))]
pub(crate) async fn update_team(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<TeamId>,
    Json(patch): Json<TeamPatch>,
) -> Reply<Team> {
    s.store.get_team(caller.0.account_id, id).await?;
    caller.require_admin()?;
    Ok(axum::Json(
        s.store.update_team(caller.0.account_id, id, patch).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/skills", tag = "skills", responses((status = 200, body = Page<Skill>)))]
pub(crate) async fn list_skills(
    State(s): State<AppState>,
    Caller(me): Caller,
) -> Reply<Page<Skill>> {
    Ok(all(s.store.list_skills(me.account_id).await?))
}

#[utoipa::path(post, path = "/api/v1/skills", tag = "skills", request_body = NewSkill, responses((status = 201, body = Skill), (status = 403, description = "The caller's role does not allow this", body = crate::problem::Problem), (status = 409, description = "Clashes with existing data (the field is named)", body = crate::problem::Problem)))]
pub(crate) async fn create_skill(
    State(s): State<AppState>,
    caller: Caller,
    Json(input): Json<NewSkill>,
) -> Created<Skill> {
    caller.require_admin()?;
    created(s.store.create_skill(caller.0.account_id, input).await?)
}

#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts", params(PageParams), responses((status = 200, body = Page<Contact>)))]
pub(crate) async fn list_contacts(
    State(s): State<AppState>,
    Caller(me): Caller,
    Query(p): Query<PageParams>,
) -> Reply<Page<Contact>> {
    let limit = page_limit(p.limit)?;
    Ok(axum::Json(
        s.store
            .list_contacts(me.account_id, p.cursor, limit)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/contacts", tag = "contacts", request_body = NewContact, responses((status = 201, body = Contact), (status = 409, description = "Clashes with existing data (the field is named)", body = crate::problem::Problem)))]
pub(crate) async fn create_contact(
    State(s): State<AppState>,
    Caller(me): Caller,
    Json(input): Json<NewContact>,
) -> Created<Contact> {
    created(s.store.create_contact(me.account_id, input).await?)
}

#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts", params(("id" = i64, Path, description = "Its id")), responses((status = 200, body = Contact)))]
pub(crate) async fn get_contact(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<ContactId>,
) -> Reply<Contact> {
    Ok(axum::Json(s.store.get_contact(me.account_id, id).await?))
}

#[utoipa::path(patch, path = "/api/v1/contacts/{id}", tag = "contacts", params(("id" = i64, Path, description = "Its id")), request_body = ContactPatch,
    responses((status = 200, body = Contact), (status = 409, description = "Clashes with existing data (the field is named)", body = crate::problem::Problem)))]
pub(crate) async fn update_contact(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<ContactId>,
    Json(patch): Json<ContactPatch>,
) -> Reply<Contact> {
    Ok(axum::Json(
        s.store.update_contact(me.account_id, id, patch).await?,
    ))
}

/// What the API shows instead of a stored secret.
pub const SECRET_SET: &str = "(set)";

/// A channel as the API shows it: the values under `settings.secrets` (app
/// secrets, verify and auth tokens, SMTP passwords) are never returned once
/// set, only that they are set.
fn redact(mut channel: Channel) -> Channel {
    match channel.settings.get_mut("secrets") {
        Some(Value::Object(secrets)) => {
            for value in secrets.values_mut() {
                *value = Value::String(SECRET_SET.into());
            }
        }
        None | Some(Value::Null) => {}
        // Not stored since the settings are checked; never shown either.
        Some(other) => *other = Value::String(SECRET_SET.into()),
    }
    channel
}

/// Merges a patch's `settings.secrets` into the stored ones: a string sets,
/// `null` removes, [`SECRET_SET`] (what the API showed) keeps; settings
/// without `secrets` keep them all. So an admin can edit other settings
/// without knowing, or re-sending, the secrets.
fn merge_secrets(stored: &Channel, patch: &mut ChannelPatch) -> Result<()> {
    let Some(settings) = patch.settings.as_mut() else {
        return Ok(());
    };
    // Anything but an object (or null, which keeps them) is refused here,
    // before the stored secrets would take its place.
    if settings
        .get("secrets")
        .is_some_and(|v| !(v.is_object() || v.is_null()))
    {
        return Err(ApiError::invalid("settings.secrets", "must be an object"));
    }
    let mut merged = match stored.settings.get("secrets") {
        Some(Value::Object(s)) => s.clone(),
        _ => Map::new(),
    };
    if let Some(Value::Object(given)) = settings.get("secrets") {
        for (k, v) in given {
            match v {
                Value::Null => {
                    merged.remove(k);
                }
                Value::String(s) if s == SECRET_SET => {}
                other => {
                    merged.insert(k.clone(), other.clone());
                }
            }
        }
    }
    if merged.is_empty() {
        settings.remove("secrets");
    } else {
        settings.insert("secrets".into(), Value::Object(merged));
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/channels", tag = "channels", responses((status = 200, body = Page<Channel>)))]
pub(crate) async fn list_channels(
    State(s): State<AppState>,
    Caller(me): Caller,
) -> Reply<Page<Channel>> {
    let channels = s.store.list_channels(me.account_id).await?;
    Ok(all(channels.into_iter().map(redact).collect()))
}

#[utoipa::path(post, path = "/api/v1/channels", tag = "channels", request_body = NewChannel, responses((status = 201, body = Channel), (status = 403, description = "The caller's role does not allow this", body = crate::problem::Problem)))]
pub(crate) async fn create_channel(
    State(s): State<AppState>,
    caller: Caller,
    Json(input): Json<NewChannel>,
) -> Created<Channel> {
    caller.require_admin()?;
    // Typed settings are checked before anything is stored.
    channel_settings::parse(input.kind, &input.settings)?;
    created(redact(
        s.store
            .create_channel(caller.0.account_id, input, auth::new_public_key())
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/channels/{id}", tag = "channels", params(("id" = i64, Path, description = "Its id")), responses((status = 200, body = Channel)))]
pub(crate) async fn get_channel(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<ChannelId>,
) -> Reply<Channel> {
    Ok(axum::Json(redact(
        s.store.get_channel(me.account_id, id).await?,
    )))
}

#[utoipa::path(patch, path = "/api/v1/channels/{id}", tag = "channels", params(("id" = i64, Path, description = "Its id")), request_body = ChannelPatch,
    responses((status = 200, body = Channel), (status = 403, description = "The caller's role does not allow this", body = crate::problem::Problem)))]
pub(crate) async fn update_channel(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<ChannelId>,
    Json(mut patch): Json<ChannelPatch>,
) -> Reply<Channel> {
    let stored = s.store.get_channel(caller.0.account_id, id).await?;
    caller.require_admin()?;
    merge_secrets(&stored, &mut patch)?;
    if let Some(settings) = &patch.settings {
        channel_settings::parse(stored.kind, settings)?;
    }
    if let Some(Some(rule)) = &patch.routing {
        rule.check_channel(stored.kind).map_err(ApiError::from)?;
    }
    Ok(axum::Json(redact(
        s.store
            .update_channel(caller.0.account_id, id, patch)
            .await?,
    )))
}
