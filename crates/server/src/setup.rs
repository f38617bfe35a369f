//! Creating accounts, the first start, and the demo help desk. Used by the
//! binary's `serve` and `account create` commands and by tests.

use std::{io::Write, path::Path};

use serde_json::json;
use switchboard_domain::{input::*, *};
use switchboard_store::{Store, StoreError};

use crate::auth;

/// Where the first super admin's token is written, inside the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Creates an account with its super admin; returns the account, the admin
/// and the admin's API token (the only time it is visible).
pub async fn create_account(
    store: &dyn Store,
    name: &str,
    admin_name: &str,
    admin_email: &str,
) -> Result<(Account, User, String), SetupError> {
    let token = auth::new_token();
    let (account, admin) = store
        .create_account(
            Name::try_from(name.to_owned())?,
            admin_input(admin_name, admin_email)?,
            auth::hash_token(&token),
        )
        .await?;
    Ok((account, admin, token))
}

fn admin_input(name: &str, email: &str) -> Result<NewUser, SetupError> {
    Ok(NewUser {
        name: Name::try_from(name.to_owned())?,
        email: EmailAddress::try_from(email.to_owned())?,
        role: Role::SuperAdmin,
        help_desk_seat: true,
        time_zone: TimeZoneName::utc(),
        main_team_id: None,
        secondary_team_ids: vec![],
        skill_ids: vec![],
        capacity: Default::default(),
    })
}

/// What the first start did.
#[derive(Debug, PartialEq, Eq)]
pub enum FirstStart {
    /// The database already had an account; nothing was done.
    AlreadySetUp,
    /// A default account and super admin were created; the token is in the file.
    Created {
        /// Where the admin token was written.
        token_file: std::path::PathBuf,
    },
}

/// On an empty database, creates the default account and its super admin and
/// writes the admin's token to `<data_dir>/admin-token` (mode 0600).
///
/// The token file is written and synced *before* the account is committed: a
/// crash in between leaves an empty database, and the next start simply does
/// it again. A database that already has an account is left alone, and so is
/// its token file.
pub async fn first_start(store: &dyn Store, data_dir: &Path) -> Result<FirstStart, SetupError> {
    if store.account_count().await? > 0 {
        return Ok(FirstStart::AlreadySetUp);
    }
    let token = auth::new_token();
    let token_file = data_dir.join(ADMIN_TOKEN_FILE);
    write_secret(&token_file, &token)?;
    store
        .create_account(
            Name::try_from("Default".to_owned())?,
            admin_input("Admin", "admin@localhost")?,
            auth::hash_token(&token),
        )
        .await?;
    Ok(FirstStart::Created { token_file })
}

/// Writes `secret` to `path`, readable by the owner only, and syncs it.
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        // `mode` applies only when the file is created; tighten an old one too.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    writeln!(file, "{secret}")?;
    file.sync_all()
}

/// Why setting up failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A given value is not acceptable.
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The token file could not be written.
    #[error("cannot write the admin token file: {0}")]
    Io(#[from] std::io::Error),
}

fn n(s: &str) -> Name {
    Name::try_from(s.to_owned()).expect("demo names are valid")
}

fn e(s: &str) -> EmailAddress {
    EmailAddress::try_from(s.to_owned()).expect("demo addresses are valid")
}

fn tz(s: &str) -> TimeZoneName {
    TimeZoneName::try_from(s.to_owned()).expect("demo zones are valid")
}

/// Seeds the first account with a small, realistic help desk: users in four
/// time zones, two teams, skills, one channel of each kind, contacts and
/// tickets in several states. Does nothing if the account already has teams.
pub async fn seed_demo(store: &dyn Store) -> Result<bool, SetupError> {
    let Some(account) = store.first_account().await? else {
        return Ok(false);
    };
    let a = account.id;
    if !store.list_teams(a).await?.is_empty() {
        return Ok(false);
    }
    let skill = |name: &str| {
        let name = name.to_owned();
        async move {
            let skills = store.list_skills(a).await?;
            Ok::<_, SetupError>(
                skills
                    .into_iter()
                    .find(|s| s.name.as_str() == name)
                    .map(|s| s.id),
            )
        }
    };
    let billing_skill = store
        .create_skill(
            a,
            NewSkill {
                name: n("Billing"),
                category: n("topic"),
            },
        )
        .await?
        .id;
    let tech_skill = store
        .create_skill(
            a,
            NewSkill {
                name: n("Technical"),
                category: n("topic"),
            },
        )
        .await?
        .id;
    let french = skill("French").await?.into_iter().collect::<Vec<_>>();
    let spanish = skill("Spanish").await?.into_iter().collect::<Vec<_>>();
    let tier1 = store
        .create_team(
            a,
            NewTeam {
                name: n("Tier 1"),
                members: vec![],
            },
        )
        .await?;
    let billing = store
        .create_team(
            a,
            NewTeam {
                name: n("Billing"),
                members: vec![],
            },
        )
        .await?;
    let people = [
        (
            "Ana Lima",
            "ana@demo.example",
            "Europe/Paris",
            true,
            Some(tier1.id),
            vec![billing.id],
            [french.clone(), vec![billing_skill]].concat(),
        ),
        (
            "Ben Okafor",
            "ben@demo.example",
            "America/New_York",
            true,
            Some(tier1.id),
            vec![],
            vec![tech_skill],
        ),
        (
            "Chen Wei",
            "chen@demo.example",
            "Asia/Shanghai",
            true,
            Some(billing.id),
            vec![],
            vec![billing_skill],
        ),
        (
            "Dana Cruz",
            "dana@demo.example",
            "America/Los_Angeles",
            false,
            Some(tier1.id),
            vec![],
            spanish.clone(),
        ),
    ];
    let mut users = Vec::new();
    for (name, email, zone, seat, main, secondary, skills) in people {
        let user = store
            .create_user(
                a,
                NewUser {
                    name: n(name),
                    email: e(email),
                    role: Role::Agent,
                    help_desk_seat: seat,
                    time_zone: tz(zone),
                    main_team_id: main,
                    secondary_team_ids: secondary,
                    skill_ids: skills,
                    capacity: Default::default(),
                },
            )
            .await?;
        users.push(user);
    }
    let mut channels = Vec::new();
    for (kind, name, settings) in [
        (
            ChannelKind::Email,
            "Support inbox",
            json!({"addresses": ["support@demo.example"]}),
        ),
        (
            ChannelKind::Form,
            "Contact form",
            json!({"fields": {"email": "email", "message": "message"}}),
        ),
        (ChannelKind::Chat, "Website chat", json!({})),
        (
            ChannelKind::Whatsapp,
            "WhatsApp",
            json!({"phone_number_id": "000000000000000"}),
        ),
        (
            ChannelKind::Calls,
            "Support line",
            json!({"number": "+15550100000"}),
        ),
        (ChannelKind::Custom, "Partner portal", json!({})),
    ] {
        let settings = settings.as_object().cloned().unwrap_or_default();
        let channel = store
            .create_channel(
                a,
                NewChannel {
                    kind,
                    name: n(name),
                    settings,
                },
                auth::new_public_key(),
            )
            .await?;
        channels.push(channel);
    }
    // Two channels route automatically so the demo shows explanations: the
    // inbox load-balances over Tier 1 (French tickets need French), the chat
    // goes round robin over Tier 1 and Billing.
    let rules = [
        (
            0,
            json!({"assign_to": "users_and_teams", "teams": [tier1.id], "distribution": "load_balanced",
                   "skills": [{"property": "language", "equals": "fr", "skill_id": french.first(), "optional": true}],
                   "relax_after_seconds": 300, "waiting_queue": true}),
        ),
        (
            2,
            json!({"assign_to": "users_and_teams", "teams": [tier1.id, billing.id], "distribution": "round_robin"}),
        ),
    ];
    for (index, rule) in rules {
        let routing = serde_json::from_value(rule)
            .map_err(|e| DomainError::invalid("routing", e.to_string()))?;
        let patch = ChannelPatch {
            routing: Some(Some(routing)),
            ..ChannelPatch::default()
        };
        store.update_channel(a, channels[index].id, patch).await?;
    }
    store
        .create_contact(
            a,
            NewContact {
                name: Some(n("Cleo Martin")),
                email: Some(e("cleo@customer.example")),
                phone: Some(E164::try_from("+33612345678".to_owned())?),
                owner_user_id: Some(users[0].id),
                visitor_tokens: vec!["demo-visitor-cleo".into()],
            },
        )
        .await?;
    let system = Actor::System;
    let tickets = [
        (
            "Invoice charged twice",
            0,
            Some("cleo@customer.example"),
            Priority::High,
            json!({"category": "billing", "language": "fr"}),
        ),
        (
            "Cannot log in after password reset",
            2,
            Some("diego@customer.example"),
            Priority::Medium,
            json!({"language": "es"}),
        ),
        (
            "Question about delivery times",
            3,
            None,
            Priority::Low,
            json!({}),
        ),
        (
            "Call back about contract renewal",
            4,
            None,
            Priority::Medium,
            json!({}),
        ),
        (
            "Form: request a demo",
            1,
            Some("erin@customer.example"),
            Priority::Medium,
            json!({}),
        ),
        (
            "Sync from partner portal failing",
            5,
            None,
            Priority::Urgent,
            json!({"category": "technical"}),
        ),
    ];
    let mut created = Vec::new();
    for (subject, channel, email, priority, properties) in tickets {
        let input = NewTicket {
            subject: n(subject),
            content: format!("{subject}. (Demo ticket.)"),
            channel_id: Some(channels[channel].id),
            contact: email.map(|m| ContactRef {
                email: Some(e(m)),
                phone: None,
                name: None,
            }),
            visitor_token: None,
            priority,
            properties: properties.as_object().cloned().unwrap_or_default(),
        };
        created.push(store.create_ticket(a, input, None, system).await?.value);
    }
    store
        .set_owner(
            a,
            created[0].id,
            Owner {
                user_id: Some(users[0].id),
                team_id: None,
            },
            system,
        )
        .await?;
    store
        .set_owner(
            a,
            created[1].id,
            Owner {
                user_id: None,
                team_id: Some(tier1.id),
            },
            system,
        )
        .await?;
    let reply = switchboard_store::NewMessage {
        kind: MessageKind::Reply,
        author: Actor::User {
            user_id: users[1].id,
        },
        body: "Thanks for reaching out! Could you tell us which browser you use?".into(),
        external_id: None,
    };
    store.add_message(a, created[5].id, reply).await?;
    Ok(true)
}
