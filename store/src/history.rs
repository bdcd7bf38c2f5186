//! Project history and the outbox (§13). [`Store::commit`] is the one way a revisioned change
//! reaches the database: in one transaction it takes the project's next revision (which also
//! orders concurrent changes of a project), checks that every row is still as the change saw
//! it, writes the rows, appends the history entry and writes the outbox rows for what must
//! follow. The outbox is then drained by a dispatcher (`app::outbox`) at least once.

use crate::clips::{ClipRow, insert_clip_query};
use crate::jobs::insert_job_query;
use crate::loop_regions::LoopRegionRow;
use crate::projects::ProjectRow;
use crate::recordings::insert_take_query;
use crate::tracks::TrackRow;
use crate::{Store, StoreError, StoreResult, on_pool};
use audiolab_domain::history::{Change, ChangeKind, HistoryEntry, KEPT_ENTRIES, Outgoing, Row, RowChange, RowKey};
use audiolab_domain::job::Job;
use audiolab_domain::transport::ModelItem;
use audiolab_domain::user::Actor;
use audiolab_domain::{ProjectId, UserId};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

/// How long the committer has to deliver a change's outbox rows itself before any
/// dispatcher takes them.
pub(crate) const INLINE_GRACE_MS: i64 = 10_000;

/// How many revisions pass between two prunings of a project's old history.
const PRUNE_EVERY: i64 = 250;

#[derive(sqlx::FromRow)]
struct HistoryRow {
    project_id: Uuid,
    revision: i64,
    actor_id: Option<Uuid>,
    actor_username: Option<String>,
    at: DateTime<Utc>,
    kind: String,
    summary: String,
    changes: String,
    undoable: bool,
    undoes: Option<i64>,
    redoes: Option<i64>,
    undone_by: Option<i64>,
}

impl HistoryRow {
    fn into_domain(self) -> StoreResult<HistoryEntry> {
        let actor = match (self.actor_id, self.actor_username) {
            (Some(id), Some(username)) => Some(Actor { id: UserId(id), username }),
            _ => None,
        };
        Ok(HistoryEntry {
            project_id: self.project_id.into(),
            revision: self.revision,
            actor,
            at: self.at,
            kind: ChangeKind::parse(&self.kind).ok_or_else(|| crate::corrupt("project_history.kind", &self.kind))?,
            summary: self.summary,
            undoable: self.undoable,
            undoes: self.undoes,
            redoes: self.redoes,
            undone_by: self.undone_by,
            rows: serde_json::from_str(&self.changes)
                .map_err(|e| StoreError::Corrupt(format!("project_history.changes: {e}")))?,
        })
    }
}

/// One undelivered outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub project_id: Option<ProjectId>,
    pub message: Outgoing,
    /// How many times delivery has been tried, this one included.
    pub attempts: i32,
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    project_id: Option<Uuid>,
    message: String,
    attempts: i32,
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// Reads the row `key` names inside the transaction `$conn` (an expression giving a fresh
/// `&mut` connection each time), as a history [`Row`].
macro_rules! read_row {
    ($conn:expr, $key:expr) => {{
        let key: RowKey = $key;
        let row: Option<Row> = match key.item {
            ModelItem::Project => sqlx::query_as::<_, ProjectRow>("SELECT * FROM projects WHERE id = $1")
                .bind(key.id)
                .fetch_optional($conn)
                .await?
                .map(|r| r.into_domain().map(|(p, _)| Row::Project(p)))
                .transpose()?,
            ModelItem::Track => sqlx::query_as::<_, TrackRow>("SELECT * FROM tracks WHERE id = $1")
                .bind(key.id)
                .fetch_optional($conn)
                .await?
                .map(|r| r.into_domain().map(|(t, _)| Row::Track(t)))
                .transpose()?,
            ModelItem::Clip => sqlx::query_as::<_, ClipRow>("SELECT * FROM clips WHERE id = $1")
                .bind(key.id)
                .fetch_optional($conn)
                .await?
                .map(|r| r.into_domain().map(|(c, _)| Row::Clip(c)))
                .transpose()?,
            ModelItem::LoopRegion => sqlx::query_as::<_, LoopRegionRow>("SELECT * FROM loop_regions WHERE id = $1")
                .bind(key.id)
                .fetch_optional($conn)
                .await?
                .map(|r| r.into_domain().map(|(l, _)| Row::LoopRegion(l)))
                .transpose()?,
        };
        row
    }};
}

/// Writes one row change inside the transaction `$conn`: a removed row is deleted, any other
/// is inserted or updated (bumping its `version`, so optimistic writers elsewhere notice).
macro_rules! write_row {
    ($conn:expr, $change:expr) => {{
        let change: &RowChange = $change;
        let key = change.key();
        match &change.after {
            None => {
                let table = match key.item {
                    ModelItem::Project => {
                        return Err(StoreError::Invalid(audiolab_domain::ValidationError::new(
                            "project",
                            "a project is not deleted through its history",
                        )));
                    }
                    ModelItem::Track => "tracks",
                    ModelItem::Clip => "clips",
                    ModelItem::LoopRegion => "loop_regions",
                };
                // `table` is one of three constants above.
                let sql = sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE id = $1"));
                sqlx::query(sql).bind(key.id).execute($conn).await?;
            }
            Some(Row::Project(project)) => {
                sqlx::query(
                    "UPDATE projects SET name = $2, description = $3, tempo = $4, time_signature = $5,
                            updated_at = $6, bit_depth = $7, version = version + 1
                     WHERE id = $1",
                )
                .bind(project.id.0)
                .bind(&project.name)
                .bind(&project.description)
                .bind(project.tempo.bpm())
                .bind(project.time_signature.to_string())
                .bind(project.updated_at)
                .bind(project.bit_depth.bits() as i16)
                .execute($conn)
                .await?;
            }
            Some(Row::Track(track)) => {
                sqlx::query(
                    "INSERT INTO tracks (id, project_id, name, track_index, volume, pan, muted, soloed, color,
                                         record_enabled, input_device_id, monitoring, created_at, updated_at, comp)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, track_index = excluded.track_index,
                         volume = excluded.volume, pan = excluded.pan, muted = excluded.muted,
                         soloed = excluded.soloed, color = excluded.color, record_enabled = excluded.record_enabled,
                         input_device_id = excluded.input_device_id, monitoring = excluded.monitoring,
                         updated_at = excluded.updated_at, comp = excluded.comp, version = tracks.version + 1",
                )
                .bind(track.id.0)
                .bind(track.project_id.0)
                .bind(&track.name)
                .bind(i16::from(track.index.get()))
                .bind(track.volume.get())
                .bind(track.pan.get())
                .bind(track.muted)
                .bind(track.soloed)
                .bind(&track.color)
                .bind(track.record_enabled)
                .bind(&track.input_device_id)
                .bind(track.monitoring)
                .bind(track.created_at)
                .bind(track.updated_at)
                .bind(crate::tracks::comp_json(track))
                .execute($conn)
                .await
                .map_err(|e| {
                    // The slot was free when the change was made: someone took it meanwhile.
                    match StoreError::from_write(e, "", "project") {
                        StoreError::Conflict(_) => StoreError::Stale(format!(
                            "track_index {} is already used in this project",
                            track.index.get()
                        )),
                        other => other,
                    }
                })?;
            }
            Some(Row::Clip(clip)) => {
                if change.before.is_none() {
                    // A clip coming back keeps its take only if the take still exists.
                    let mut clip = clip.clone();
                    if let Some(take) = clip.take_id {
                        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM takes WHERE id = $1")
                            .bind(take.0)
                            .fetch_one($conn)
                            .await?;
                        clip.take_id = clip.take_id.filter(|_| exists > 0);
                    }
                    insert_clip_query!(&clip)
                        .execute($conn)
                        .await
                        .map_err(|e| StoreError::from_write(e, "a clip with this id already exists", "track"))?;
                } else {
                    sqlx::query(
                        "UPDATE clips SET track_id = $2, name = $3, audio_key = $4, start_frame = $5,
                                source_offset_frames = $6, length_frames = $7, source_length_frames = $8, gain_db = $9,
                                fade_in_frames = $10, fade_out_frames = $11, status = $12, error = $13, peaks_key = $14,
                                loudness_lufs = $15, active = $16, updated_at = $17, version = version + 1
                         WHERE id = $1",
                    )
                    .bind(clip.id.0)
                    .bind(clip.track_id.0)
                    .bind(&clip.name)
                    .bind(&clip.audio_key)
                    .bind(clip.start.get())
                    .bind(clip.source_offset.get())
                    .bind(clip.length.get())
                    .bind(clip.source_length.get())
                    .bind(clip.gain.0)
                    .bind(clip.fade_in.get())
                    .bind(clip.fade_out.get())
                    .bind(clip.status.as_str())
                    .bind(&clip.error)
                    .bind(&clip.peaks_key)
                    .bind(clip.loudness_lufs)
                    .bind(clip.active)
                    .bind(clip.updated_at)
                    .execute($conn)
                    .await
                    .map_err(|e| StoreError::from_write(e, "clip conflict", "track"))?;
                }
            }
            Some(Row::LoopRegion(region)) => {
                sqlx::query(
                    "INSERT INTO loop_regions (id, project_id, name, start_frame, end_frame, enabled, repeat_count,
                                               auto_punch_record, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, start_frame = excluded.start_frame,
                         end_frame = excluded.end_frame, enabled = excluded.enabled,
                         repeat_count = excluded.repeat_count, auto_punch_record = excluded.auto_punch_record,
                         updated_at = excluded.updated_at, version = loop_regions.version + 1",
                )
                .bind(region.id.0)
                .bind(region.project_id.0)
                .bind(&region.name)
                .bind(region.start.get())
                .bind(region.end.get())
                .bind(region.enabled)
                .bind(region.repeat_count.map(|n| n as i32))
                .bind(region.auto_punch_record)
                .bind(region.created_at)
                .bind(region.updated_at)
                .execute($conn)
                .await
                .map_err(|e| StoreError::from_write(e, "another loop region is enabled", "project"))?;
            }
        }
    }};
}

impl Store {
    /// Commits `change` to `project` as its next revision, with its history entry and its
    /// outbox rows, all or nothing. Returns the entry.
    ///
    /// Errors: `NotFound` for a missing project; `Stale` when a row is no longer as the change
    /// saw it (read again and retry); `Conflict` / `MissingParent` / `Invalid` from the rows.
    #[tracing::instrument(skip_all, fields(project_id = %project, kind = change.kind.as_str()))]
    pub async fn commit(
        &self,
        project: ProjectId,
        actor: Option<&Actor>,
        change: &Change,
    ) -> StoreResult<(HistoryEntry, Vec<OutboxItem>)> {
        let at = audiolab_domain::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Taking the revision first locks the project's row: its changes commit one at a time.
            let revision: Option<i64> =
                sqlx::query_scalar("UPDATE projects SET revision = revision + 1 WHERE id = $1 RETURNING revision")
                    .bind(project.0)
                    .fetch_optional(&mut *tx)
                    .await?;
            let revision = revision.ok_or(StoreError::NotFound("project"))?;
            for take in &change.takes {
                insert_take_query!(take)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::from_write(e, "this pass already has a take", "recording session"))?;
            }
            for row in &change.rows {
                let current = read_row!(&mut *tx, row.key());
                if current != row.before {
                    return Err(StoreError::Stale(format!("the {} changed meanwhile", row.key().item.noun())));
                }
                write_row!(&mut *tx, row);
            }
            if let Some(reverted) = change.undoes {
                sqlx::query("UPDATE project_history SET undone_by = $3 WHERE project_id = $1 AND revision = $2")
                    .bind(project.0)
                    .bind(reverted)
                    .bind(revision)
                    .execute(&mut *tx)
                    .await?;
            }
            let entry = HistoryEntry {
                project_id: project,
                revision,
                actor: actor.cloned(),
                at,
                kind: change.kind,
                summary: change.summary.clone(),
                undoable: change.kind.undoable() && actor.is_some(),
                undoes: change.undoes,
                redoes: change.redoes,
                undone_by: None,
                rows: change.rows.clone(),
            };
            let rows = serde_json::to_string(&entry.rows).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "INSERT INTO project_history (project_id, revision, actor_id, actor_username, at, kind, summary, changes,
                                              undoable, undoes, redoes)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(project.0)
            .bind(revision)
            .bind(actor.map(|a| a.id.0))
            .bind(actor.map(|a| a.username.clone()))
            .bind(at)
            .bind(change.kind.as_str())
            .bind(&change.summary)
            .bind(rows)
            .bind(entry.undoable)
            .bind(change.undoes)
            .bind(change.redoes)
            .execute(&mut *tx)
            .await?;
            for job in &change.jobs {
                insert_job_query!(job, None::<&str>)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::from_write(e, "a job with this id already exists", "project"))?;
            }
            let mut outgoing = vec![Outgoing::Announce(entry.announcement())];
            outgoing.extend(change.jobs.iter().map(|job| Outgoing::PushJob { job_id: job.id }));
            let mut items = Vec::with_capacity(outgoing.len());
            for message in outgoing {
                let text = serde_json::to_string(&message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                // Due after a grace period: the committer delivers them first, at once.
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO outbox (project_id, message, created_at, due_ms) VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(project.0)
                .bind(text)
                .bind(at)
                .bind(millis(at) + INLINE_GRACE_MS)
                .fetch_one(&mut *tx)
                .await?;
                items.push(OutboxItem { id, project_id: Some(project), message, attempts: 1 });
            }
            if revision % PRUNE_EVERY == 0 {
                sqlx::query("DELETE FROM project_history WHERE project_id = $1 AND revision <= $2")
                    .bind(project.0)
                    .bind(revision - KEPT_ENTRIES - PRUNE_EVERY)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok((entry, items))
        })
    }

    /// Writes outbox rows outside any change (a job pushed for the system, a revocation), due
    /// at once — or, with `deliver_first`, after the grace period in which the caller delivers
    /// them itself. Returns them.
    pub async fn enqueue(
        &self,
        project: Option<ProjectId>,
        messages: &[Outgoing],
        deliver_first: bool,
    ) -> StoreResult<Vec<OutboxItem>> {
        let at = audiolab_domain::now();
        let due = millis(at) + if deliver_first { INLINE_GRACE_MS } else { 0 };
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut items = Vec::with_capacity(messages.len());
            for message in messages {
                let text = serde_json::to_string(message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO outbox (project_id, message, created_at, due_ms) VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(project.map(|p| p.0))
                .bind(text)
                .bind(at)
                .bind(due)
                .fetch_one(&mut *tx)
                .await?;
                items.push(OutboxItem { id, project_id: project, message: message.clone(), attempts: 1 });
            }
            tx.commit().await?;
            Ok(items)
        })
    }

    /// The project's current revision (0 before its first change). Errors: `NotFound`.
    pub async fn project_revision(&self, project: ProjectId) -> StoreResult<i64> {
        let revision: Option<i64> = on_pool!(self, pool => sqlx::query_scalar("SELECT revision FROM projects WHERE id = $1")
            .bind(project.0)
            .fetch_optional(pool)
            .await?);
        revision.ok_or(StoreError::NotFound("project"))
    }

    /// The current revisions of `projects` (those that still exist).
    pub async fn project_revisions(&self, projects: &[ProjectId]) -> StoreResult<Vec<(ProjectId, i64)>> {
        let mut found = Vec::with_capacity(projects.len());
        for chunk in projects.chunks(500) {
            let list = (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
            // Only placeholders are spliced in; the ids are bound.
            let sql = format!("SELECT id, revision FROM projects WHERE id IN ({list})");
            let rows: Vec<(Uuid, i64)> = on_pool!(self, pool => {
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
                for id in chunk {
                    query = query.bind(id.0);
                }
                query.fetch_all(pool).await?
            });
            found.extend(rows.into_iter().map(|(id, revision)| (ProjectId(id), revision)));
        }
        Ok(found)
    }

    /// The project's history, newest first: up to `limit` entries older than `before`.
    pub async fn history(&self, project: ProjectId, limit: i64, before: Option<i64>) -> StoreResult<Vec<HistoryEntry>> {
        let rows: Vec<HistoryRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT * FROM project_history WHERE project_id = $1 AND revision < $2 ORDER BY revision DESC LIMIT $3",
        )
        .bind(project.0)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(pool)
        .await?);
        rows.into_iter().map(HistoryRow::into_domain).collect()
    }

    /// The project's entries after `revision`, oldest first, up to `limit`.
    pub async fn history_since(&self, project: ProjectId, revision: i64, limit: i64) -> StoreResult<Vec<HistoryEntry>> {
        let rows: Vec<HistoryRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT * FROM project_history WHERE project_id = $1 AND revision > $2 ORDER BY revision LIMIT $3",
        )
        .bind(project.0)
        .bind(revision)
        .bind(limit)
        .fetch_all(pool)
        .await?);
        rows.into_iter().map(HistoryRow::into_domain).collect()
    }

    /// The user's latest change of the project that undo would revert: not an undo itself,
    /// undoable, and not undone yet.
    pub async fn undo_target(&self, project: ProjectId, user: UserId) -> StoreResult<Option<HistoryEntry>> {
        let row: Option<HistoryRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT * FROM project_history
             WHERE project_id = $1 AND actor_id = $2 AND kind <> 'undo' AND undoable AND undone_by IS NULL
             ORDER BY revision DESC LIMIT 1",
        )
        .bind(project.0)
        .bind(user.0)
        .fetch_optional(pool)
        .await?);
        row.map(HistoryRow::into_domain).transpose()
    }

    /// The user's latest undo of the project that redo would revert: not redone yet, and with
    /// no new change by the user after it (a new change clears the redo).
    pub async fn redo_target(&self, project: ProjectId, user: UserId) -> StoreResult<Option<HistoryEntry>> {
        let row: Option<HistoryRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT * FROM project_history
             WHERE project_id = $1 AND actor_id = $2 AND kind = 'undo' AND undone_by IS NULL
               AND revision > (SELECT COALESCE(MAX(revision), 0) FROM project_history
                               WHERE project_id = $1 AND actor_id = $2 AND kind NOT IN ('undo', 'redo') AND undoable)
             ORDER BY revision DESC LIMIT 1",
        )
        .bind(project.0)
        .bind(user.0)
        .fetch_optional(pool)
        .await?);
        row.map(HistoryRow::into_domain).transpose()
    }

    /// Takes up to `limit` outbox rows that are due, oldest first, and leases them for `lease`
    /// (another dispatcher takes them only after that).
    pub async fn claim_outbox(&self, limit: i64, lease: std::time::Duration) -> StoreResult<Vec<OutboxItem>> {
        let now = millis(Utc::now());
        let until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let mut rows: Vec<OutboxRow> = on_pool!(self, pool => sqlx::query_as(
            "UPDATE outbox SET due_ms = $2, attempts = attempts + 1
             WHERE due_ms <= $1 AND id IN (SELECT id FROM outbox WHERE due_ms <= $1 ORDER BY id LIMIT $3)
             RETURNING id, project_id, message, attempts",
        )
        .bind(now)
        .bind(until)
        .bind(limit)
        .fetch_all(pool)
        .await?);
        rows.sort_by_key(|r| r.id);
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            match serde_json::from_str(&row.message) {
                Ok(message) => items.push(OutboxItem {
                    id: row.id,
                    project_id: row.project_id.map(ProjectId),
                    message,
                    attempts: row.attempts,
                }),
                Err(error) => {
                    // A message this version cannot read is dropped, loudly, rather than retried forever.
                    tracing::error!(id = row.id, %error, "dropping an unreadable outbox message");
                    self.outbox_delivered(row.id).await?;
                }
            }
        }
        Ok(items)
    }

    /// Removes a delivered outbox row.
    pub async fn outbox_delivered(&self, id: i64) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query("DELETE FROM outbox WHERE id = $1").bind(id).execute(pool).await.map(drop)?);
        Ok(())
    }

    /// Puts an outbox row back for another try at `retry_at`, noting why it failed.
    pub async fn outbox_failed(&self, id: i64, retry_at: DateTime<Utc>, error: &str) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query("UPDATE outbox SET due_ms = $2, last_error = $3 WHERE id = $1")
            .bind(id)
            .bind(millis(retry_at))
            .bind(error)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// How many outbox rows wait for delivery.
    pub async fn outbox_backlog(&self) -> StoreResult<i64> {
        Ok(on_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(pool).await?))
    }
}
