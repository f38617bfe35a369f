//! Manual triage rules, as pure functions. The store calls them inside the
//! transaction that applies them, so the rule and the data it reads can never
//! disagree, and every backend applies the same rule.

use crate::{DomainError, MessageKind, Owner, Stage, Status, TeamId, User};

/// The owner a ticket gets when it is assigned by hand.
///
/// - user and team given: exactly that;
/// - only a user: the ticket keeps its team if the user belongs to it, and
///   otherwise takes the user's main team (so the ticket shows in that team's
///   views);
/// - only a team: the team owns it and nobody in particular does;
/// - neither: unassigned.
///
/// `user` is the requested user, when one is requested.
pub fn manual_owner(requested: Owner, current: Owner, user: Option<&User>) -> Owner {
    match (user, requested.team_id) {
        (Some(user), Some(team)) => Owner {
            user_id: Some(user.id),
            team_id: Some(team),
        },
        (Some(user), None) => owner_for_user(user, current),
        (None, team) => Owner {
            user_id: None,
            team_id: team,
        },
    }
}

fn owner_for_user(user: &User, current: Owner) -> Owner {
    let keeps_team = |t: &TeamId| user.team_ids().contains(t);
    Owner {
        user_id: Some(user.id),
        team_id: current.team_id.filter(keeps_team).or(user.main_team_id),
    }
}

/// The owner after `author` adds a message of `kind`: a public reply to a
/// ticket with no owner user makes the replier its owner. `None` means the
/// owner does not change.
pub fn owner_after_message(current: Owner, kind: MessageKind, author: &User) -> Option<Owner> {
    (kind == MessageKind::Reply && current.user_id.is_none())
        .then(|| owner_for_user(author, current))
}

/// Status and stage after a message: our reply waits on the contact, the
/// contact's message waits on us (and reopens a closed ticket), a note
/// changes nothing.
pub fn stage_after_message(status: Status, stage: Stage, kind: MessageKind) -> (Status, Stage) {
    match kind {
        MessageKind::Reply if status == Status::Open => (Status::Open, Stage::WaitingOnContact),
        MessageKind::Inbound => (Status::Open, Stage::WaitingOnUs),
        _ => (status, stage),
    }
}

/// Status and stage after a requested change of either or both. They move
/// together: stage `closed` if and only if status `closed`. Reopening
/// without a stage lands in `waiting_on_us`.
pub fn change_status(
    current: (Status, Stage),
    status: Option<Status>,
    stage: Option<Stage>,
) -> Result<(Status, Stage), DomainError> {
    match (status, stage) {
        (None, None) => Ok(current),
        (Some(Status::Closed), None | Some(Stage::Closed)) | (None, Some(Stage::Closed)) => {
            Ok((Status::Closed, Stage::Closed))
        }
        (Some(Status::Closed), Some(_)) => Err(DomainError::invalid(
            "stage",
            "a closed ticket's stage is `closed`",
        )),
        (Some(Status::Open), Some(Stage::Closed)) => Err(DomainError::invalid(
            "stage",
            "an open ticket cannot be in stage `closed`",
        )),
        (Some(Status::Open) | None, Some(stage)) => Ok((Status::Open, stage)),
        (Some(Status::Open), None) if current.0 == Status::Open => Ok(current),
        (Some(Status::Open), None) => Ok((Status::Open, Stage::WaitingOnUs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EmailAddress, Name, Role, TimeZoneName, UserId};

    fn user(id: i64, main: Option<i64>, secondary: &[i64]) -> User {
        User {
            id: UserId(id),
            name: Name::try_from("U".to_owned()).unwrap(),
            email: EmailAddress::try_from(format!("u{id}@example.com")).unwrap(),
            role: Role::Agent,
            help_desk_seat: true,
            deactivated: false,
            time_zone: TimeZoneName::utc(),
            main_team_id: main.map(TeamId),
            secondary_team_ids: secondary.iter().copied().map(TeamId).collect(),
            skill_ids: vec![],
            capacity: Default::default(),
            created_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn owner(u: Option<i64>, t: Option<i64>) -> Owner {
        Owner {
            user_id: u.map(UserId),
            team_id: t.map(TeamId),
        }
    }

    #[test]
    fn assigning_a_user_keeps_a_team_they_belong_to() {
        let u = user(1, Some(10), &[20]);
        let got = manual_owner(owner(Some(1), None), owner(None, Some(20)), Some(&u));
        assert_eq!(got, owner(Some(1), Some(20)));
    }

    #[test]
    fn assigning_a_user_outside_the_team_moves_it_to_their_main_team() {
        let u = user(1, Some(10), &[]);
        let got = manual_owner(owner(Some(1), None), owner(Some(2), Some(30)), Some(&u));
        assert_eq!(got, owner(Some(1), Some(10)));
    }

    #[test]
    fn assigning_a_team_clears_the_user_and_empty_unassigns() {
        assert_eq!(
            manual_owner(owner(None, Some(7)), owner(Some(1), Some(3)), None),
            owner(None, Some(7))
        );
        assert_eq!(
            manual_owner(Owner::default(), owner(Some(1), Some(3)), None),
            Owner::default()
        );
    }

    #[test]
    fn only_a_reply_to_an_ownerless_ticket_assigns_the_replier() {
        let u = user(5, None, &[]);
        assert_eq!(
            owner_after_message(owner(None, Some(9)), MessageKind::Reply, &u),
            Some(owner(Some(5), None))
        );
        assert_eq!(
            owner_after_message(owner(Some(1), None), MessageKind::Reply, &u),
            None
        );
        assert_eq!(
            owner_after_message(Owner::default(), MessageKind::Note, &u),
            None
        );
    }

    #[test]
    fn status_and_stage_move_together() {
        let open_new = (Status::Open, Stage::New);
        assert_eq!(
            change_status(open_new, Some(Status::Closed), None),
            Ok((Status::Closed, Stage::Closed))
        );
        assert_eq!(
            change_status(open_new, None, Some(Stage::Closed)),
            Ok((Status::Closed, Stage::Closed))
        );
        assert_eq!(
            change_status((Status::Closed, Stage::Closed), Some(Status::Open), None),
            Ok((Status::Open, Stage::WaitingOnUs))
        );
        assert!(change_status(open_new, Some(Status::Open), Some(Stage::Closed)).is_err());
        assert!(change_status(open_new, Some(Status::Closed), Some(Stage::New)).is_err());
        assert_eq!(
            stage_after_message(Status::Closed, Stage::Closed, MessageKind::Inbound),
            (Status::Open, Stage::WaitingOnUs)
        );
    }
}
