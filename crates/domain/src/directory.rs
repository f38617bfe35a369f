//! Rules about users and channels' rules, decided once for every backend.

use crate::{Role, User, input::UserPatch, routing::RoutingRule};

/// What a user patch did to the account's super admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserPatched {
    /// The user was an active super admin and is not any more: the store
    /// must check another active super admin remains
    /// (and refuse with [`LAST_SUPER_ADMIN`] if none does).
    pub leaves_super_admins: bool,
}

fn active_super_admin(u: &User) -> bool {
    u.role == Role::SuperAdmin && !u.deactivated
}

/// Applies the plain fields of `patch` (name, e-mail, role, seat,
/// deactivation, time zone) to `user`. Teams, skills and capacity are the
/// store's to write, as they live in rows of their own.
pub fn patch_user(user: &mut User, patch: &UserPatch) -> UserPatched {
    let was = active_super_admin(user);
    if let Some(v) = &patch.name {
        user.name = v.clone();
    }
    if let Some(v) = &patch.email {
        user.email = v.clone();
    }
    if let Some(v) = patch.role {
        user.role = v;
    }
    if let Some(v) = patch.help_desk_seat {
        user.help_desk_seat = v;
    }
    if let Some(v) = patch.deactivated {
        user.deactivated = v;
    }
    if let Some(v) = &patch.time_zone {
        user.time_zone = v.clone();
    }
    UserPatched {
        leaves_super_admins: was && !active_super_admin(user),
    }
}

/// Why a patch that would leave the account without an active super admin
/// is refused (a conflict on `role`).
pub const LAST_SUPER_ADMIN: &str =
    "the account's last active super admin cannot be demoted or deactivated";

/// What a record named in a routing rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// A user.
    User,
    /// A team.
    Team,
    /// A skill.
    Skill,
}

/// Every record `rule` names, with the field to blame if it does not exist
/// in the account (`routing.users`, `routing.fallback.teams`, ...).
pub fn rule_references(rule: &RoutingRule) -> Vec<(Named, i64, &'static str)> {
    let mut refs: Vec<(Named, i64, &'static str)> = Vec::new();
    refs.extend(
        rule.users
            .iter()
            .map(|u| (Named::User, u.0, "routing.users")),
    );
    refs.extend(
        rule.teams
            .iter()
            .map(|t| (Named::Team, t.0, "routing.teams")),
    );
    if let Some(f) = &rule.fallback {
        refs.extend(
            f.users
                .iter()
                .map(|u| (Named::User, u.0, "routing.fallback.users")),
        );
        refs.extend(
            f.teams
                .iter()
                .map(|t| (Named::Team, t.0, "routing.fallback.teams")),
        );
    }
    refs.extend(
        rule.skills
            .iter()
            .map(|s| (Named::Skill, s.skill_id.0, "routing.skills")),
    );
    refs
}

impl Named {
    /// The table the record lives in.
    pub fn table(self) -> &'static str {
        match self {
            Named::User => "users",
            Named::Team => "teams",
            Named::Skill => "skills",
        }
    }
}
