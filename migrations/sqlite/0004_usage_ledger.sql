-- Usage history: an exact ledger of GPU allocation and capacity, hourly and
-- daily rollups of it, prices with effective times, a leader lease, budget
-- alerts with their webhook deliveries, and per-cluster Prometheus settings.
-- Times are Unix milliseconds; GPU amounts milli-GPUs; see
-- crates/store/src/rollups.rs for the units of the rollup columns.

-- GPUs one pod held on one node. end_ms NULL while it still holds them; at
-- most one open interval per pod, so two writers can never double one.
CREATE TABLE gpu_allocations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster       TEXT    NOT NULL,
    namespace     TEXT    NOT NULL,
    team          TEXT,
    workload      TEXT    NOT NULL,
    pod           TEXT    NOT NULL,
    pod_uid       TEXT    NOT NULL,
    node          TEXT    NOT NULL,
    model         TEXT    NOT NULL,
    capacity_type TEXT    NOT NULL CHECK (capacity_type IN ('spot', 'on-demand', 'unknown')),
    milli_gpus    INTEGER NOT NULL CHECK (milli_gpus >= 0),
    mig           TEXT,
    start_ms      INTEGER NOT NULL,
    end_ms        INTEGER CHECK (end_ms >= start_ms)
);
CREATE UNIQUE INDEX gpu_allocations_open ON gpu_allocations (cluster, pod_uid) WHERE end_ms IS NULL;
CREATE INDEX gpu_allocations_cluster_end ON gpu_allocations (cluster, end_ms);
CREATE INDEX gpu_allocations_end ON gpu_allocations (end_ms);

-- GPUs a node offered; at most one open interval per node.
CREATE TABLE gpu_capacity (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster       TEXT    NOT NULL,
    node          TEXT    NOT NULL,
    node_uid      TEXT    NOT NULL,
    model         TEXT    NOT NULL,
    capacity_type TEXT    NOT NULL CHECK (capacity_type IN ('spot', 'on-demand', 'unknown')),
    milli_gpus    INTEGER NOT NULL CHECK (milli_gpus >= 0),
    start_ms      INTEGER NOT NULL,
    end_ms        INTEGER CHECK (end_ms >= start_ms)
);
CREATE UNIQUE INDEX gpu_capacity_open ON gpu_capacity (cluster, node_uid) WHERE end_ms IS NULL;
CREATE INDEX gpu_capacity_cluster_end ON gpu_capacity (cluster, end_ms);
CREATE INDEX gpu_capacity_end ON gpu_capacity (end_ms);

-- Times the ledger cannot vouch for: 'stale' (the cluster could not be
-- watched: nothing in it is billed), 'downtime' (Gantry was not running:
-- informational). At most one open gap per cluster.
CREATE TABLE ledger_gaps (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster  TEXT    NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms   INTEGER CHECK (end_ms >= start_ms),
    reason   TEXT    NOT NULL CHECK (reason IN ('stale', 'downtime'))
);
CREATE UNIQUE INDEX ledger_gaps_open ON ledger_gaps (cluster) WHERE end_ms IS NULL;
CREATE INDEX ledger_gaps_cluster_end ON ledger_gaps (cluster, end_ms);
CREATE INDEX ledger_gaps_end ON ledger_gaps (end_ms);

-- Rollups. GPU time in milli-GPU-milliseconds, utilisation as busy
-- milli-GPU-milliseconds, money in nano-dollars (rollups.rs says why).
CREATE TABLE usage_hourly (
    hour_ms              INTEGER NOT NULL,
    cluster              TEXT    NOT NULL,
    namespace            TEXT    NOT NULL,
    team                 TEXT    NOT NULL,
    workload             TEXT    NOT NULL,
    model                TEXT    NOT NULL,
    capacity_type        TEXT    NOT NULL,
    allocated            INTEGER NOT NULL,
    capacity             INTEGER NOT NULL,
    idle                 INTEGER NOT NULL,
    unpriced             INTEGER NOT NULL,
    util_known           INTEGER NOT NULL,
    util_busy            INTEGER NOT NULL,
    wasted               INTEGER NOT NULL,
    cost_nanos           INTEGER NOT NULL,
    idle_cost_nanos      INTEGER NOT NULL,
    on_demand_cost_nanos INTEGER NOT NULL,
    wasted_cost_nanos    INTEGER NOT NULL,
    PRIMARY KEY (hour_ms, cluster, namespace, team, workload, model, capacity_type)
);
CREATE INDEX usage_hourly_cluster ON usage_hourly (cluster, hour_ms);

CREATE TABLE usage_hourly_nodes (
    hour_ms              INTEGER NOT NULL,
    cluster              TEXT    NOT NULL,
    node                 TEXT    NOT NULL,
    model                TEXT    NOT NULL,
    capacity_type        TEXT    NOT NULL,
    allocated            INTEGER NOT NULL,
    capacity             INTEGER NOT NULL,
    idle                 INTEGER NOT NULL,
    unpriced             INTEGER NOT NULL,
    util_known           INTEGER NOT NULL,
    util_busy            INTEGER NOT NULL,
    wasted               INTEGER NOT NULL,
    cost_nanos           INTEGER NOT NULL,
    idle_cost_nanos      INTEGER NOT NULL,
    on_demand_cost_nanos INTEGER NOT NULL,
    wasted_cost_nanos    INTEGER NOT NULL,
    PRIMARY KEY (hour_ms, cluster, node, model, capacity_type)
);
CREATE INDEX usage_hourly_nodes_cluster ON usage_hourly_nodes (cluster, hour_ms);

CREATE TABLE usage_daily (
    day_ms               INTEGER NOT NULL,
    cluster              TEXT    NOT NULL,
    namespace            TEXT    NOT NULL,
    team                 TEXT    NOT NULL,
    workload             TEXT    NOT NULL,
    model                TEXT    NOT NULL,
    capacity_type        TEXT    NOT NULL,
    allocated            INTEGER NOT NULL,
    capacity             INTEGER NOT NULL,
    idle                 INTEGER NOT NULL,
    unpriced             INTEGER NOT NULL,
    util_known           INTEGER NOT NULL,
    util_busy            INTEGER NOT NULL,
    wasted               INTEGER NOT NULL,
    cost_nanos           INTEGER NOT NULL,
    idle_cost_nanos      INTEGER NOT NULL,
    on_demand_cost_nanos INTEGER NOT NULL,
    wasted_cost_nanos    INTEGER NOT NULL,
    PRIMARY KEY (day_ms, cluster, namespace, team, workload, model, capacity_type)
);
CREATE INDEX usage_daily_cluster ON usage_daily (cluster, day_ms);

-- Hours before the watermark are final for that cluster.
-- When each cluster's ledger last matched what its caches showed: after a
-- restart, an interval whose pod vanished meanwhile is closed here, the last
-- moment Gantry knew it was running, rather than charged for the downtime.
CREATE TABLE ledger_confirmed (
    cluster      TEXT   PRIMARY KEY,
    confirmed_ms INTEGER NOT NULL
);

CREATE TABLE rollup_watermarks (
    cluster  TEXT    PRIMARY KEY,
    final_ms INTEGER NOT NULL
);

-- Prices with effective times. cluster NULL is the global price, a cluster's
-- own price wins over it; micro_usd_per_hour NULL removes the price from
-- effective_from on. Points are only appended, so the past keeps its price.
CREATE TABLE gpu_price_points (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster            TEXT,
    model              TEXT    NOT NULL,
    capacity_type      TEXT    NOT NULL CHECK (capacity_type IN ('on-demand', 'spot')),
    micro_usd_per_hour INTEGER CHECK (micro_usd_per_hour >= 0),
    effective_from     INTEGER NOT NULL,
    created_at         INTEGER NOT NULL
);
CREATE INDEX gpu_price_points_key ON gpu_price_points (model, capacity_type, cluster, effective_from);
CREATE INDEX gpu_price_points_cluster ON gpu_price_points (cluster);
-- Today's prices become the first points, in effect since they were set;
-- the old table goes, so nothing can read a price list that no longer moves.
INSERT INTO gpu_price_points (cluster, model, capacity_type, micro_usd_per_hour, effective_from, created_at)
    SELECT NULL, model, capacity_type, micro_usd_per_hour, updated_at, updated_at FROM gpu_prices
    ORDER BY updated_at, model, capacity_type;
DROP TABLE gpu_prices;

-- One replica at a time does the work named by a lease (rollups, alerts).
CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE team_webhooks (
    team_id    INTEGER PRIMARY KEY REFERENCES teams (id) ON DELETE CASCADE,
    url        TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

-- One row per alert that fired: the primary key makes each fire once.
CREATE TABLE budget_alerts (
    team_id  INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    month_ms INTEGER NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind IN ('actual', 'forecast')),
    percent  INTEGER NOT NULL,
    fired_at INTEGER NOT NULL,
    PRIMARY KEY (team_id, month_ms, kind, percent)
);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id         INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    payload         TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    delivered_at    INTEGER,
    created_at      INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX webhook_deliveries_team ON webhook_deliveries (team_id, id);

-- The token arrives sealed by the service; the store keeps bytes.
CREATE TABLE cluster_prometheus (
    cluster      TEXT    PRIMARY KEY,
    url          TEXT    NOT NULL,
    sealed_token BLOB,
    updated_at   INTEGER NOT NULL
);
