-- Supervision (政务信息共享网站 监督侧): each department's information systems (自查), the
-- operator's zombie-system decisions, project filings and O&M reviews (备案, 运维经费评估),
-- monthly progress reports (每月进展), and the department API's own use counted per
-- token and day, so that figures come from traffic rather than from forms.

-- A department's information system (政务信息系统), as the self-inspection lists it.
CREATE TABLE info_systems (
    id               TEXT PRIMARY KEY,               -- TEXTv7
    department       TEXT NOT NULL,                  -- USCC of the owning department
    name             TEXT NOT NULL,
    function         TEXT NOT NULL,                  -- what it does (功能)
    users_scope      TEXT NOT NULL,                  -- who uses it and where (使用范围)
    frequency        TEXT NOT NULL CHECK (frequency IN ('daily', 'weekly', 'monthly', 'rarely')),
    approved_by      TEXT NOT NULL DEFAULT '',       -- approving department (审批部门)
    approved_on      TEXT,                           -- approval date (审批时间)
    funding          TEXT NOT NULL DEFAULT '',       -- funding source (经费来源)
    build_cost       BIGINT NOT NULL DEFAULT 0,      -- yuan
    om_cost_per_year BIGINT NOT NULL DEFAULT 0,      -- yuan per year
    network          TEXT NOT NULL CHECK (network IN ('internet', 'intranet', 'private')),  -- 外网 / 内网 / 专网
    hosting          TEXT NOT NULL CHECK (hosting IN ('data_centre', 'own_room')),         -- 大数据中心 / 自建机房
    -- How it connects to the exchange: any of the three may be empty.
    token_id         TEXT,                           -- its department API token (api_tokens.id)
    push_endpoint    TEXT,                           -- where the exchange pushes its events
    data_api         TEXT,                           -- its data API for shared resources
    meant_to_connect INTEGER NOT NULL DEFAULT 1,  -- counted in the connectivity denominator
    status           TEXT NOT NULL DEFAULT 'active'
                     CHECK (status IN ('active', 'flagged', 'kept', 'cleared', 'merged')),
    merged_into      TEXT REFERENCES info_systems (id),
    created_by       TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX info_systems_department ON info_systems (department, status);

-- Zombie flags the detector raised and the operator's decision on them.
CREATE TABLE system_decisions (
    id           TEXT PRIMARY KEY,                  -- TEXTv7
    system_id    TEXT NOT NULL REFERENCES info_systems (id),
    flags        TEXT NOT NULL,                    -- the flag codes shown when deciding
    decision     TEXT NOT NULL CHECK (decision IN ('clear', 'merge', 'keep')),
    merged_into  TEXT REFERENCES info_systems (id),
    reason       TEXT NOT NULL,
    decided_by   TEXT NOT NULL,                     -- account id of the operator
    decided_name TEXT NOT NULL,
    decided_at   TEXT NOT NULL
);
CREATE INDEX system_decisions_system ON system_decisions (system_id, decided_at);

-- A department's self-inspection report (自查报告) for a year, with its integration plan
-- (整合共享计划) and its needs for other departments' data (跨部门信息资源需求).
CREATE TABLE self_inspections (
    department       TEXT NOT NULL,
    year             INTEGER NOT NULL,
    integration_plan TEXT NOT NULL,
    data_needs       TEXT NOT NULL,                -- [{provider, resource, items, purpose}]
    submitted_by     TEXT NOT NULL,
    submitted_name   TEXT NOT NULL,
    submitted_at     TEXT NOT NULL,
    PRIMARY KEY (department, year)
);

-- A project filing (备案) for construction or O&M money, and its review.
CREATE TABLE filings (
    id             TEXT PRIMARY KEY,                -- TEXTv7
    department     TEXT NOT NULL,
    system_id      TEXT REFERENCES info_systems (id),
    kind           TEXT NOT NULL CHECK (kind IN ('construction', 'om')),
    title          TEXT NOT NULL,
    amount         BIGINT NOT NULL,                 -- yuan
    justification  TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('submitted', 'returned', 'expert_review', 'approved', 'rejected')),
    review_reasons TEXT NOT NULL DEFAULT '[]',     -- why an O&M request must be reviewed: zombie | own_room
    created_by     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX filings_department ON filings (department, created_at);
CREATE INDEX filings_state ON filings (state, created_at);

-- Every step of a filing: submitted, returned with comments, resubmitted, sent to
-- expert review, approved, rejected.
CREATE TABLE filing_events (
    filing_id  TEXT NOT NULL REFERENCES filings (id),
    seq        INTEGER NOT NULL,
    action     TEXT NOT NULL,
    comment    TEXT NOT NULL DEFAULT '',
    actor      TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (filing_id, seq)
);

-- A department's monthly progress report (每月30日前报送截至上月底进展) on the plan's tasks.
CREATE TABLE progress_reports (
    department     TEXT NOT NULL,
    month          TEXT NOT NULL,                   -- the month reported on, YYYY-MM
    tasks          TEXT NOT NULL,                  -- [{task, percent, note}]
    submitted_by   TEXT NOT NULL,
    submitted_name TEXT NOT NULL,
    submitted_at   TEXT NOT NULL,
    late           INTEGER NOT NULL,                -- submitted after the deadline
    PRIMARY KEY (department, month)
);

-- Calls to the department API per token and day (the exchange's own record of use).
CREATE TABLE token_usage (
    token_id   TEXT NOT NULL,
    day        TEXT NOT NULL,
    calls      BIGINT NOT NULL,
    failures   BIGINT NOT NULL,
    last_ok_at TEXT,
    PRIMARY KEY (token_id, day)
);
