//! The [`Notifications`] area of the store: the in-app list, preferences
//! and account defaults, the account's notification e-mail settings, and
//! what the dispatcher reads to e-mail a notification. Who is told of what
//! is decided in `switchboard_domain::notifications`; both backends write
//! the rows in the transaction of the change that raised them.

use async_trait::async_trait;
use serde_json::{Map, Value};
use switchboard_domain::{
    AccountId, Actor, EmailAddress, Name, Notification, TicketId, UserId,
    notifications::{NotifyEvent, PreferenceSetting, Preferences},
};

use crate::Result;

/// A page of a user's notifications, newest first, with their unread count.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct NotificationPage {
    /// The notifications on this page.
    pub items: Vec<Notification>,
    /// Where the next page starts (`cursor`), or `null` on the last page.
    pub next_cursor: Option<String>,
    /// How many of the user's notifications are unread (all pages).
    pub unread: u64,
}

/// Which notifications to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationQuery {
    /// Only unread ones.
    pub unread_only: bool,
    /// Start below this id (a `next_cursor`).
    pub cursor: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// What the dispatcher needs to e-mail one notification.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailNotice {
    /// The notification.
    pub notification: Notification,
    /// Its user.
    pub user_id: UserId,
    /// Their address.
    pub to: EmailAddress,
    /// Their name.
    pub to_name: Name,
}

/// Notifications: the list and its read marks, preferences, defaults.
#[async_trait]
pub trait Notifications: Send + Sync + 'static {
    /// Raises `event` on ticket `ticket` as `actor` (the workflow timer and
    /// the customer agent's handoff call this; ticket changes raise their
    /// own events in their transaction).
    async fn raise_notification(
        &self,
        account: AccountId,
        ticket: TicketId,
        actor: Actor,
        event: NotifyEvent,
    ) -> Result<()>;

    /// A user's in-app notifications, newest first, with the unread count.
    async fn notifications(
        &self,
        account: AccountId,
        user: UserId,
        query: NotificationQuery,
    ) -> Result<NotificationPage>;

    /// A user's in-app notifications with ids above `after`, oldest first
    /// (the stream).
    async fn notifications_since(
        &self,
        account: AccountId,
        user: UserId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Notification>>;

    /// The id of a user's newest notification (0 without any).
    async fn latest_notification_id(&self, account: AccountId, user: UserId) -> Result<i64>;

    /// Marks the user's notifications `ids` read (all unread ones with
    /// `None`); returns how many changed. Ids of other users are ignored.
    async fn mark_notifications_read(
        &self,
        account: AccountId,
        user: UserId,
        ids: Option<Vec<i64>>,
    ) -> Result<u64>;

    /// The account defaults (in [`Preferences::defaults`]).
    async fn notification_defaults(&self, account: AccountId) -> Result<Preferences>;

    /// Sets account defaults (`unset` removes one).
    async fn set_notification_defaults(
        &self,
        account: AccountId,
        settings: Vec<PreferenceSetting>,
    ) -> Result<Preferences>;

    /// The account defaults and `user`'s own settings; `NotFound` for a
    /// user of another account.
    async fn notification_preferences(
        &self,
        account: AccountId,
        user: UserId,
    ) -> Result<Preferences>;

    /// Sets `user`'s own settings (`unset` removes one).
    async fn set_notification_preferences(
        &self,
        account: AccountId,
        user: UserId,
        settings: Vec<PreferenceSetting>,
    ) -> Result<Preferences>;

    /// Clears every user's own settings, so everyone follows the defaults;
    /// returns how many settings were removed.
    async fn apply_notification_defaults(&self, account: AccountId) -> Result<u64>;

    /// The account's notification e-mail settings as stored (secrets
    /// included: callers redact), or an empty object.
    async fn notification_email(&self, account: AccountId) -> Result<Map<String, Value>>;

    /// Replaces them (parsed by the caller).
    async fn set_notification_email(
        &self,
        account: AccountId,
        settings: Map<String, Value>,
    ) -> Result<()>;

    /// The notifications `ids` of the account with their users' addresses,
    /// in id order (missing ones are left out).
    async fn notification_emails(
        &self,
        account: AccountId,
        ids: Vec<i64>,
    ) -> Result<Vec<EmailNotice>>;
}
