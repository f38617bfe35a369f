//! What channels need from the store: external ids (threading and dedupe),
//! channels by public key, attachments.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_domain::*;

use super::{OrNotFound, directory, rows};
use crate::{Attachment, NewAttachment, Result};

pub fn find_by_external_id(
    c: &Connection,
    account: AccountId,
    ids: &[String],
) -> Result<Option<(TicketId, MessageId)>> {
    let mut stmt = c.prepare_cached(
        "SELECT ticket_id, id FROM messages WHERE account_id = ?1 AND external_id = ?2",
    )?;
    for id in ids {
        let found = stmt
            .query_row(params![account.0, id], |r| {
                Ok((TicketId(r.get(0)?), MessageId(r.get(1)?)))
            })
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

pub fn channel_by_key(c: &Connection, key: &str) -> Result<(AccountId, Channel)> {
    let (account, id) = c
        .prepare_cached("SELECT account_id, id FROM channels WHERE key = ?1")?
        .query_row([key], |r| Ok((AccountId(r.get(0)?), ChannelId(r.get(1)?))))
        .or_not_found("channel")?;
    Ok((account, directory::get_channel(c, account, id)?))
}

pub fn channels_of_kind(c: &Connection, kind: ChannelKind) -> Result<Vec<(AccountId, Channel)>> {
    let ids: Vec<(AccountId, ChannelId)> = c
        .prepare_cached("SELECT account_id, id FROM channels WHERE kind = ?1 ORDER BY id")?
        .query_map([kind.as_str()], |r| {
            Ok((AccountId(r.get(0)?), ChannelId(r.get(1)?)))
        })?
        .collect::<rusqlite::Result<_>>()?;
    ids.into_iter()
        .map(|(account, id)| Ok((account, directory::get_channel(c, account, id)?)))
        .collect()
}

pub fn add_attachments(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    message: MessageId,
    files: Vec<NewAttachment>,
) -> Result<Vec<Attachment>> {
    c.prepare_cached("SELECT 1 FROM messages WHERE id = ?1 AND account_id = ?2")?
        .query_row(params![message.0, account.0], |_| Ok(()))
        .or_not_found("message")?;
    let mut insert = c.prepare_cached(
        "INSERT INTO attachments (account_id, message_id, filename, content_type, size, content, provider_ref, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut stored = Vec::with_capacity(files.len());
    for f in files {
        let size = f.content.as_ref().map_or(0, |b| b.len() as u64);
        insert.execute(params![
            account.0,
            message.0,
            f.filename,
            f.content_type,
            size as i64,
            f.content,
            f.provider_ref,
            rows::ms(now),
        ])?;
        stored.push(Attachment {
            id: c.last_insert_rowid(),
            message_id: message,
            filename: f.filename,
            content_type: f.content_type,
            size,
            provider_ref: f.provider_ref,
        });
    }
    Ok(stored)
}

pub fn attachments(
    c: &Connection,
    account: AccountId,
    message: MessageId,
) -> Result<Vec<Attachment>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, filename, content_type, size, provider_ref FROM attachments
         WHERE message_id = ?1 AND account_id = ?2 ORDER BY id",
    )?;
    let items = stmt
        .query_map(params![message.0, account.0], |r| {
            Ok(Attachment {
                id: r.get(0)?,
                message_id: message,
                filename: r.get(1)?,
                content_type: r.get(2)?,
                size: r.get::<_, i64>(3)? as u64,
                provider_ref: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(items)
}
