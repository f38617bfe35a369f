//! Column lists and row mapping shared by the PostgreSQL queries, in the same
//! order as the SQLite module's so the two backends' queries line up. Each
//! record is read with one statement (related ids come back through
//! `array_agg`/`string_agg` subqueries), so a read needs no transaction to be
//! consistent.
//!
//! Every reader takes a column index (`usize`, or a column name as `&str`)
//! and returns [`crate::Result`]; decode and parse failures become backend
//! errors naming the column.

use std::{fmt::Display, str::FromStr};

use jiff::Timestamp;
use serde_json::{Map, Value};
use sqlx::{ColumnIndex, Row, postgres::PgRow};
use switchboard_domain::*;

use super::backend;
use crate::Result;

/// Unix milliseconds, as stored.
pub fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// Back from Unix milliseconds.
pub fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A column index: a position or a column name.
pub trait Col: ColumnIndex<PgRow> + Display + Copy {}
impl<T: ColumnIndex<PgRow> + Display + Copy> Col for T {}

/// A value that decoded but did not parse, as a backend error on column `idx`.
fn bad(idx: impl Display, e: impl std::error::Error + Send + Sync + 'static) -> crate::StoreError {
    backend(sqlx::Error::ColumnDecode {
        index: idx.to_string(),
        source: Box::new(e),
    })
}

/// Reads column `idx` as `T` (a plain [`Row::try_get`], with the error
/// mapped), for columns that need no parsing.
pub fn get<'r, T>(row: &'r PgRow, idx: impl Col) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(idx).map_err(backend)
}

/// Reads an INTEGER 0/1 flag column as a boolean.
pub fn flag(row: &PgRow, idx: impl Col) -> Result<bool> {
    Ok(get::<i32>(row, idx)? != 0)
}

/// Reads a nullable BIGINT time column (Unix milliseconds).
pub fn opt_ts(row: &PgRow, idx: impl Col) -> Result<Option<Timestamp>> {
    Ok(get::<Option<i64>>(row, idx)?.map(ts))
}

/// Reads column `idx` as text and parses it.
pub fn parsed<T>(row: &PgRow, idx: impl Col) -> Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    get::<&str>(row, idx)?.parse().map_err(|e| bad(idx, e))
}

/// Reads column `idx` as a domain value built with `TryFrom<String>`.
pub fn value<T>(row: &PgRow, idx: impl Col) -> Result<T>
where
    T: TryFrom<String, Error = DomainError>,
{
    T::try_from(get::<String>(row, idx)?).map_err(|e| bad(idx, e))
}

/// Like [`value`], for a nullable column.
pub fn value_opt<T>(row: &PgRow, idx: impl Col) -> Result<Option<T>>
where
    T: TryFrom<String, Error = DomainError>,
{
    get::<Option<String>>(row, idx)?
        .map(|s| T::try_from(s).map_err(|e| bad(idx, e)))
        .transpose()
}

/// Reads a JSON column (JSON documents are stored as TEXT).
pub fn json<T: serde::de::DeserializeOwned>(row: &PgRow, idx: impl Col) -> Result<T> {
    serde_json::from_str(get::<&str>(row, idx)?).map_err(|e| bad(idx, e))
}

/// Reads a routing explanation in its stored form.
pub fn explanation(row: &PgRow, idx: impl Col) -> Result<switchboard_domain::routing::Explanation> {
    switchboard_domain::routing::Explanation::from_stored(get::<&str>(row, idx)?)
        .map_err(|e| bad(idx, e))
}

/// Reads a nullable JSON column.
pub fn json_opt<T: serde::de::DeserializeOwned>(row: &PgRow, idx: impl Col) -> Result<Option<T>> {
    get::<Option<&str>>(row, idx)?
        .map(|s| serde_json::from_str(s).map_err(|e| bad(idx, e)))
        .transpose()
}

/// A value as the JSON text stored in a TEXT column.
pub fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(backend)
}

/// Like [`to_json`], NULL for `None`.
pub fn to_json_opt<T: serde::Serialize>(v: Option<&T>) -> Result<Option<String>> {
    v.map(to_json).transpose()
}

/// Maps every fetched row, failing on the first that does not map.
pub fn all<T>(found: Vec<PgRow>, map: impl Fn(&PgRow) -> Result<T>) -> Result<Vec<T>> {
    found.iter().map(map).collect()
}

/// Reads a `BIGINT[]` of ids (from `array_agg`, which gives NULL for no
/// rows), wrapping each raw id with `wrap` (an id type's constructor, such
/// as `TeamId`).
pub fn id_list<T>(row: &PgRow, idx: impl Col, wrap: fn(i64) -> T) -> Result<Vec<T>> {
    Ok(get::<Option<Vec<i64>>>(row, idx)?
        .unwrap_or_default()
        .into_iter()
        .map(wrap)
        .collect())
}

/// Columns of [`user`], with team and skill ids gathered in subqueries.
pub const USER_COLUMNS: &str = "u.id, u.name, u.email, u.role, u.help_desk_seat, u.deactivated, u.time_zone, u.created_at, u.capacity,
    (SELECT team_id FROM team_members WHERE user_id = u.id AND main = 1),
    (SELECT array_agg(team_id ORDER BY team_id) FROM team_members WHERE user_id = u.id AND main = 0),
    (SELECT array_agg(skill_id ORDER BY skill_id) FROM user_skills WHERE user_id = u.id)";

/// Maps a row of [`USER_COLUMNS`].
pub fn user(row: &PgRow) -> Result<User> {
    Ok(User {
        id: UserId(get(row, 0)?),
        name: value(row, 1)?,
        email: value(row, 2)?,
        role: parsed(row, 3)?,
        help_desk_seat: flag(row, 4)?,
        deactivated: flag(row, 5)?,
        time_zone: value(row, 6)?,
        created_at: ts(get(row, 7)?),
        capacity: json(row, 8)?,
        main_team_id: get::<Option<i64>>(row, 9)?.map(TeamId),
        secondary_team_ids: id_list(row, 10, TeamId)?,
        skill_ids: id_list(row, 11, SkillId)?,
    })
}

/// Columns of [`team`], members as `user:main` pairs ordered by user id (one
/// column, so the layout matches the SQLite module's).
pub const TEAM_COLUMNS: &str = "t.id, t.name, t.created_at, t.office_hours,
    (SELECT string_agg(user_id || ':' || main, ',' ORDER BY user_id) FROM team_members WHERE team_id = t.id),
    (SELECT count(*) FROM team_members m JOIN users u ON u.id = m.user_id
        WHERE m.team_id = t.id AND u.help_desk_seat = 1 AND u.deactivated = 0)";

/// Maps a row of [`TEAM_COLUMNS`].
pub fn team(row: &PgRow) -> Result<Team> {
    let members = match get::<Option<&str>>(row, 4)? {
        None => Vec::new(),
        Some(text) => text
            .split(',')
            .map(|pair| {
                let (user, main) = pair.split_once(':').unwrap_or((pair, "0"));
                user.parse().map(|u| TeamMember {
                    user_id: UserId(u),
                    main: main == "1",
                })
            })
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad(4, e))?,
    };
    // count(*) is BIGINT.
    let seated: i64 = get(row, 5)?;
    Ok(Team {
        id: TeamId(get(row, 0)?),
        name: value(row, 1)?,
        created_at: ts(get(row, 2)?),
        office_hours: json_opt(row, 3)?,
        members,
        seated_members: u32::try_from(seated).map_err(|e| bad(5, e))?,
    })
}

/// Columns of [`contact`]; visitor tokens as a `TEXT[]` ordered bytewise (as
/// SQLite does), whatever the server's collation.
pub const CONTACT_COLUMNS: &str = "c.id, c.name, c.email, c.phone, c.owner_user_id, c.created_at,
    (SELECT array_agg(token ORDER BY token COLLATE \"C\") FROM contact_visitor_tokens WHERE contact_id = c.id)";

/// Maps a row of [`CONTACT_COLUMNS`].
pub fn contact(row: &PgRow) -> Result<Contact> {
    Ok(Contact {
        id: ContactId(get(row, 0)?),
        name: value_opt(row, 1)?,
        email: value_opt(row, 2)?,
        phone: value_opt(row, 3)?,
        owner_user_id: get::<Option<i64>>(row, 4)?.map(UserId),
        created_at: ts(get(row, 5)?),
        visitor_tokens: get::<Option<Vec<String>>>(row, 6)?.unwrap_or_default(),
    })
}

/// Columns of [`channel`].
pub const CHANNEL_COLUMNS: &str =
    "id, kind, name, key, settings, routing, created_at, office_hours";

/// Maps a row of [`CHANNEL_COLUMNS`].
pub fn channel(row: &PgRow) -> Result<Channel> {
    Ok(Channel {
        id: ChannelId(get(row, 0)?),
        kind: parsed(row, 1)?,
        name: value(row, 2)?,
        key: get(row, 3)?,
        settings: json::<Map<String, Value>>(row, 4)?,
        routing: json_opt(row, 5)?,
        created_at: ts(get(row, 6)?),
        office_hours: json_opt(row, 7)?,
    })
}

/// Columns of [`ticket`].
pub const TICKET_COLUMNS: &str = "id, subject, content, channel_id, source, type, status, stage, priority,
    owner_user_id, owner_team_id, assigned_at, contact_id, properties, first_reply_at, created_at, updated_at, closed_at";

/// Maps a row of [`TICKET_COLUMNS`].
pub fn ticket(row: &PgRow) -> Result<Ticket> {
    Ok(Ticket {
        id: TicketId(get(row, 0)?),
        subject: get(row, 1)?,
        content: get(row, 2)?,
        channel_id: get::<Option<i64>>(row, 3)?.map(ChannelId),
        source: parsed(row, 4)?,
        ticket_type: parsed(row, 5)?,
        status: parsed(row, 6)?,
        stage: parsed(row, 7)?,
        priority: parsed(row, 8)?,
        owner: Owner {
            user_id: get::<Option<i64>>(row, 9)?.map(UserId),
            team_id: get::<Option<i64>>(row, 10)?.map(TeamId),
        },
        assigned_at: opt_ts(row, 11)?,
        contact_id: get::<Option<i64>>(row, 12)?.map(ContactId),
        properties: json(row, 13)?,
        first_reply_at: opt_ts(row, 14)?,
        created_at: ts(get(row, 15)?),
        updated_at: ts(get(row, 16)?),
        closed_at: opt_ts(row, 17)?,
    })
}

/// Columns of [`message`].
pub const MESSAGE_COLUMNS: &str = "id, ticket_id, kind, author, body, external_id, created_at";

/// Maps a row of [`MESSAGE_COLUMNS`].
pub fn message(row: &PgRow) -> Result<Message> {
    Ok(Message {
        id: MessageId(get(row, 0)?),
        ticket_id: TicketId(get(row, 1)?),
        kind: parsed(row, 2)?,
        author: json(row, 3)?,
        body: get(row, 4)?,
        external_id: get(row, 5)?,
        created_at: ts(get(row, 6)?),
    })
}

/// Maps a row of `id, ticket_id, at, actor, event`.
pub fn history(row: &PgRow) -> Result<HistoryEntry> {
    Ok(HistoryEntry {
        id: get(row, 0)?,
        ticket_id: TicketId(get(row, 1)?),
        at: ts(get(row, 2)?),
        actor: json(row, 3)?,
        event: json(row, 4)?,
    })
}
