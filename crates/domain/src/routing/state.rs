//! The routing state of one account, kept between decisions.
//!
//! A decision needs every candidate the rule can reach: seat, deactivation,
//! availability, skills, capacity, open and load counters, round-robin
//! position, main team. Reading those from SQL for every decision costs a
//! few statements per candidate, so a routed create over 1,000 agents took
//! milliseconds. Instead the store keeps a [`RoutingState`] per account and
//! changes it together with the rows it writes: counters on every ticket
//! save ([`RoutingState::counts_changed`]), round-robin positions and last
//! assignment times on every assignment. Anything rarer (a user, team,
//! skill, channel or availability change) makes the store drop the state
//! and load it again, in one statement per table.
//!
//! The state is plain data with no I/O; *when* it is exact is the store's
//! business (the SQLite writer thread is the only writer; PostgreSQL nodes
//! check a version under the account's routing lock).
//!
//! Availability is cached per user with the instant it was computed and
//! the next instant it can change ([`Availability::until`]); between the
//! two it cannot change, so most decisions compute no time zone at all.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use jiff::{Timestamp, tz::TimeZone};

use super::{
    AssignTo, Availability, AvailabilitySettings, Candidate, Capacity, RoutingRule, Snapshot,
    TeamInfo, TicketFacts, TypeCounts, ranked_eligible, reachable,
};
use crate::{ChannelId, ChannelKind, SkillId, TeamId, TicketType, UserId};

/// What routing knows about one user.
#[derive(Debug, Clone)]
pub struct UserState {
    /// Deactivated users are never routed to.
    pub deactivated: bool,
    /// Whether the user has a help desk seat.
    pub seated: bool,
    /// The user's time zone (working hours are read in it).
    pub zone: TimeZone,
    /// Manual status, out of office, working hours.
    pub settings: AvailabilitySettings,
    /// Capacity limits.
    pub capacity: Capacity,
    /// Open tickets owned, per type.
    pub open: TypeCounts,
    /// Tickets assigned in the last 30 days and still open, per type.
    pub load: TypeCounts,
    /// When the user was last given a ticket.
    pub last_assigned_at: Option<Timestamp>,
    /// The user's main team.
    pub main_team_id: Option<TeamId>,
    /// The user's skills.
    pub skills: Vec<SkillId>,
    /// Availability as last computed, and when: valid until its `until`.
    cached: Option<(Timestamp, Availability)>,
}

impl UserState {
    /// A user with no counters, never assigned, availability not computed.
    pub fn new(
        deactivated: bool,
        seated: bool,
        zone: TimeZone,
        settings: AvailabilitySettings,
        capacity: Capacity,
    ) -> Self {
        Self {
            deactivated,
            seated,
            zone,
            settings,
            capacity,
            open: TypeCounts::default(),
            load: TypeCounts::default(),
            last_assigned_at: None,
            main_team_id: None,
            skills: Vec::new(),
            cached: None,
        }
    }

    /// Availability at `now`, from the cache while it holds.
    pub fn availability(&mut self, now: Timestamp) -> Availability {
        if let Some((from, a)) = self.cached
            && from <= now
            && a.until().is_none_or(|u| now < u)
        {
            return a;
        }
        let a = self.settings.at(&self.zone, now);
        self.cached = Some((now, a));
        a
    }
}

/// A channel as routing sees it.
#[derive(Debug, Clone)]
pub struct ChannelState {
    /// Its kind (forms and chat identify visitors by token).
    pub kind: ChannelKind,
    /// Its routing rule, if it has one.
    pub rule: Option<Arc<RoutingRule>>,
    /// The current round-robin cycle (starts at 1; 0 before the first).
    pub rr_cycle: u64,
    /// The last cycle in which each user got a ticket from this channel.
    pub rr_last: HashMap<UserId, u64>,
    /// The snapshot of the last decision, kept up to date (see
    /// [`RoutingState::decide`]).
    pub cached: Option<Cached>,
}

impl ChannelState {
    /// A channel with no round-robin history.
    pub fn new(kind: ChannelKind, rule: Option<Arc<RoutingRule>>, rr_cycle: u64) -> Self {
        Self {
            kind,
            rule,
            rr_cycle,
            rr_last: HashMap::new(),
            cached: None,
        }
    }
}

/// A channel's snapshot, kept between decisions.
///
/// Why: at 1,000 candidates, building the snapshot (a lookup per user,
/// ~100 bytes copied per candidate) cost more than the decision itself.
/// The kept snapshot is changed in place by the same calls that change the
/// state (counters, assignments, round robin); availability is computed
/// again only when one of its candidates' may have changed.
#[derive(Debug, Clone)]
pub struct Cached {
    snapshot: Snapshot,
    /// Position of each candidate in `snapshot.candidates`.
    index: HashMap<UserId, usize>,
    /// When availability was computed, and the first instant it may change.
    computed_at: Timestamp,
    next_change: Option<Timestamp>,
}

/// The main and secondary members of a team.
#[derive(Debug, Clone, Default)]
struct Members {
    main: Vec<UserId>,
    secondary: Vec<UserId>,
}

/// Everything routing reads about one account, kept up to date by the store.
#[derive(Debug, Clone, Default)]
pub struct RoutingState {
    users: HashMap<UserId, UserState>,
    teams: BTreeMap<TeamId, Members>,
    channels: HashMap<ChannelId, ChannelState>,
    skill_names: BTreeMap<SkillId, String>,
}

impl RoutingState {
    /// Adds (or replaces) a user.
    pub fn insert_user(&mut self, id: UserId, user: UserState) {
        self.users.insert(id, user);
    }

    /// Adds a team with no members yet.
    pub fn insert_team(&mut self, id: TeamId) {
        self.teams.entry(id).or_default();
    }

    /// Adds `user` to `team`, as a main member or not. The user's main team
    /// is taken from here.
    pub fn insert_member(&mut self, team: TeamId, user: UserId, main: bool) {
        let members = self.teams.entry(team).or_default();
        let list = if main {
            &mut members.main
        } else {
            &mut members.secondary
        };
        if let Err(at) = list.binary_search(&user) {
            list.insert(at, user);
        }
        if main && let Some(u) = self.users.get_mut(&user) {
            u.main_team_id = Some(team);
        }
    }

    /// Gives `user` the skill `skill`.
    pub fn insert_user_skill(&mut self, user: UserId, skill: SkillId) {
        if let Some(u) = self.users.get_mut(&user)
            && !u.skills.contains(&skill)
        {
            u.skills.push(skill);
        }
    }

    /// Names a skill (for explanations).
    pub fn insert_skill(&mut self, id: SkillId, name: String) {
        self.skill_names.insert(id, name);
    }

    /// Adds (or replaces) a channel.
    pub fn insert_channel(&mut self, id: ChannelId, channel: ChannelState) {
        self.channels.insert(id, channel);
    }

    /// The channel `id`, if it belongs to the account.
    pub fn channel(&self, id: ChannelId) -> Option<&ChannelState> {
        self.channels.get(&id)
    }

    /// Every member of `team` (main and secondary), by id; none for a team
    /// the account does not have.
    pub fn team_members(&self, team: TeamId) -> Vec<UserId> {
        let Some(m) = self.teams.get(&team) else {
            return Vec::new();
        };
        let mut all: Vec<UserId> = m.main.iter().chain(&m.secondary).copied().collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The user `id`, if it belongs to the account.
    pub fn user(&self, id: UserId) -> Option<&UserState> {
        self.users.get(&id)
    }

    /// Replaces a user's availability settings (and forgets the cached
    /// availability).
    pub fn set_availability_settings(&mut self, user: UserId, settings: AvailabilitySettings) {
        if let Some(u) = self.users.get_mut(&user) {
            u.settings = settings;
            u.cached = None;
        }
        // Recomputed by the next decision of every channel.
        for ch in self.channels.values_mut() {
            if let Some(k) = &mut ch.cached {
                k.next_change = Some(Timestamp::MIN);
            }
        }
    }

    /// Runs `f` on the snapshot for `rule` on `channel` at `now`, with
    /// `extra` (a contact owner) among the candidates: the channel's kept
    /// snapshot when it can serve, else one built for this call.
    pub fn with_snapshot<R>(
        &mut self,
        rule: &Arc<RoutingRule>,
        channel: ChannelId,
        extra: Option<UserId>,
        now: Timestamp,
        f: impl FnOnce(&Snapshot) -> R,
    ) -> R {
        let keeps = self
            .channels
            .get(&channel)
            .is_some_and(|ch| ch.rule.as_ref().is_some_and(|r| Arc::ptr_eq(r, rule)));
        if !keeps {
            return f(&self.snapshot(rule, channel, extra, now));
        }
        let has = |ch: &ChannelState| {
            ch.cached
                .as_ref()
                .is_some_and(|k| extra.is_none_or(|u| k.index.contains_key(&u)))
        };
        if !has(&self.channels[&channel]) {
            // Built with every user the rule reaches; a contact owner
            // outside them gets a snapshot of its own (contact-owner rules).
            let snapshot = self.snapshot(rule, channel, None, now);
            if extra.is_some_and(|u| !snapshot.candidates.iter().any(|c| c.user_id == u)) {
                return f(&self.snapshot(rule, channel, extra, now));
            }
            let index = snapshot
                .candidates
                .iter()
                .enumerate()
                .map(|(i, c)| (c.user_id, i))
                .collect();
            let next_change = snapshot
                .candidates
                .iter()
                .filter_map(|c| c.availability.until())
                .min();
            let ch = self.channels.get_mut(&channel).expect("checked");
            ch.cached = Some(Cached {
                snapshot,
                index,
                computed_at: now,
                next_change,
            });
        }
        let users = &mut self.users;
        let ch = self.channels.get_mut(&channel).expect("checked");
        let k = ch.cached.as_mut().expect("just kept");
        if now < k.computed_at || k.next_change.is_some_and(|at| now >= at) {
            let mut next = None::<Timestamp>;
            for c in &mut k.snapshot.candidates {
                if let Some(u) = users.get_mut(&c.user_id) {
                    c.availability = u.availability(now);
                }
                if let Some(until) = c.availability.until() {
                    next = Some(next.map_or(until, |n| n.min(until)));
                }
            }
            k.computed_at = now;
            k.next_change = next;
        }
        f(&k.snapshot)
    }

    /// Whom to ring, in order, for a ticket of `channel` routed by `rule`
    /// (the channel's own, as [`ChannelState::rule`]) and now owned by
    /// `owner`: the owner first while they can still be reached
    /// ([`reachable`]), then [`ranked_eligible`] over the channel's
    /// snapshot (with the contact owner of `facts` among the candidates).
    /// Nobody for a rule that assigns nobody.
    pub fn ring_order(
        &mut self,
        rule: &Arc<RoutingRule>,
        channel: ChannelId,
        facts: &TicketFacts<'_>,
        owner: Option<UserId>,
        now: Timestamp,
    ) -> Vec<UserId> {
        if rule.assign_to == AssignTo::Nobody {
            return Vec::new();
        }
        let mut order: Vec<UserId> = owner
            .filter(|o| {
                self.users.get_mut(o).is_some_and(|u| {
                    let a = u.availability(now);
                    reachable(rule, u.deactivated, u.seated, a)
                })
            })
            .into_iter()
            .collect();
        let ranked = self.with_snapshot(rule, channel, facts.contact_owner, now, |snapshot| {
            ranked_eligible(rule, facts, snapshot)
        });
        for user in ranked {
            if !order.contains(&user) {
                order.push(user);
            }
        }
        order
    }

    /// Moves a user's counters for one ticket type by `open` and `load`.
    /// Every ticket save that moves the stored counters calls this with the
    /// same deltas.
    pub fn counts_changed(&mut self, user: UserId, ty: TicketType, open: i64, load: i64) {
        let Some(u) = self.users.get_mut(&user) else {
            return;
        };
        let add = |n: &mut u32, d: i64| *n = (i64::from(*n) + d).max(0) as u32;
        add(u.open.get_mut(ty), open);
        add(u.load.get_mut(ty), load);
        let (o, l) = (u.open, u.load);
        self.in_snapshots(user, |c| (c.open, c.load) = (o, l));
    }

    /// Runs `f` on `user`'s candidate in every kept snapshot.
    fn in_snapshots(&mut self, user: UserId, f: impl Fn(&mut Candidate)) {
        for ch in self.channels.values_mut() {
            if let Some(k) = &mut ch.cached
                && let Some(&i) = k.index.get(&user)
            {
                f(&mut k.snapshot.candidates[i]);
            }
        }
    }

    /// Sets a user's counters for one ticket type (when loading).
    pub fn set_counts(&mut self, user: UserId, ty: TicketType, open: u32, load: u32) {
        if let Some(u) = self.users.get_mut(&user) {
            *u.open.get_mut(ty) = open;
            *u.load.get_mut(ty) = load;
        }
    }

    /// Records that `user` was given a ticket at `at`.
    pub fn assigned(&mut self, user: UserId, at: Timestamp) {
        if let Some(u) = self.users.get_mut(&user) {
            u.last_assigned_at = Some(at);
            self.in_snapshots(user, |c| c.last_assigned_at = Some(at));
        }
    }

    /// Records that `user` was served in round-robin cycle `cycle` of
    /// `channel`, which is now the channel's current cycle.
    pub fn round_robin_served(&mut self, channel: ChannelId, user: UserId, cycle: u64) {
        if let Some(ch) = self.channels.get_mut(&channel) {
            ch.rr_cycle = cycle;
            ch.rr_last.insert(user, cycle);
            if let Some(k) = &mut ch.cached {
                k.snapshot.rr_cycle = cycle;
                if let Some(&i) = k.index.get(&user) {
                    k.snapshot.candidates[i].rr_last_cycle = cycle;
                }
            }
        }
    }

    /// Sets the last cycle `user` was served in on `channel` (when loading).
    pub fn set_round_robin(&mut self, channel: ChannelId, user: UserId, cycle: u64) {
        if let Some(ch) = self.channels.get_mut(&channel) {
            ch.rr_last.insert(user, cycle);
        }
    }

    /// The engine's snapshot for `rule` on `channel` at `now`: every user
    /// the rule names or reaches through a team, plus `extra` (the contact
    /// owner), sorted by id, and the rule's teams. Users the account does
    /// not have are left out (the engine reports them as not found).
    pub fn snapshot(
        &mut self,
        rule: &RoutingRule,
        channel: ChannelId,
        extra: Option<UserId>,
        now: Timestamp,
    ) -> Snapshot {
        let (named_users, named_teams) = rule.named();
        let mut ids: Vec<UserId> = named_users.into_iter().chain(extra).collect();
        let mut teams = Vec::with_capacity(named_teams.len());
        for team in named_teams {
            let Some(members) = self.teams.get(&team) else {
                continue;
            };
            let seated = members
                .main
                .iter()
                .chain(&members.secondary)
                .filter(|u| {
                    self.users
                        .get(u)
                        .is_some_and(|u| u.seated && !u.deactivated)
                })
                .count() as u32;
            ids.extend(&members.main);
            ids.extend(&members.secondary);
            teams.push(TeamInfo {
                id: team,
                seated_members: seated,
                main_members: members.main.clone(),
                secondary_members: members.secondary.clone(),
            });
        }
        ids.sort_unstable();
        ids.dedup();
        let rr = self.channels.get(&channel);
        let rr_cycle = rr.map_or(0, |c| c.rr_cycle);
        let mut candidates = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(u) = self.users.get_mut(&id) else {
                continue;
            };
            candidates.push(Candidate {
                user_id: id,
                deactivated: u.deactivated,
                seated: u.seated,
                availability: u.availability(now),
                skills: rule.skill_mask(&u.skills),
                capacity: u.capacity,
                open: u.open,
                load: u.load,
                last_assigned_at: u.last_assigned_at,
                rr_last_cycle: rr.and_then(|c| c.rr_last.get(&id)).copied().unwrap_or(0),
                main_team_id: u.main_team_id,
            });
        }
        let skill_names = rule
            .skill_ids()
            .into_iter()
            .map(|id| {
                let name = self
                    .skill_names
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| format!("skill {id}"));
                (id, name)
            })
            .collect();
        Snapshot {
            candidates,
            teams,
            rr_cycle,
            skill_names,
        }
    }
}

/// A change to an account's routing state that a copy kept elsewhere can
/// follow without reading the state again: what routing itself changes on
/// every decision (counters, last assignment, round-robin position) and a
/// user's availability settings. Structural changes (users, teams, skills,
/// channels) are not deltas: a copy reads the state again after them.
///
/// PostgreSQL stores a transaction's deltas with the version it wrote, so a
/// node whose copy is a few versions behind applies them in order instead
/// of reloading ([`RoutingState::apply`]); SQLite's single writer applies
/// them to its one copy as it writes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StateDelta {
    /// The user was given a ticket at `at` ([`RoutingState::assigned`]).
    Assigned {
        /// The user.
        user: UserId,
        /// When.
        at: Timestamp,
    },
    /// The user's counters moved ([`RoutingState::counts_changed`]).
    Counts(super::CounterDelta),
    /// Round robin served the user ([`RoutingState::round_robin_served`]).
    RoundRobin {
        /// The channel.
        channel: ChannelId,
        /// The user.
        user: UserId,
        /// The cycle, now the channel's current one.
        cycle: u64,
    },
    /// The user's availability settings were replaced.
    AvailabilitySettings {
        /// The user.
        user: UserId,
        /// The new settings.
        settings: AvailabilitySettings,
    },
}

impl RoutingState {
    /// Follows one change.
    pub fn apply(&mut self, delta: &StateDelta) {
        match delta {
            StateDelta::Assigned { user, at } => self.assigned(*user, *at),
            StateDelta::Counts(d) => self.counts_changed(d.user, d.ticket_type, d.open, d.load),
            StateDelta::RoundRobin {
                channel,
                user,
                cycle,
            } => self.round_robin_served(*channel, *user, *cycle),
            StateDelta::AvailabilitySettings { user, settings } => {
                self.set_availability_settings(*user, settings.clone())
            }
        }
    }
}
