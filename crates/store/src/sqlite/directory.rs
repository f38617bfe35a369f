//! Accounts, API tokens, users, teams, skills, contacts and channels.
//! Every function takes the account and filters by it.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_domain::{input::*, *};

use super::{OrNotFound, rows, unique};
use crate::{Page, Result, StoreError, TokenInfo};

/// Fails with an `Invalid` error on `field` unless `id` is a row of `table`
/// in `account`. `table` is always a literal of this module.
pub(super) fn ensure_exists(
    c: &Connection,
    table: &'static str,
    account: AccountId,
    id: i64,
    field: &'static str,
) -> Result<()> {
    let sql = format!("SELECT 1 FROM {table} WHERE id = ?1 AND account_id = ?2");
    let found = c
        .prepare_cached(&sql)?
        .query_row(params![id, account.0], |_| Ok(()))
        .optional()?;
    found.ok_or_else(|| DomainError::invalid(field, format!("no such record: {id}")).into())
}

pub fn create_account(
    c: &Connection,
    now: Timestamp,
    name: Name,
    mut admin: NewUser,
    admin_token_hash: String,
) -> Result<(Account, User)> {
    c.execute(
        "INSERT INTO accounts (name, created_at) VALUES (?1, ?2)",
        params![name.as_str(), rows::ms(now)],
    )?;
    let account = Account {
        id: AccountId(c.last_insert_rowid()),
        name,
        created_at: now,
    };
    let mut skill =
        c.prepare_cached("INSERT INTO skills (account_id, name, category) VALUES (?1, ?2, ?3)")?;
    for language in BUILT_IN_LANGUAGES {
        skill.execute(params![account.id.0, language, LANGUAGE_CATEGORY])?;
    }
    admin.role = Role::SuperAdmin;
    let user = create_user(c, now, account.id, admin)?;
    create_token(
        c,
        now,
        account.id,
        user.id,
        "admin".into(),
        admin_token_hash,
    )?;
    Ok((account, user))
}

pub fn first_account(c: &Connection) -> Result<Option<Account>> {
    Ok(c.query_row(
        "SELECT id, name, created_at FROM accounts ORDER BY id LIMIT 1",
        [],
        |r| {
            Ok(Account {
                id: AccountId(r.get(0)?),
                name: rows::value(r, 1)?,
                created_at: rows::ts(r.get(2)?),
            })
        },
    )
    .optional()?)
}

pub fn create_token(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    user: UserId,
    name: String,
    token_hash: String,
) -> Result<TokenInfo> {
    get_user(c, account, user)?;
    c.execute(
        "INSERT INTO api_tokens (account_id, user_id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![account.0, user.0, name, token_hash, rows::ms(now)],
    )?;
    Ok(TokenInfo {
        id: TokenId(c.last_insert_rowid()),
        user_id: user,
        name,
        created_at: now,
    })
}

pub fn authenticate(c: &Connection, token_hash: &str) -> Result<Option<Principal>> {
    let mut stmt = c.prepare_cached(
        "SELECT t.account_id, t.user_id, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = ?1 AND u.deactivated = 0",
    )?;
    Ok(stmt
        .query_row([token_hash], |r| {
            Ok(Principal {
                account_id: AccountId(r.get(0)?),
                user_id: UserId(r.get(1)?),
                role: rows::parsed(r, 2)?,
            })
        })
        .optional()?)
}

pub fn create_user(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    input: NewUser,
) -> Result<User> {
    // Routing reads users, teams, skills and channels from its kept state.
    super::routing_state::invalidate(account);
    super::kept::forget_people(account);
    c.prepare_cached(
        "INSERT INTO users (account_id, name, email, role, help_desk_seat, time_zone, created_at, capacity)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        account.0,
        input.name.as_str(),
        input.email.as_str(),
        input.role.as_str(),
        input.help_desk_seat,
        input.time_zone.as_str(),
        rows::ms(now),
        serde_json::to_string(&input.capacity).map_err(super::backend)?,
    ])
    .map_err(|e| unique(e, "email", "a user with this e-mail address exists"))?;
    let id = UserId(c.last_insert_rowid());
    set_user_teams(
        c,
        account,
        id,
        input.main_team_id,
        &input.secondary_team_ids,
    )?;
    set_user_skills(c, account, id, &input.skill_ids)?;
    get_user(c, account, id)
}

fn set_user_teams(
    c: &Connection,
    account: AccountId,
    user: UserId,
    main: Option<TeamId>,
    secondary: &[TeamId],
) -> Result<()> {
    c.execute("DELETE FROM team_members WHERE user_id = ?1", [user.0])?;
    let mut insert = c.prepare_cached(
        "INSERT OR IGNORE INTO team_members (account_id, team_id, user_id, main) VALUES (?1, ?2, ?3, ?4)",
    )?;
    if let Some(team) = main {
        ensure_exists(c, "teams", account, team.0, "main_team_id")?;
        insert.execute(params![account.0, team.0, user.0, true])?;
    }
    for team in secondary {
        ensure_exists(c, "teams", account, team.0, "secondary_team_ids")?;
        // `OR IGNORE`: a secondary entry repeating the main team is dropped.
        insert.execute(params![account.0, team.0, user.0, false])?;
    }
    Ok(())
}

fn set_user_skills(
    c: &Connection,
    account: AccountId,
    user: UserId,
    skills: &[SkillId],
) -> Result<()> {
    c.execute("DELETE FROM user_skills WHERE user_id = ?1", [user.0])?;
    let mut insert = c.prepare_cached(
        "INSERT OR IGNORE INTO user_skills (account_id, user_id, skill_id) VALUES (?1, ?2, ?3)",
    )?;
    for skill in skills {
        ensure_exists(c, "skills", account, skill.0, "skill_ids")?;
        insert.execute(params![account.0, user.0, skill.0])?;
    }
    Ok(())
}

pub fn get_user(c: &Connection, account: AccountId, id: UserId) -> Result<User> {
    let sql = format!(
        "SELECT {} FROM users u WHERE u.id = ?1 AND u.account_id = ?2",
        rows::USER_COLUMNS
    );
    c.prepare_cached(&sql)?
        .query_row(params![id.0, account.0], rows::user)
        .or_not_found("user")
}

pub fn list_users(c: &Connection, account: AccountId) -> Result<Vec<User>> {
    let sql = format!(
        "SELECT {} FROM users u WHERE u.account_id = ?1 ORDER BY u.id",
        rows::USER_COLUMNS
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let users = stmt
        .query_map([account.0], rows::user)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(users)
}

pub fn update_user(
    c: &Connection,
    account: AccountId,
    id: UserId,
    patch: UserPatch,
) -> Result<User> {
    // Routing reads users, teams, skills and channels from its kept state.
    super::routing_state::invalidate(account);
    super::kept::forget_people(account);
    let mut user = get_user(c, account, id)?;
    let patched = switchboard_domain::directory::patch_user(&mut user, &patch);
    if patched.leaves_super_admins {
        let others: i64 = c.query_row(
            "SELECT count(*) FROM users WHERE account_id = ?1 AND id <> ?2 AND role = 'super_admin' AND deactivated = 0",
            params![account.0, id.0],
            |r| r.get(0),
        )?;
        if others == 0 {
            return Err(StoreError::last_super_admin());
        }
    }
    c.prepare_cached(
        "UPDATE users SET name = ?1, email = ?2, role = ?3, help_desk_seat = ?4, deactivated = ?5, time_zone = ?6
         WHERE id = ?7 AND account_id = ?8",
    )?
    .execute(params![
        user.name.as_str(),
        user.email.as_str(),
        user.role.as_str(),
        user.help_desk_seat,
        user.deactivated,
        user.time_zone.as_str(),
        id.0,
        account.0,
    ])
    .map_err(|e| unique(e, "email", "a user with this e-mail address exists"))?;
    if patch.main_team_id.is_some() || patch.secondary_team_ids.is_some() {
        let main = patch.main_team_id.unwrap_or(user.main_team_id);
        let secondary = patch.secondary_team_ids.unwrap_or(user.secondary_team_ids);
        set_user_teams(c, account, id, main, &secondary)?;
    }
    if let Some(skills) = patch.skill_ids {
        set_user_skills(c, account, id, &skills)?;
    }
    if let Some(capacity) = patch.capacity {
        c.execute(
            "UPDATE users SET capacity = ?1 WHERE id = ?2 AND account_id = ?3",
            params![
                serde_json::to_string(&capacity).map_err(super::backend)?,
                id.0,
                account.0
            ],
        )?;
    }
    get_user(c, account, id)
}

pub fn create_team(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    input: NewTeam,
) -> Result<Team> {
    // Routing reads users, teams, skills and channels from its kept state.
    super::routing_state::invalidate(account);
    super::kept::forget_people(account);
    c.execute(
        "INSERT INTO teams (account_id, name, created_at) VALUES (?1, ?2, ?3)",
        params![account.0, input.name.as_str(), rows::ms(now)],
    )
    .map_err(|e| unique(e, "name", "a team with this name exists"))?;
    let id = TeamId(c.last_insert_rowid());
    set_team_members(c, account, id, &input.members)?;
    get_team(c, account, id)
}

fn set_team_members(
    c: &Connection,
    account: AccountId,
    team: TeamId,
    members: &[TeamMember],
) -> Result<()> {
    c.execute("DELETE FROM team_members WHERE team_id = ?1", [team.0])?;
    let mut insert = c.prepare_cached(
        "INSERT INTO team_members (account_id, team_id, user_id, main) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for member in members {
        ensure_exists(c, "users", account, member.user_id.0, "members")?;
        insert
            .execute(params![account.0, team.0, member.user_id.0, member.main])
            .map_err(|e| {
                unique(
                    e,
                    "members",
                    &format!(
                        "user {} is listed twice, or already has another main team",
                        member.user_id
                    ),
                )
            })?;
    }
    Ok(())
}

pub fn get_team(c: &Connection, account: AccountId, id: TeamId) -> Result<Team> {
    let sql = format!(
        "SELECT {} FROM teams t WHERE t.id = ?1 AND t.account_id = ?2",
        rows::TEAM_COLUMNS
    );
    c.prepare_cached(&sql)?
        .query_row(params![id.0, account.0], rows::team)
        .or_not_found("team")
}

pub fn list_teams(c: &Connection, account: AccountId) -> Result<Vec<Team>> {
    let sql = format!(
        "SELECT {} FROM teams t WHERE t.account_id = ?1 ORDER BY t.id",
        rows::TEAM_COLUMNS
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let teams = stmt
        .query_map([account.0], rows::team)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(teams)
}

pub fn update_team(
    c: &Connection,
    account: AccountId,
    id: TeamId,
    patch: TeamPatch,
) -> Result<Team> {
    // Routing reads users, teams, skills and channels from its kept state.
    super::routing_state::invalidate(account);
    super::kept::forget_people(account);
    get_team(c, account, id)?;
    if let Some(name) = patch.name {
        c.execute(
            "UPDATE teams SET name = ?1 WHERE id = ?2 AND account_id = ?3",
            params![name.as_str(), id.0, account.0],
        )
        .map_err(|e| unique(e, "name", "a team with this name exists"))?;
    }
    if let Some(members) = patch.members {
        set_team_members(c, account, id, &members)?;
    }
    if let Some(hours) = patch.office_hours {
        if let Some(h) = &hours {
            h.hours.validate()?;
        }
        c.execute(
            "UPDATE teams SET office_hours = ?1 WHERE id = ?2 AND account_id = ?3",
            params![
                hours
                    .map(|h| serde_json::to_string(&h))
                    .transpose()
                    .map_err(super::backend)?,
                id.0,
                account.0
            ],
        )?;
    }
    get_team(c, account, id)
}

pub fn create_skill(c: &Connection, account: AccountId, input: NewSkill) -> Result<Skill> {
    // Routing reads users, teams, skills and channels from its kept state.
    super::routing_state::invalidate(account);
    c.execute(
        "INSERT INTO skills (account_id, name, category) VALUES (?1, ?2, ?3)",
        params![account.0, input.name.as_str(), input.category.as_str()],
    )
    .map_err(|e| unique(e, "name", "a skill with this name exists"))?;
    Ok(Skill {
        id: SkillId(c.last_insert_rowid()),
        name: input.name,
        category: input.category,
    })
}

pub fn list_skills(c: &Connection, account: AccountId) -> Result<Vec<Skill>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, name, category FROM skills WHERE account_id = ?1 ORDER BY category, name",
    )?;
    let skills = stmt
        .query_map([account.0], |r| {
            Ok(Skill {
                id: SkillId(r.get(0)?),
                name: rows::value(r, 1)?,
                category: rows::value(r, 2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(skills)
}

pub fn create_contact(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    input: NewContact,
) -> Result<Contact> {
    if let Some(owner) = input.owner_user_id {
        ensure_exists(c, "users", account, owner.0, "owner_user_id")?;
    }
    c.prepare_cached(
        "INSERT INTO contacts (account_id, name, email, phone, owner_user_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        account.0,
        input.name.as_ref().map(Name::as_str),
        input.email.as_ref().map(EmailAddress::as_str),
        input.phone.as_ref().map(E164::as_str),
        input.owner_user_id.map(|u| u.0),
        rows::ms(now),
    ])
    .map_err(contact_clash)?;
    let id = ContactId(c.last_insert_rowid());
    set_visitor_tokens(c, account, id, &input.visitor_tokens)?;
    get_contact(c, account, id)
}

/// A contact uniqueness clash, reported on the field that clashed.
fn contact_clash(e: rusqlite::Error) -> StoreError {
    let field = if e.to_string().contains("phone") {
        "phone"
    } else {
        "email"
    };
    unique(e, field, &format!("a contact with this {field} exists"))
}

fn set_visitor_tokens(
    c: &Connection,
    account: AccountId,
    contact: ContactId,
    tokens: &[String],
) -> Result<()> {
    c.execute(
        "DELETE FROM contact_visitor_tokens WHERE contact_id = ?1",
        [contact.0],
    )?;
    let mut insert = c.prepare_cached(
        "INSERT INTO contact_visitor_tokens (account_id, token, contact_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (account_id, token) DO NOTHING",
    )?;
    for token in tokens {
        let token = token.trim();
        if token.is_empty() || token.len() > 200 || token.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "visitor_tokens",
                "tokens are 1 to 200 visible characters",
            )
            .into());
        }
        if insert.execute(params![account.0, token, contact.0])? == 0 {
            let owner: i64 = c.query_row(
                "SELECT contact_id FROM contact_visitor_tokens WHERE account_id = ?1 AND token = ?2",
                params![account.0, token],
                |r| r.get(0),
            )?;
            if owner != contact.0 {
                return Err(StoreError::Conflict {
                    field: "visitor_tokens",
                    message: format!("visitor token {token:?} already identifies contact {owner}"),
                });
            }
        }
    }
    Ok(())
}

pub fn get_contact(c: &Connection, account: AccountId, id: ContactId) -> Result<Contact> {
    let sql = format!(
        "SELECT {} FROM contacts c WHERE c.id = ?1 AND c.account_id = ?2",
        rows::CONTACT_COLUMNS
    );
    c.prepare_cached(&sql)?
        .query_row(params![id.0, account.0], rows::contact)
        .or_not_found("contact")
}

pub fn list_contacts(
    c: &Connection,
    account: AccountId,
    cursor: Option<i64>,
    limit: u32,
) -> Result<Page<Contact>> {
    let sql = format!(
        "SELECT {} FROM contacts c WHERE c.account_id = ?1 AND c.id < ?2 ORDER BY c.id DESC LIMIT ?3",
        rows::CONTACT_COLUMNS
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let items = stmt
        .query_map(
            params![account.0, cursor.unwrap_or(i64::MAX), limit + 1],
            rows::contact,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(crate::paginate(items, limit, |c| c.id.0))
}

pub fn update_contact(
    c: &Connection,
    account: AccountId,
    id: ContactId,
    patch: ContactPatch,
) -> Result<Contact> {
    let mut contact = get_contact(c, account, id)?;
    if let Some(v) = patch.name {
        contact.name = v;
    }
    if let Some(v) = patch.email {
        contact.email = v;
    }
    if let Some(v) = patch.phone {
        contact.phone = v;
    }
    if let Some(v) = patch.owner_user_id {
        if let Some(owner) = v {
            ensure_exists(c, "users", account, owner.0, "owner_user_id")?;
        }
        contact.owner_user_id = v;
    }
    c.execute(
        "UPDATE contacts SET name = ?1, email = ?2, phone = ?3, owner_user_id = ?4 WHERE id = ?5 AND account_id = ?6",
        params![
            contact.name.as_ref().map(Name::as_str),
            contact.email.as_ref().map(EmailAddress::as_str),
            contact.phone.as_ref().map(E164::as_str),
            contact.owner_user_id.map(|u| u.0),
            id.0,
            account.0,
        ],
    )
    .map_err(contact_clash)?;
    if let Some(tokens) = patch.visitor_tokens {
        set_visitor_tokens(c, account, id, &tokens)?;
    }
    get_contact(c, account, id)
}

pub fn create_channel(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    input: NewChannel,
    key: String,
) -> Result<Channel> {
    // Routing reads users, teams, skills and channels from its kept state.
    super::routing_state::invalidate(account);
    c.execute(
        "INSERT INTO channels (account_id, kind, name, key, settings, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            account.0,
            input.kind.as_str(),
            input.name.as_str(),
            key,
            serde_json::Value::Object(input.settings).to_string(),
            rows::ms(now),
        ],
    )?;
    get_channel(c, account, ChannelId(c.last_insert_rowid()))
}

pub fn get_channel(c: &Connection, account: AccountId, id: ChannelId) -> Result<Channel> {
    let sql = format!(
        "SELECT {} FROM channels WHERE id = ?1 AND account_id = ?2",
        rows::CHANNEL_COLUMNS
    );
    c.prepare_cached(&sql)?
        .query_row(params![id.0, account.0], rows::channel)
        .or_not_found("channel")
}

pub fn list_channels(c: &Connection, account: AccountId) -> Result<Vec<Channel>> {
    let sql = format!(
        "SELECT {} FROM channels WHERE account_id = ?1 ORDER BY id",
        rows::CHANNEL_COLUMNS
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let channels = stmt
        .query_map([account.0], rows::channel)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(channels)
}

pub fn update_channel(
    c: &Connection,
    account: AccountId,
    id: ChannelId,
    patch: ChannelPatch,
) -> Result<Channel> {
    // Routing reads users, teams, skills and channels from its kept state.
    super::routing_state::invalidate(account);
    let mut channel = get_channel(c, account, id)?;
    if let Some(v) = patch.name {
        channel.name = v;
    }
    if let Some(v) = patch.settings {
        channel.settings = v;
    }
    if let Some(v) = patch.routing {
        if let Some(rule) = &v {
            check_rule(c, account, rule)?;
        }
        channel.routing = v;
    }
    if let Some(v) = patch.office_hours {
        if let Some(h) = &v {
            h.hours.validate()?;
        }
        channel.office_hours = v;
    }
    c.execute(
        "UPDATE channels SET name = ?1, settings = ?2, routing = ?3, office_hours = ?6 WHERE id = ?4 AND account_id = ?5",
        params![
            channel.name.as_str(),
            serde_json::Value::Object(channel.settings.clone()).to_string(),
            channel
                .routing
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(super::backend)?,
            id.0,
            account.0,
            channel
                .office_hours
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(super::backend)?,
        ],
    )?;
    Ok(channel)
}

/// Checks a routing rule's shape and that every id it names is in the account.
fn check_rule(c: &Connection, account: AccountId, rule: &routing::RoutingRule) -> Result<()> {
    rule.validate()?;
    for (named, id, field) in switchboard_domain::directory::rule_references(rule) {
        ensure_exists(c, named.table(), account, id, field)?;
    }
    Ok(())
}
