//! Notification e-mails through the account's outgoing relay
//! (`PUT /api/v1/notification-settings/email`), sent by the same SMTP
//! client as e-mail channel replies ([`super::email::transport`]).
//!
//! Threaded per ticket and user: every e-mail about ticket 7 to user 3
//! carries `References: <notify.t7.u3@domain>` and the subject `[#7] ...`,
//! so mail clients file them in one conversation; each has its own
//! Message-ID derived from the notification id, so a resend after a crash
//! (the outbox delivers at least once) carries the same one. The body links
//! to the ticket when a public base URL is configured.

use lettre::AsyncTransport;
use switchboard_channels::email;
use switchboard_domain::{
    AccountId, TicketId, UserId,
    notifications::{self, email_settings::NotificationEmail},
};
use switchboard_store::{EmailNotice, Store};

use super::DeliveryError;

/// The account's notification e-mail settings, typed; a missing or
/// unreadable setting fails the row for good (an admin must set it).
async fn settings(
    store: &dyn Store,
    account: AccountId,
) -> Result<NotificationEmail, DeliveryError> {
    let raw = store.notification_email(account).await.map_err(|e| {
        DeliveryError::Transient(format!("cannot read the notification e-mail settings: {e}"))
    })?;
    notifications::email_settings::parse(&raw).map_err(|e| DeliveryError::Permanent(e.to_string()))
}

fn from_of(s: &NotificationEmail) -> Result<&str, DeliveryError> {
    s.address.as_deref().ok_or_else(|| {
        DeliveryError::Permanent("the notification e-mail settings have no address".into())
    })
}

fn domain(from: &str) -> &str {
    email::domain_of(from).unwrap_or("switchboard.invalid")
}

/// The thread of every notification e-mail about `ticket` to `user`.
pub fn thread_id(ticket: TicketId, user: UserId, domain: &str) -> String {
    format!("<notify.t{ticket}.u{user}@{domain}>")
}

/// The link to a ticket in the console, when a public base URL is set.
pub fn ticket_link(public_url: Option<&str>, ticket: TicketId) -> Option<String> {
    public_url.map(|base| format!("{}/tickets/{ticket}", base.trim_end_matches('/')))
}

async fn send(
    s: &NotificationEmail,
    to: &EmailNotice,
    subject: String,
    message_id: &str,
    thread: Option<String>,
    body: &str,
) -> Result<(), DeliveryError> {
    let from = from_of(s)?;
    let mail = email::Reply {
        from,
        from_name: Some("Switchboard"),
        to: to.to.as_str(),
        to_name: Some(to.to_name.as_str()),
        subject,
        message_id,
        in_reply_to: thread.clone(),
        references: thread.into_iter().collect(),
        body,
        automatic: true,
    };
    let built = email::build_reply(&mail)
        .map_err(|e| DeliveryError::Permanent(format!("notification: {e}")))?;
    let transport = super::email::transport(
        &s.as_channel(),
        "the notification e-mail settings have no smtp_relay",
    )?;
    transport
        .send(built)
        .await
        .map_err(super::email::relay_error)?;
    Ok(())
}

/// E-mails notification `id` to its user.
pub async fn send_one(
    store: &dyn Store,
    account: AccountId,
    id: i64,
    public_url: Option<&str>,
) -> Result<(), DeliveryError> {
    let s = settings(store, account).await?;
    let notice = store
        .notification_emails(account, vec![id])
        .await
        .map_err(|e| DeliveryError::Transient(format!("cannot read the notification: {e}")))?
        .pop()
        .ok_or_else(|| DeliveryError::Permanent("the notification no longer exists".into()))?;
    let n = &notice.notification;
    let d = domain(from_of(&s)?).to_owned();
    let mut body = format!(
        "{}: ticket #{} \"{}\".\n",
        notifications::describe(n.topic),
        n.ticket_id,
        n.subject
    );
    if let Some(link) = ticket_link(public_url, n.ticket_id) {
        body.push_str(&format!("\nOpen it: {link}\n"));
    }
    body.push_str("\nYou get this e-mail because of your notification settings in Switchboard.\n");
    send(
        &s,
        &notice,
        notifications::email_subject(n.ticket_id, &n.subject),
        &format!("<notify.{id}@{d}>"),
        Some(thread_id(n.ticket_id, notice.user_id, &d)),
        &body,
    )
    .await?;
    tracing::info!(notification = id, ticket = %n.ticket_id, "notification e-mailed");
    Ok(())
}

/// E-mails one digest of the notifications `ids` (held back by the cap)
/// to `user`.
pub async fn send_digest(
    store: &dyn Store,
    account: AccountId,
    user: UserId,
    ids: Vec<i64>,
    public_url: Option<&str>,
) -> Result<(), DeliveryError> {
    let s = settings(store, account).await?;
    let first = ids.first().copied().unwrap_or_default();
    let notices: Vec<EmailNotice> = store
        .notification_emails(account, ids)
        .await
        .map_err(|e| DeliveryError::Transient(format!("cannot read the notifications: {e}")))?
        .into_iter()
        .filter(|n| n.user_id == user)
        .collect();
    let Some(to) = notices.first() else {
        return Ok(());
    };
    let d = domain(from_of(&s)?).to_owned();
    let mut body = format!(
        "{} more notifications arrived while your hourly e-mail limit was reached:\n\n",
        notices.len()
    );
    for n in &notices {
        let n = &n.notification;
        body.push_str(&format!(
            "- {}: #{} \"{}\"",
            notifications::describe(n.topic),
            n.ticket_id,
            n.subject
        ));
        if let Some(link) = ticket_link(public_url, n.ticket_id) {
            body.push_str(&format!(" {link}"));
        }
        body.push('\n');
    }
    send(
        &s,
        to,
        format!("Switchboard digest: {} notifications", notices.len()),
        &format!("<notify.digest.{first}.u{user}@{d}>"),
        None,
        &body,
    )
    .await?;
    tracing::info!(%user, count = notices.len(), "notification digest e-mailed");
    Ok(())
}
