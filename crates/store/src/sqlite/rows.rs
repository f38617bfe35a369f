//! Column lists and row mapping shared by the SQLite queries. Each record is
//! read with one statement (related ids come back through `group_concat`), so
//! a read needs no transaction to be consistent.

use std::str::FromStr;

use jiff::Timestamp;
use rusqlite::{Row, types::Type};
use serde_json::{Map, Value};
use switchboard_domain::*;

/// Unix milliseconds, as stored.
pub fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// Back from Unix milliseconds.
pub fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn bad(idx: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e))
}

/// Reads column `idx` as text and parses it.
pub fn parsed<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    row.get_ref(idx)?.as_str()?.parse().map_err(|e| bad(idx, e))
}

/// Reads column `idx` as a domain value built with `TryFrom<String>`.
pub fn value<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T: TryFrom<String, Error = DomainError>,
{
    T::try_from(row.get::<_, String>(idx)?).map_err(|e| bad(idx, e))
}

/// Like [`value`], for a nullable column.
pub fn value_opt<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>>
where
    T: TryFrom<String, Error = DomainError>,
{
    row.get::<_, Option<String>>(idx)?
        .map(|s| T::try_from(s).map_err(|e| bad(idx, e)))
        .transpose()
}

/// Reads a JSON column.
pub fn json<T: serde::de::DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    serde_json::from_str(row.get_ref(idx)?.as_str()?).map_err(|e| bad(idx, e))
}

/// Reads a routing explanation in its stored form.
pub fn explanation(
    row: &Row<'_>,
    idx: usize,
) -> rusqlite::Result<switchboard_domain::routing::Explanation> {
    switchboard_domain::routing::Explanation::from_stored(row.get_ref(idx)?.as_str()?)
        .map_err(|e| bad(idx, e))
}

/// Reads a nullable JSON column.
pub fn json_opt<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    idx: usize,
) -> rusqlite::Result<Option<T>> {
    match row.get_ref(idx)?.as_str_or_null()? {
        None => Ok(None),
        Some(_) => json(row, idx).map(Some),
    }
}

/// Reads a comma-separated list of ids (from `group_concat`), wrapping each
/// raw id with `wrap` (an id type's constructor, such as `TeamId`).
pub fn id_list<T>(row: &Row<'_>, idx: usize, wrap: fn(i64) -> T) -> rusqlite::Result<Vec<T>> {
    let Some(text) = row.get_ref(idx)?.as_str_or_null()? else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(|s| s.parse::<i64>().map(wrap).map_err(|e| bad(idx, e)))
        .collect()
}

/// Columns of [`user`], with team and skill ids gathered in subqueries.
pub const USER_COLUMNS: &str = "u.id, u.name, u.email, u.role, u.help_desk_seat, u.deactivated, u.time_zone, u.created_at, u.capacity,
    (SELECT team_id FROM team_members WHERE user_id = u.id AND main = 1),
    (SELECT group_concat(team_id) FROM (SELECT team_id FROM team_members WHERE user_id = u.id AND main = 0 ORDER BY team_id)),
    (SELECT group_concat(skill_id) FROM (SELECT skill_id FROM user_skills WHERE user_id = u.id ORDER BY skill_id))";

/// Maps a row of [`USER_COLUMNS`].
pub fn user(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId(row.get(0)?),
        name: value(row, 1)?,
        email: value(row, 2)?,
        role: parsed(row, 3)?,
        help_desk_seat: row.get(4)?,
        deactivated: row.get(5)?,
        time_zone: value(row, 6)?,
        created_at: ts(row.get(7)?),
        capacity: json(row, 8)?,
        main_team_id: row.get::<_, Option<i64>>(9)?.map(TeamId),
        secondary_team_ids: id_list(row, 10, TeamId)?,
        skill_ids: id_list(row, 11, SkillId)?,
    })
}

/// Columns of [`team`], members as `user:main` pairs.
pub const TEAM_COLUMNS: &str = "t.id, t.name, t.created_at, t.office_hours,
    (SELECT group_concat(user_id || ':' || main) FROM (SELECT user_id, main FROM team_members WHERE team_id = t.id ORDER BY user_id)),
    (SELECT count(*) FROM team_members m JOIN users u ON u.id = m.user_id
        WHERE m.team_id = t.id AND u.help_desk_seat = 1 AND u.deactivated = 0)";

/// Maps a row of [`TEAM_COLUMNS`].
pub fn team(row: &Row<'_>) -> rusqlite::Result<Team> {
    let members = match row.get_ref(4)?.as_str_or_null()? {
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
            .collect::<Result<_, _>>()
            .map_err(|e| bad(4, e))?,
    };
    Ok(Team {
        id: TeamId(row.get(0)?),
        name: value(row, 1)?,
        created_at: ts(row.get(2)?),
        office_hours: json_opt(row, 3)?,
        members,
        seated_members: row.get(5)?,
    })
}

/// Columns of [`contact`]; visitor tokens joined by the unit separator.
pub const CONTACT_COLUMNS: &str = "c.id, c.name, c.email, c.phone, c.owner_user_id, c.created_at,
    (SELECT group_concat(token, char(31)) FROM (SELECT token FROM contact_visitor_tokens WHERE contact_id = c.id ORDER BY token))";

/// Maps a row of [`CONTACT_COLUMNS`].
pub fn contact(row: &Row<'_>) -> rusqlite::Result<Contact> {
    Ok(Contact {
        id: ContactId(row.get(0)?),
        name: value_opt(row, 1)?,
        email: value_opt(row, 2)?,
        phone: value_opt(row, 3)?,
        owner_user_id: row.get::<_, Option<i64>>(4)?.map(UserId),
        created_at: ts(row.get(5)?),
        visitor_tokens: row
            .get::<_, Option<String>>(6)?
            .map(|s| s.split('\u{1f}').map(str::to_owned).collect())
            .unwrap_or_default(),
    })
}

/// Columns of [`channel`].
pub const CHANNEL_COLUMNS: &str =
    "id, kind, name, key, settings, routing, created_at, office_hours";

/// Maps a row of [`CHANNEL_COLUMNS`].
pub fn channel(row: &Row<'_>) -> rusqlite::Result<Channel> {
    Ok(Channel {
        id: ChannelId(row.get(0)?),
        kind: parsed(row, 1)?,
        name: value(row, 2)?,
        key: row.get(3)?,
        settings: json::<Map<String, Value>>(row, 4)?,
        routing: json_opt(row, 5)?,
        created_at: ts(row.get(6)?),
        office_hours: json_opt(row, 7)?,
    })
}

/// Columns of [`ticket`].
pub const TICKET_COLUMNS: &str = "id, subject, content, channel_id, source, type, status, stage, priority,
    owner_user_id, owner_team_id, assigned_at, contact_id, properties, first_reply_at, created_at, updated_at, closed_at";

/// Maps a row of [`TICKET_COLUMNS`].
pub fn ticket(row: &Row<'_>) -> rusqlite::Result<Ticket> {
    let opt_ts = |i: usize| row.get::<_, Option<i64>>(i).map(|v| v.map(ts));
    Ok(Ticket {
        id: TicketId(row.get(0)?),
        subject: row.get(1)?,
        content: row.get(2)?,
        channel_id: row.get::<_, Option<i64>>(3)?.map(ChannelId),
        source: parsed(row, 4)?,
        ticket_type: parsed(row, 5)?,
        status: parsed(row, 6)?,
        stage: parsed(row, 7)?,
        priority: parsed(row, 8)?,
        owner: Owner {
            user_id: row.get::<_, Option<i64>>(9)?.map(UserId),
            team_id: row.get::<_, Option<i64>>(10)?.map(TeamId),
        },
        assigned_at: opt_ts(11)?,
        contact_id: row.get::<_, Option<i64>>(12)?.map(ContactId),
        properties: json(row, 13)?,
        first_reply_at: opt_ts(14)?,
        created_at: ts(row.get(15)?),
        updated_at: ts(row.get(16)?),
        closed_at: opt_ts(17)?,
    })
}

/// Columns of [`message`].
pub const MESSAGE_COLUMNS: &str = "id, ticket_id, kind, author, body, external_id, created_at";

/// Maps a row of [`MESSAGE_COLUMNS`].
pub fn message(row: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: MessageId(row.get(0)?),
        ticket_id: TicketId(row.get(1)?),
        kind: parsed(row, 2)?,
        author: json(row, 3)?,
        body: row.get(4)?,
        external_id: row.get(5)?,
        created_at: ts(row.get(6)?),
    })
}

/// Maps a row of `id, ticket_id, at, actor, event`.
pub fn history(row: &Row<'_>) -> rusqlite::Result<HistoryEntry> {
    Ok(HistoryEntry {
        id: row.get(0)?,
        ticket_id: TicketId(row.get(1)?),
        at: ts(row.get(2)?),
        actor: json(row, 3)?,
        event: json(row, 4)?,
    })
}
