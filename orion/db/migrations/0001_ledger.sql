-- Orion's ledger: accounts, transfers, double-entry entries.
-- Money is bigint minor units. System accounts start with '@' ('@world:<CUR>', one per
-- currency, unbounded overdraft) so the sum of all balances is always zero.

CREATE TABLE accounts (
    id              text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    currency        char(3)     NOT NULL,
    balance         bigint      NOT NULL DEFAULT 0,
    -- NULL means unbounded: only system accounts ('@world:<CUR>') have it.
    overdraft_limit bigint      CHECK (overdraft_limit IS NULL OR overdraft_limit >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT balance_within_overdraft
        CHECK (overdraft_limit IS NULL OR balance >= -overdraft_limit),
    CONSTRAINT only_system_accounts_unbounded
        CHECK (overdraft_limit IS NOT NULL OR id LIKE '@%')
);

CREATE SEQUENCE transfer_settle_seq;

CREATE TABLE transfers (
    id                uuid        PRIMARY KEY,
    debit_account_id  text        NOT NULL,
    credit_account_id text        NOT NULL,
    amount            bigint      NOT NULL CHECK (amount > 0),
    currency          char(3)     NOT NULL,
    -- 'claimed' exists only inside the shard transaction that claimed the row.
    status            text        NOT NULL CHECK (status IN ('claimed', 'completed', 'rejected')),
    reason            text,
    batch_id          uuid,
    shard             integer,
    kafka_partition   integer,
    kafka_offset      bigint,
    settle_seq        bigint,     -- global settlement order, for the per-account order audit
    metadata          jsonb,
    accepted_at       timestamptz NOT NULL,
    settled_at        timestamptz,
    CONSTRAINT rejected_has_reason CHECK (status <> 'rejected' OR reason IS NOT NULL)
);
CREATE INDEX transfers_debit_order ON transfers (debit_account_id, kafka_partition, kafka_offset);

CREATE TABLE entries (
    id            bigserial   PRIMARY KEY,
    transfer_id   uuid        NOT NULL REFERENCES transfers (id),
    account_id    text        NOT NULL REFERENCES accounts (id),
    delta         bigint      NOT NULL CHECK (delta <> 0),
    balance_after bigint      NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Cursor paging of an account's statement, newest first, and the audit's per-transfer check.
CREATE INDEX entries_account_id ON entries (account_id, id);
CREATE INDEX entries_transfer ON entries (transfer_id);
