//! What channels need from the store: external ids (threading and dedupe),
//! channels by public key, attachments.

use jiff::Timestamp;
use sqlx::{PgConnection, Row};
use switchboard_domain::*;

use super::{OrNotFound, directory, rows};
use crate::{Attachment, NewAttachment, Result};

pub async fn find_by_external_id(
    c: &mut PgConnection,
    account: AccountId,
    ids: &[String],
) -> Result<Option<(TicketId, MessageId)>> {
    for id in ids {
        let found: Option<(i64, i64)> = sqlx::query_as(
            "SELECT ticket_id, id FROM messages WHERE account_id = $1 AND external_id = $2",
        )
        .bind(account.0)
        .bind(id)
        .fetch_optional(&mut *c)
        .await?;
        if let Some((ticket, message)) = found {
            return Ok(Some((TicketId(ticket), MessageId(message))));
        }
    }
    Ok(None)
}

pub async fn channel_by_key(c: &mut PgConnection, key: &str) -> Result<(AccountId, Channel)> {
    let (account, id): (i64, i64) =
        sqlx::query_as("SELECT account_id, id FROM channels WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut *c)
            .await
            .or_not_found("channel")?;
    let account = AccountId(account);
    Ok((
        account,
        directory::get_channel(c, account, ChannelId(id)).await?,
    ))
}

pub async fn channels_of_kind(
    c: &mut PgConnection,
    kind: ChannelKind,
) -> Result<Vec<(AccountId, Channel)>> {
    let ids: Vec<(i64, i64)> =
        sqlx::query_as("SELECT account_id, id FROM channels WHERE kind = $1 ORDER BY id")
            .bind(kind.as_str())
            .fetch_all(&mut *c)
            .await?;
    let mut found = Vec::with_capacity(ids.len());
    for (account, id) in ids {
        let account = AccountId(account);
        found.push((
            account,
            directory::get_channel(c, account, ChannelId(id)).await?,
        ));
    }
    Ok(found)
}

pub async fn add_attachments(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    message: MessageId,
    files: Vec<NewAttachment>,
) -> Result<Vec<Attachment>> {
    sqlx::query_scalar::<_, i32>("SELECT 1 FROM messages WHERE id = $1 AND account_id = $2")
        .bind(message.0)
        .bind(account.0)
        .fetch_optional(&mut *c)
        .await
        .or_not_found("message")?;
    let mut stored = Vec::with_capacity(files.len());
    for f in files {
        let size = f.content.as_ref().map_or(0, |b| b.len() as u64);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO attachments (account_id, message_id, filename, content_type, size, content, provider_ref, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(account.0)
        .bind(message.0)
        .bind(&f.filename)
        .bind(&f.content_type)
        .bind(size as i64)
        .bind(&f.content)
        .bind(&f.provider_ref)
        .bind(rows::ms(now))
        .fetch_one(&mut *c)
        .await?;
        stored.push(Attachment {
            id,
            message_id: message,
            filename: f.filename,
            content_type: f.content_type,
            size,
            provider_ref: f.provider_ref,
        });
    }
    Ok(stored)
}

pub async fn attachments(
    c: &mut PgConnection,
    account: AccountId,
    message: MessageId,
) -> Result<Vec<Attachment>> {
    let found = sqlx::query(
        "SELECT id, filename, content_type, size, provider_ref FROM attachments
         WHERE message_id = $1 AND account_id = $2 ORDER BY id",
    )
    .bind(message.0)
    .bind(account.0)
    .fetch_all(&mut *c)
    .await?;
    found
        .iter()
        .map(|r| {
            Ok(Attachment {
                id: r.try_get(0)?,
                message_id: message,
                filename: r.try_get(1)?,
                content_type: r.try_get(2)?,
                size: r.try_get::<i64, _>(3)? as u64,
                provider_ref: r.try_get(4)?,
            })
        })
        .collect()
}
