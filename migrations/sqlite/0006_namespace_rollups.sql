-- The rollups again without the workload: per namespace (and team), model
-- and capacity type, at both grains. A question that does not break down by
-- workload (by team, namespace, cluster, model; a team's spend; most
-- charts) reads these, dozens of rows a day instead of thousands.
-- `workload` is kept as a key so idle capacity stays its own row: it holds
-- '__idle__' for the cluster's idle capacity and '' for every workload of
-- the namespace together. Written beside the other rollups, in the same
-- transaction (Store::replace_hour).

CREATE TABLE usage_hourly_namespaces (
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
CREATE INDEX usage_hourly_namespaces_cluster ON usage_hourly_namespaces (cluster, hour_ms);

CREATE TABLE usage_daily_namespaces (
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
CREATE INDEX usage_daily_namespaces_cluster ON usage_daily_namespaces (cluster, day_ms);

-- The history rolled up so far, summed the same way.
INSERT INTO usage_hourly_namespaces
SELECT hour_ms, cluster, namespace, team, CASE WHEN workload = '__idle__' THEN workload ELSE '' END, model, capacity_type,
       SUM(allocated), SUM(capacity), SUM(idle), SUM(unpriced), SUM(util_known), SUM(util_busy), SUM(wasted),
       SUM(cost_nanos), SUM(idle_cost_nanos), SUM(on_demand_cost_nanos), SUM(wasted_cost_nanos)
FROM usage_hourly
GROUP BY hour_ms, cluster, namespace, team, CASE WHEN workload = '__idle__' THEN workload ELSE '' END, model, capacity_type;

INSERT INTO usage_daily_namespaces
SELECT day_ms, cluster, namespace, team, CASE WHEN workload = '__idle__' THEN workload ELSE '' END, model, capacity_type,
       SUM(allocated), SUM(capacity), SUM(idle), SUM(unpriced), SUM(util_known), SUM(util_busy), SUM(wasted),
       SUM(cost_nanos), SUM(idle_cost_nanos), SUM(on_demand_cost_nanos), SUM(wasted_cost_nanos)
FROM usage_daily
GROUP BY day_ms, cluster, namespace, team, CASE WHEN workload = '__idle__' THEN workload ELSE '' END, model, capacity_type;
