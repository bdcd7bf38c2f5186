//! Projects.

use crate::{Page, Paged, Store, StoreError, StoreResult, Versioned, corrupt, on_pool, update_versioned};
use audiolab_domain::project::Project;
use audiolab_domain::{BitDepth, ProjectId, SampleRate, Tempo, TimeSignature, UserId, ValidationResult};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
pub(crate) struct ProjectRow {
    id: Uuid,
    owner_id: Uuid,
    name: String,
    description: String,
    sample_rate: i32,
    bit_depth: i16,
    tempo: f64,
    time_signature: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ProjectRow {
    pub(crate) fn into_domain(self) -> StoreResult<(Project, i64)> {
        let rate = u32::try_from(self.sample_rate).ok().and_then(|hz| SampleRate::new(hz).ok());
        let project = Project {
            id: self.id.into(),
            owner_id: self.owner_id.into(),
            name: self.name,
            description: self.description,
            sample_rate: rate.ok_or_else(|| corrupt("projects.sample_rate", self.sample_rate))?,
            bit_depth: u16::try_from(self.bit_depth)
                .ok()
                .and_then(|b| BitDepth::new(b).ok())
                .ok_or_else(|| corrupt("projects.bit_depth", self.bit_depth))?,
            tempo: Tempo::new(self.tempo).map_err(|_| corrupt("projects.tempo", self.tempo))?,
            time_signature: TimeSignature::parse(&self.time_signature)
                .map_err(|_| corrupt("projects.time_signature", &self.time_signature))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        };
        Ok((project, self.version))
    }
}

impl Store {
    /// Lists count their rows up to this many; a larger list reports this number.
    pub const COUNT_BOUND: i64 = 10_000;

    /// Stores a new project with its owner as its `owner` member (one transaction).
    #[tracing::instrument(skip_all, fields(project_id = %project.id))]
    pub async fn insert_project(&self, project: &Project) -> StoreResult<()> {
        let conflict = |e| StoreError::from_write(e, "a project with this id already exists", "owner");
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO projects (id, owner_id, name, description, sample_rate, bit_depth, tempo, time_signature, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(project.id.0)
            .bind(project.owner_id.0)
            .bind(&project.name)
            .bind(&project.description)
            .bind(project.sample_rate.hz() as i32)
            .bind(project.bit_depth.bits() as i16)
            .bind(project.tempo.bpm())
            .bind(project.time_signature.to_string())
            .bind(project.created_at)
            .bind(project.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(conflict)?;
            sqlx::query("INSERT INTO project_members (project_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)")
                .bind(project.id.0)
                .bind(project.owner_id.0)
                .bind(project.created_at)
                .execute(&mut *tx)
                .await
                .map_err(conflict)?;
            tx.commit().await?;
        });
        Ok(())
    }

    async fn project_row(&self, id: ProjectId) -> StoreResult<Option<(Project, i64)>> {
        let row: Option<ProjectRow> = on_pool!(self, pool => sqlx::query_as("SELECT * FROM projects WHERE id = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await?);
        row.map(ProjectRow::into_domain).transpose()
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_project(&self, id: ProjectId) -> StoreResult<Option<Project>> {
        Ok(self.project_row(id).await?.map(|(project, _)| project))
    }

    /// The projects `user` is a member of (in any role), in id order (oldest first).
    #[tracing::instrument(skip(self))]
    pub async fn list_projects(
        &self,
        user: UserId,
        page: Page,
        after: Option<ProjectId>,
    ) -> StoreResult<Paged<Project>> {
        // Keyset paging on the membership index (user_id, project_id): the page after `after`
        // costs the same at any size.
        let after = after.map_or(Uuid::nil(), |id| id.0);
        let (rows, total): (Vec<ProjectRow>, i64) = on_pool!(self, pool => {
            let rows = sqlx::query_as(
                "SELECT p.* FROM project_members m JOIN projects p ON p.id = m.project_id
                 WHERE m.user_id = $1 AND m.project_id > $2 ORDER BY m.project_id LIMIT $3 OFFSET $4",
            )
            .bind(user.0)
            .bind(after)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(pool)
            .await?;
            let total = sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT 1 FROM project_members WHERE user_id = $1 LIMIT $2) AS counted",
            )
            .bind(user.0)
            .bind(Self::COUNT_BOUND)
            .fetch_one(pool)
            .await?;
            (rows, total)
        });
        let items = rows.into_iter().map(|r| r.into_domain().map(|(p, _)| p)).collect::<StoreResult<_>>()?;
        Ok(Paged { items, total })
    }

    /// Reads the project, lets `change` edit it and writes it back unless someone else changed
    /// it meanwhile (then it starts over).
    ///
    /// Errors: `NotFound`, `Invalid` from `change`, `Conflict` when edits keep colliding.
    #[tracing::instrument(skip(self, change))]
    pub async fn update_project(
        &self,
        id: ProjectId,
        change: impl FnMut(&mut Project) -> ValidationResult<()> + Send,
    ) -> StoreResult<Project> {
        update_versioned(self, id, change).await
    }

    /// Deletes the project with its tracks, clips, takes, sessions and loop regions.
    /// Returns whether it existed.
    #[tracing::instrument(skip(self))]
    pub async fn delete_project(&self, id: ProjectId) -> StoreResult<bool> {
        let deleted = on_pool!(self, pool => sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id.0)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(deleted == 1)
    }
}

impl Versioned for Project {
    type Id = ProjectId;
    const WHAT: &'static str = "project";

    async fn load(store: &Store, id: ProjectId) -> StoreResult<Option<(Self, i64)>> {
        store.project_row(id).await
    }

    async fn save(&self, store: &Store, version: i64) -> StoreResult<bool> {
        let project = self;
        let written = on_pool!(store, pool => sqlx::query(
            "UPDATE projects SET name = $3, description = $4, bit_depth = $5, tempo = $6, time_signature = $7,
                    updated_at = $8, version = version + 1
             WHERE id = $1 AND version = $2",
        )
        .bind(project.id.0)
        .bind(version)
        .bind(&project.name)
        .bind(&project.description)
        .bind(project.bit_depth.bits() as i16)
        .bind(project.tempo.bpm())
        .bind(project.time_signature.to_string())
        .bind(project.updated_at)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(written == 1)
    }
}
