//! Accounts, API tokens, users, teams, skills, contacts and channels on
//! PostgreSQL. Every function takes the account and filters by it.
//!
//! A failed statement aborts the whole PostgreSQL transaction, so a
//! constraint violation is only ever turned into an error that ends the
//! transaction; inserts that SQLite made with `OR IGNORE` use
//! `ON CONFLICT DO NOTHING` instead.

use jiff::Timestamp;
use sqlx::PgConnection;
use switchboard_domain::{input::*, *};

use super::{OrNotFound, rows, unique};
use crate::{Page, Result, StoreError, TokenInfo};

/// Fails with an `Invalid` error on `field` unless `id` is a row of `table`
/// in `account`. `table` is always a literal of this crate.
pub async fn ensure_exists(
    c: &mut PgConnection,
    table: &'static str,
    account: AccountId,
    id: i64,
    field: &'static str,
) -> Result<()> {
    let sql = format!("SELECT 1 FROM {table} WHERE id = $1 AND account_id = $2");
    let found: Option<i32> = sqlx::query_scalar(&sql)
        .bind(id)
        .bind(account.0)
        .fetch_optional(&mut *c)
        .await?;
    found.ok_or_else(|| DomainError::invalid(field, format!("no such record: {id}")))?;
    Ok(())
}

/// Creates an account with the built-in language skills, its super admin
/// (whatever role `admin` asks for) and the admin's first API token.
pub async fn create_account(
    c: &mut PgConnection,
    now: Timestamp,
    name: Name,
    mut admin: NewUser,
    admin_token_hash: String,
) -> Result<(Account, User)> {
    let id: i64 =
        sqlx::query_scalar("INSERT INTO accounts (name, created_at) VALUES ($1, $2) RETURNING id")
            .bind(name.as_str())
            .bind(rows::ms(now))
            .fetch_one(&mut *c)
            .await?;
    let account = Account {
        id: AccountId(id),
        name,
        created_at: now,
    };
    // One statement for all the languages.
    sqlx::query(
        "INSERT INTO skills (account_id, name, category) SELECT $1, lang, $3 FROM unnest($2::TEXT[]) AS lang",
    )
    .bind(account.id.0)
    .bind(BUILT_IN_LANGUAGES)
    .bind(LANGUAGE_CATEGORY)
    .execute(&mut *c)
    .await?;
    admin.role = Role::SuperAdmin;
    let user = create_user(c, now, account.id, admin).await?;
    let (a, u) = (account.id, user.id);
    create_token(c, now, a, u, "admin".into(), admin_token_hash).await?;
    Ok((account, user))
}

/// The oldest account, if any.
pub async fn first_account(c: &mut PgConnection) -> Result<Option<Account>> {
    sqlx::query("SELECT id, name, created_at FROM accounts ORDER BY id LIMIT 1")
        .fetch_optional(&mut *c)
        .await?
        .map(|r| {
            Ok(Account {
                id: AccountId(rows::get(&r, 0)?),
                name: rows::value(&r, 1)?,
                created_at: rows::ts(rows::get(&r, 2)?),
            })
        })
        .transpose()
}

/// Stores a new API token (by its hash) for a user of the account.
pub async fn create_token(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    user: UserId,
    name: String,
    token_hash: String,
) -> Result<TokenInfo> {
    get_user(c, account, user).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_tokens (account_id, user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)
         RETURNING id",
    )
    .bind(account.0)
    .bind(user.0)
    .bind(&name)
    .bind(&token_hash)
    .bind(rows::ms(now))
    .fetch_one(&mut *c)
    .await?;
    Ok(TokenInfo {
        id: TokenId(id),
        user_id: user,
        name,
        created_at: now,
    })
}

/// The principal a token hash stands for; none if unknown or if its user is
/// deactivated.
pub async fn authenticate(c: &mut PgConnection, token_hash: &str) -> Result<Option<Principal>> {
    sqlx::query(
        "SELECT t.account_id, t.user_id, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1 AND u.deactivated = 0",
    )
    .bind(token_hash)
    .fetch_optional(&mut *c)
    .await?
    .map(|r| {
        Ok(Principal {
            account_id: AccountId(rows::get(&r, 0)?),
            user_id: UserId(rows::get(&r, 1)?),
            role: rows::parsed(&r, 2)?,
        })
    })
    .transpose()
}

/// Creates a user with its teams and skills.
pub async fn create_user(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    input: NewUser,
) -> Result<User> {
    // Routing reads users, teams, skills and channels from its kept state.
    super::routing_state::invalidate(account);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (account_id, name, email, role, help_desk_seat, time_zone, created_at, capacity)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(account.0)
    .bind(input.name.as_str())
    .bind(input.email.as_str())
    .bind(input.role.as_str())
    .bind(i32::from(input.help_desk_seat))
    .bind(input.time_zone.as_str())
    .bind(rows::ms(now))
    .bind(rows::to_json(&input.capacity)?)
    .fetch_one(&mut *c)
    .await
    .map_err(|e| unique(e, "email", "a user with this e-mail address exists"))?;
    let id = UserId(id);
    set_user_teams(
        c,
        account,
        id,
        input.main_team_id,
        &input.secondary_team_ids,
    )
    .await?;
    set_user_skills(c, account, id, &input.skill_ids).await?;
    get_user(c, account, id).await
}

/// Replaces a user's team memberships.
async fn set_user_teams(
    c: &mut PgConnection,
    account: AccountId,
    user: UserId,
    main: Option<TeamId>,
    secondary: &[TeamId],
) -> Result<()> {
    sqlx::query("DELETE FROM team_members WHERE user_id = $1")
        .bind(user.0)
        .execute(&mut *c)
        .await?;
    // Main team first, then the secondary ones, each checked for the field
    // it came from.
    let teams = main
        .map(|t| (t, 1i32, "main_team_id"))
        .into_iter()
        .chain(secondary.iter().map(|&t| (t, 0i32, "secondary_team_ids")));
    for (team, is_main, field) in teams {
        ensure_exists(c, "teams", account, team.0, field).await?;
        // `DO NOTHING` (SQLite's `OR IGNORE`): a secondary entry repeating
        // the main team, or another secondary one, is dropped.
        sqlx::query(
            "INSERT INTO team_members (account_id, team_id, user_id, main) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(account.0)
        .bind(team.0)
        .bind(user.0)
        .bind(is_main)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// Replaces a user's skills.
async fn set_user_skills(
    c: &mut PgConnection,
    account: AccountId,
    user: UserId,
    skills: &[SkillId],
) -> Result<()> {
    sqlx::query("DELETE FROM user_skills WHERE user_id = $1")
        .bind(user.0)
        .execute(&mut *c)
        .await?;
    for skill in skills {
        ensure_exists(c, "skills", account, skill.0, "skill_ids").await?;
        // `DO NOTHING` (SQLite's `OR IGNORE`): a skill listed twice is kept once.
        sqlx::query(
            "INSERT INTO user_skills (account_id, user_id, skill_id) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(account.0)
        .bind(user.0)
        .bind(skill.0)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// One user of the account.
pub async fn get_user(c: &mut PgConnection, account: AccountId, id: UserId) -> Result<User> {
    let sql = format!(
        "SELECT {} FROM users u WHERE u.id = $1 AND u.account_id = $2",
        rows::USER_COLUMNS
    );
    let row = sqlx::query(&sql)
        .bind(id.0)
        .bind(account.0)
        .fetch_optional(&mut *c)
        .await
        .or_not_found("user")?;
    rows::user(&row)
}

/// The account's users, by id.
pub async fn list_users(c: &mut PgConnection, account: AccountId) -> Result<Vec<User>> {
    let sql = format!(
        "SELECT {} FROM users u WHERE u.account_id = $1 ORDER BY u.id",
        rows::USER_COLUMNS
    );
    rows::all(
        sqlx::query(&sql).bind(account.0).fetch_all(&mut *c).await?,
        rows::user,
    )
}

/// Applies a patch to a user. The account's last active super admin can be
/// neither demoted nor deactivated.
pub async fn update_user(
    c: &mut PgConnection,
    account: AccountId,
    id: UserId,
    patch: UserPatch,
) -> Result<User> {
    // Routing reads users, teams, skills and channels from its kept state.
    super::routing_state::invalidate(account);
    let mut user = get_user(c, account, id).await?;
    let patched = switchboard_domain::directory::patch_user(&mut user, &patch);
    if patched.leaves_super_admins {
        // The caller holds the account's routing lock, so two concurrent
        // demotions cannot each see the other super admin and both succeed.
        let others: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM users WHERE account_id = $1 AND id <> $2 AND role = 'super_admin' AND deactivated = 0",
        )
        .bind(account.0)
        .bind(id.0)
        .fetch_one(&mut *c)
        .await?;
        if others == 0 {
            return Err(StoreError::last_super_admin());
        }
    }
    sqlx::query(
        "UPDATE users SET name = $1, email = $2, role = $3, help_desk_seat = $4, deactivated = $5, time_zone = $6
         WHERE id = $7 AND account_id = $8",
    )
    .bind(user.name.as_str())
    .bind(user.email.as_str())
    .bind(user.role.as_str())
    .bind(i32::from(user.help_desk_seat))
    .bind(i32::from(user.deactivated))
    .bind(user.time_zone.as_str())
    .bind(id.0)
    .bind(account.0)
    .execute(&mut *c)
    .await
    .map_err(|e| unique(e, "email", "a user with this e-mail address exists"))?;
    if patch.main_team_id.is_some() || patch.secondary_team_ids.is_some() {
        let main = patch.main_team_id.unwrap_or(user.main_team_id);
        let secondary = patch.secondary_team_ids.unwrap_or(user.secondary_team_ids);
        set_user_teams(c, account, id, main, &secondary).await?;
    }
    if let Some(skills) = patch.skill_ids {
        set_user_skills(c, account, id, &skills).await?;
    }
    if let Some(capacity) = patch.capacity {
        sqlx::query("UPDATE users SET capacity = $1 WHERE id = $2 AND account_id = $3")
            .bind(rows::to_json(&capacity)?)
            .bind(id.0)
            .bind(account.0)
            .execute(&mut *c)
            .await?;
    }
    get_user(c, account, id).await
}

/// Creates a team with its members.
pub async fn create_team(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    input: NewTeam,
) -> Result<Team> {
    // Routing reads users, teams, skills and channels from its kept state.
    super::routing_state::invalidate(account);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO teams (account_id, name, created_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(account.0)
    .bind(input.name.as_str())
    .bind(rows::ms(now))
    .fetch_one(&mut *c)
    .await
    .map_err(|e| unique(e, "name", "a team with this name exists"))?;
    let id = TeamId(id);
    set_team_members(c, account, id, &input.members).await?;
    get_team(c, account, id).await
}

/// Replaces a team's members. A user listed twice, or made a main member
/// while already main elsewhere, is a conflict on `members`.
async fn set_team_members(
    c: &mut PgConnection,
    account: AccountId,
    team: TeamId,
    members: &[TeamMember],
) -> Result<()> {
    sqlx::query("DELETE FROM team_members WHERE team_id = $1")
        .bind(team.0)
        .execute(&mut *c)
        .await?;
    for member in members {
        ensure_exists(c, "users", account, member.user_id.0, "members").await?;
        // A violation aborts the transaction, which is fine: the conflict
        // ends it anyway.
        sqlx::query(
            "INSERT INTO team_members (account_id, team_id, user_id, main) VALUES ($1, $2, $3, $4)",
        )
        .bind(account.0)
        .bind(team.0)
        .bind(member.user_id.0)
        .bind(i32::from(member.main))
        .execute(&mut *c)
        .await
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

/// One team of the account.
pub async fn get_team(c: &mut PgConnection, account: AccountId, id: TeamId) -> Result<Team> {
    let sql = format!(
        "SELECT {} FROM teams t WHERE t.id = $1 AND t.account_id = $2",
        rows::TEAM_COLUMNS
    );
    let row = sqlx::query(&sql)
        .bind(id.0)
        .bind(account.0)
        .fetch_optional(&mut *c)
        .await
        .or_not_found("team")?;
    rows::team(&row)
}

/// The account's teams, by id.
pub async fn list_teams(c: &mut PgConnection, account: AccountId) -> Result<Vec<Team>> {
    let sql = format!(
        "SELECT {} FROM teams t WHERE t.account_id = $1 ORDER BY t.id",
        rows::TEAM_COLUMNS
    );
    rows::all(
        sqlx::query(&sql).bind(account.0).fetch_all(&mut *c).await?,
        rows::team,
    )
}

/// Applies a patch to a team.
pub async fn update_team(
    c: &mut PgConnection,
    account: AccountId,
    id: TeamId,
    patch: TeamPatch,
) -> Result<Team> {
    // Routing reads users, teams, skills and channels from its kept state.
    super::routing_state::invalidate(account);
    get_team(c, account, id).await?;
    if let Some(name) = patch.name {
        sqlx::query("UPDATE teams SET name = $1 WHERE id = $2 AND account_id = $3")
            .bind(name.as_str())
            .bind(id.0)
            .bind(account.0)
            .execute(&mut *c)
            .await
            .map_err(|e| unique(e, "name", "a team with this name exists"))?;
    }
    if let Some(members) = patch.members {
        set_team_members(c, account, id, &members).await?;
    }
    if let Some(hours) = patch.office_hours {
        if let Some(h) = &hours {
            h.hours.validate()?;
        }
        sqlx::query("UPDATE teams SET office_hours = $1 WHERE id = $2 AND account_id = $3")
            .bind(rows::to_json_opt(hours.as_ref())?)
            .bind(id.0)
            .bind(account.0)
            .execute(&mut *c)
            .await?;
    }
    get_team(c, account, id).await
}

/// Creates a skill.
pub async fn create_skill(
    c: &mut PgConnection,
    account: AccountId,
    input: NewSkill,
) -> Result<Skill> {
    // Routing reads users, teams, skills and channels from its kept state.
    super::routing_state::invalidate(account);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO skills (account_id, name, category) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(account.0)
    .bind(input.name.as_str())
    .bind(input.category.as_str())
    .fetch_one(&mut *c)
    .await
    .map_err(|e| unique(e, "name", "a skill with this name exists"))?;
    Ok(Skill {
        id: SkillId(id),
        name: input.name,
        category: input.category,
    })
}

/// The account's skills, by category then name.
pub async fn list_skills(c: &mut PgConnection, account: AccountId) -> Result<Vec<Skill>> {
    // SQLite orders the category bytewise and the name case-insensitively
    // (the column is NOCASE); "C" keeps the server's locale out of it.
    let found = sqlx::query(
        "SELECT id, name, category FROM skills WHERE account_id = $1
         ORDER BY category COLLATE \"C\", lower(name) COLLATE \"C\"",
    )
    .bind(account.0)
    .fetch_all(&mut *c)
    .await?;
    rows::all(found, |r| {
        Ok(Skill {
            id: SkillId(rows::get(r, 0)?),
            name: rows::value(r, 1)?,
            category: rows::value(r, 2)?,
        })
    })
}

/// Creates a contact with its visitor tokens.
pub async fn create_contact(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    input: NewContact,
) -> Result<Contact> {
    if let Some(owner) = input.owner_user_id {
        ensure_exists(c, "users", account, owner.0, "owner_user_id").await?;
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO contacts (account_id, name, email, phone, owner_user_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id",
    )
    .bind(account.0)
    .bind(input.name.as_ref().map(Name::as_str))
    .bind(input.email.as_ref().map(EmailAddress::as_str))
    .bind(input.phone.as_ref().map(E164::as_str))
    .bind(input.owner_user_id.map(|u| u.0))
    .bind(rows::ms(now))
    .fetch_one(&mut *c)
    .await
    .map_err(contact_clash)?;
    let id = ContactId(id);
    set_visitor_tokens(c, account, id, &input.visitor_tokens).await?;
    get_contact(c, account, id).await
}

/// A contact uniqueness clash, reported on the field that clashed (the
/// violated index is `contacts_by_phone` or `contacts_by_email`).
fn contact_clash(e: sqlx::Error) -> StoreError {
    let on_phone = match &e {
        sqlx::Error::Database(db) => db
            .constraint()
            .map_or_else(|| db.message().contains("phone"), |c| c.contains("phone")),
        _ => false,
    };
    let field = if on_phone { "phone" } else { "email" };
    unique(e, field, &format!("a contact with this {field} exists"))
}

/// Replaces a contact's visitor tokens. A token already identifying another
/// contact of the account is a conflict.
async fn set_visitor_tokens(
    c: &mut PgConnection,
    account: AccountId,
    contact: ContactId,
    tokens: &[String],
) -> Result<()> {
    sqlx::query("DELETE FROM contact_visitor_tokens WHERE contact_id = $1")
        .bind(contact.0)
        .execute(&mut *c)
        .await?;
    for token in tokens {
        let token = token.trim();
        if token.is_empty() || token.len() > 200 || token.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "visitor_tokens",
                "tokens are 1 to 200 visible characters",
            )
            .into());
        }
        // `DO NOTHING` rather than catching the violation, which would
        // abort the transaction; the owner is then looked up.
        let inserted = sqlx::query(
            "INSERT INTO contact_visitor_tokens (account_id, token, contact_id) VALUES ($1, $2, $3)
             ON CONFLICT (account_id, token) DO NOTHING",
        )
        .bind(account.0)
        .bind(token)
        .bind(contact.0)
        .execute(&mut *c)
        .await?
        .rows_affected();
        if inserted == 0 {
            let owner: i64 = sqlx::query_scalar(
                "SELECT contact_id FROM contact_visitor_tokens WHERE account_id = $1 AND token = $2",
            )
            .bind(account.0)
            .bind(token)
            .fetch_one(&mut *c)
            .await?;
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

/// One contact of the account.
pub async fn get_contact(
    c: &mut PgConnection,
    account: AccountId,
    id: ContactId,
) -> Result<Contact> {
    let sql = format!(
        "SELECT {} FROM contacts c WHERE c.id = $1 AND c.account_id = $2",
        rows::CONTACT_COLUMNS
    );
    let row = sqlx::query(&sql)
        .bind(id.0)
        .bind(account.0)
        .fetch_optional(&mut *c)
        .await
        .or_not_found("contact")?;
    rows::contact(&row)
}

/// A page of the account's contacts, newest first; `cursor` is the last id
/// of the previous page.
pub async fn list_contacts(
    c: &mut PgConnection,
    account: AccountId,
    cursor: Option<i64>,
    limit: u32,
) -> Result<Page<Contact>> {
    let sql = format!(
        "SELECT {} FROM contacts c WHERE c.account_id = $1 AND c.id < $2 ORDER BY c.id DESC LIMIT $3",
        rows::CONTACT_COLUMNS
    );
    let found = sqlx::query(&sql)
        .bind(account.0)
        .bind(cursor.unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *c)
        .await?;
    let items = rows::all(found, rows::contact)?;
    Ok(crate::paginate(items, limit, |c| c.id.0))
}

/// Applies a patch to a contact.
pub async fn update_contact(
    c: &mut PgConnection,
    account: AccountId,
    id: ContactId,
    patch: ContactPatch,
) -> Result<Contact> {
    let mut contact = get_contact(c, account, id).await?;
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
            ensure_exists(c, "users", account, owner.0, "owner_user_id").await?;
        }
        contact.owner_user_id = v;
    }
    sqlx::query(
        "UPDATE contacts SET name = $1, email = $2, phone = $3, owner_user_id = $4 WHERE id = $5 AND account_id = $6",
    )
    .bind(contact.name.as_ref().map(Name::as_str))
    .bind(contact.email.as_ref().map(EmailAddress::as_str))
    .bind(contact.phone.as_ref().map(E164::as_str))
    .bind(contact.owner_user_id.map(|u| u.0))
    .bind(id.0)
    .bind(account.0)
    .execute(&mut *c)
    .await
    .map_err(contact_clash)?;
    if let Some(tokens) = patch.visitor_tokens {
        set_visitor_tokens(c, account, id, &tokens).await?;
    }
    get_contact(c, account, id).await
}

/// Creates a channel under `key` (unique across accounts).
pub async fn create_channel(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    input: NewChannel,
    key: String,
) -> Result<Channel> {
    // Routing reads users, teams, skills and channels from its kept state.
    super::routing_state::invalidate(account);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO channels (account_id, kind, name, key, settings, created_at) VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id",
    )
    .bind(account.0)
    .bind(input.kind.as_str())
    .bind(input.name.as_str())
    .bind(&key)
    .bind(serde_json::Value::Object(input.settings).to_string())
    .bind(rows::ms(now))
    .fetch_one(&mut *c)
    .await?;
    get_channel(c, account, ChannelId(id)).await
}

/// One channel of the account.
pub async fn get_channel(
    c: &mut PgConnection,
    account: AccountId,
    id: ChannelId,
) -> Result<Channel> {
    let sql = format!(
        "SELECT {} FROM channels WHERE id = $1 AND account_id = $2",
        rows::CHANNEL_COLUMNS
    );
    let row = sqlx::query(&sql)
        .bind(id.0)
        .bind(account.0)
        .fetch_optional(&mut *c)
        .await
        .or_not_found("channel")?;
    rows::channel(&row)
}

/// The account's channels, by id.
pub async fn list_channels(c: &mut PgConnection, account: AccountId) -> Result<Vec<Channel>> {
    let sql = format!(
        "SELECT {} FROM channels WHERE account_id = $1 ORDER BY id",
        rows::CHANNEL_COLUMNS
    );
    rows::all(
        sqlx::query(&sql).bind(account.0).fetch_all(&mut *c).await?,
        rows::channel,
    )
}

/// Applies a patch to a channel; a routing rule must only name records of
/// the account.
pub async fn update_channel(
    c: &mut PgConnection,
    account: AccountId,
    id: ChannelId,
    patch: ChannelPatch,
) -> Result<Channel> {
    // Routing reads users, teams, skills and channels from its kept state.
    super::routing_state::invalidate(account);
    let mut channel = get_channel(c, account, id).await?;
    if let Some(v) = patch.name {
        channel.name = v;
    }
    if let Some(v) = patch.settings {
        channel.settings = v;
    }
    if let Some(v) = patch.routing {
        if let Some(rule) = &v {
            check_rule(c, account, rule).await?;
        }
        channel.routing = v;
    }
    if let Some(v) = patch.office_hours {
        if let Some(h) = &v {
            h.hours.validate()?;
        }
        channel.office_hours = v;
    }
    sqlx::query(
        "UPDATE channels SET name = $1, settings = $2, routing = $3, office_hours = $4 WHERE id = $5 AND account_id = $6",
    )
    .bind(channel.name.as_str())
    .bind(serde_json::Value::Object(channel.settings.clone()).to_string())
    .bind(rows::to_json_opt(channel.routing.as_ref())?)
    .bind(rows::to_json_opt(channel.office_hours.as_ref())?)
    .bind(id.0)
    .bind(account.0)
    .execute(&mut *c)
    .await?;
    Ok(channel)
}

/// Checks a routing rule's shape and that every id it names is in the account.
async fn check_rule(
    c: &mut PgConnection,
    account: AccountId,
    rule: &routing::RoutingRule,
) -> Result<()> {
    rule.validate()?;
    for (named, id, field) in switchboard_domain::directory::rule_references(rule) {
        ensure_exists(c, named.table(), account, id, field).await?;
    }
    Ok(())
}
