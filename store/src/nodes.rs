//! Audio nodes and the assignment of projects to them.
//!
//! A node heartbeats while it runs. A project is assigned to one node at a time; when that
//! node stops heartbeating, the next request moves the project to the live node with the
//! fewest projects.

use crate::{Store, StoreResult, on_pool};
use chrono::{DateTime, Utc};
use std::time::Duration;
use uuid::Uuid;

use audiolab_domain::ProjectId;

/// A node that can host engines, and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AudioNode {
    pub id: Uuid,
    pub url: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    /// Engines loaded at the last heartbeat.
    pub engines: i64,
    /// Engines the node may load (0: not reported).
    pub max_engines: i64,
}

impl AudioNode {
    /// Whether the node said it cannot load another engine.
    pub fn is_full(&self) -> bool {
        self.max_engines > 0 && self.engines >= self.max_engines
    }
}

/// What a node reports of its engines with each heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeLoad {
    pub engines: i64,
    pub max_engines: i64,
}

impl Store {
    /// Records that node `id` at `url` is alive now with `load` (inserting it the first time).
    pub async fn heartbeat_node(&self, id: Uuid, url: &str, load: NodeLoad) -> StoreResult<()> {
        let now = audiolab_domain::now();
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO audio_nodes (id, url, started_at, heartbeat_at, engines, max_engines) VALUES ($1, $2, $3, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, heartbeat_at = EXCLUDED.heartbeat_at,
                                            engines = EXCLUDED.engines, max_engines = EXCLUDED.max_engines",
        )
        .bind(id)
        .bind(url)
        .bind(now)
        .bind(load.engines)
        .bind(load.max_engines)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    /// Removes a node that is shutting down; its projects move on their next request.
    pub async fn remove_node(&self, id: Uuid) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query("DELETE FROM audio_nodes WHERE id = $1").bind(id).execute(pool).await.map(drop)?);
        Ok(())
    }

    /// Nodes that heartbeat within `stale_after`: those with room first, then the fewest
    /// projects first.
    pub async fn live_nodes(&self, stale_after: Duration) -> StoreResult<Vec<AudioNode>> {
        let cutoff = audiolab_domain::now() - chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX);
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT n.* FROM audio_nodes n
             LEFT JOIN project_assignments a ON a.node_id = n.id
             WHERE n.heartbeat_at >= $1
             GROUP BY n.id, n.url, n.started_at, n.heartbeat_at, n.engines, n.max_engines
             ORDER BY (n.max_engines > 0 AND n.engines >= n.max_engines), COUNT(a.project_id), n.id",
        )
        .bind(cutoff)
        .fetch_all(pool)
        .await?))
    }

    /// The live node `project` is assigned to, if any (without assigning it).
    pub async fn live_host_of(&self, project: ProjectId, stale_after: Duration) -> StoreResult<Option<Uuid>> {
        let cutoff = audiolab_domain::now() - chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX);
        Ok(on_pool!(self, pool => sqlx::query_scalar(
            "SELECT a.node_id FROM project_assignments a JOIN audio_nodes n ON n.id = a.node_id
             WHERE a.project_id = $1 AND n.heartbeat_at >= $2",
        )
        .bind(project.0)
        .bind(cutoff)
        .fetch_optional(pool)
        .await?))
    }

    /// The live node hosting `project`, assigning it to the least loaded live node when it has
    /// none or its node went quiet. `None` when no node is alive.
    #[tracing::instrument(skip(self))]
    pub async fn node_for_project(&self, project: ProjectId, stale_after: Duration) -> StoreResult<Option<AudioNode>> {
        let live = self.live_nodes(stale_after).await?;
        let Some(least_loaded) = live.first() else { return Ok(None) };
        let current = self.assignment(project).await?;
        if let Some(node) = current.and_then(|id| live.iter().find(|n| n.id == id)) {
            return Ok(Some(node.clone()));
        }
        // Take the project unless another process moved it to a live node meanwhile.
        let now = audiolab_domain::now();
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO project_assignments (project_id, node_id, assigned_at) VALUES ($1, $2, $3)
             ON CONFLICT (project_id) DO UPDATE SET node_id = EXCLUDED.node_id, assigned_at = EXCLUDED.assigned_at
             WHERE project_assignments.node_id = $4",
        )
        .bind(project.0)
        .bind(least_loaded.id)
        .bind(now)
        .bind(current)
        .execute(pool)
        .await
        .map(drop)?);
        let assigned = self.assignment(project).await?;
        Ok(assigned.and_then(|id| live.into_iter().find(|n| n.id == id)))
    }

    /// Moves `project` off node `from` (which refused it, being full) to the live node with
    /// room and the fewest projects, unless another process moved it meanwhile. Returns where
    /// the project is now, or `None` when no other node has room.
    #[tracing::instrument(skip(self))]
    pub async fn move_project(
        &self,
        project: ProjectId,
        from: Uuid,
        stale_after: Duration,
    ) -> StoreResult<Option<AudioNode>> {
        let live = self.live_nodes(stale_after).await?;
        let Some(target) = live.iter().find(|n| n.id != from && !n.is_full()) else { return Ok(None) };
        on_pool!(self, pool => sqlx::query(
            "UPDATE project_assignments SET node_id = $1, assigned_at = $2 WHERE project_id = $3 AND node_id = $4",
        )
        .bind(target.id)
        .bind(audiolab_domain::now())
        .bind(project.0)
        .bind(from)
        .execute(pool)
        .await
        .map(drop)?);
        let assigned = self.assignment(project).await?;
        Ok(assigned.and_then(|id| live.into_iter().find(|n| n.id == id)))
    }

    /// The node `project` is assigned to, live or not.
    async fn assignment(&self, project: ProjectId) -> StoreResult<Option<Uuid>> {
        Ok(on_pool!(self, pool => sqlx::query_scalar("SELECT node_id FROM project_assignments WHERE project_id = $1")
            .bind(project.0)
            .fetch_optional(pool)
            .await?))
    }
}
