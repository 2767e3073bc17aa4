-- Where each cluster's recorded history begins and how far its rollups
-- reach, so charts average levels over the time actually recorded: before
-- the ledger first watched a cluster is a gap, not zero GPUs, and the
-- current hour's rollup counts only up to the pass that wrote it.

-- The earliest moment the ledger knows of: its first confirmation of the
-- cluster, or an earlier interval start (a pod bound before Gantry watched).
-- Kept past the retention of the rows it was read from.
CREATE TABLE ledger_history (
    cluster   TEXT   PRIMARY KEY,
    begins_ms BIGINT NOT NULL
);

INSERT INTO ledger_history (cluster, begins_ms)
SELECT cluster, MIN(at_ms) FROM (
    SELECT cluster, start_ms AS at_ms FROM gpu_allocations
    UNION ALL SELECT cluster, start_ms FROM gpu_capacity
    UNION ALL SELECT cluster, hour_ms FROM usage_hourly_nodes
) AS known
GROUP BY cluster;

-- The time the last roll-up pass computed the cluster's hours as of.
ALTER TABLE rollup_watermarks ADD COLUMN rolled_to_ms BIGINT;
