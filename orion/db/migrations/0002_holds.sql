-- Holds (two-phase transfers: pending -> posted / voided / expired) and reversals.
-- A hold moves no money: it adds its amount to the debit account's pending_debits and the
-- credit account's pending_credits until a post, void or expire record resolves it. What an
-- account may still spend is balance - pending_debits, held to its overdraft limit.

ALTER TABLE accounts
    ADD COLUMN pending_debits  bigint NOT NULL DEFAULT 0 CHECK (pending_debits >= 0),
    ADD COLUMN pending_credits bigint NOT NULL DEFAULT 0 CHECK (pending_credits >= 0),
    DROP CONSTRAINT balance_within_overdraft,
    ADD CONSTRAINT available_within_overdraft
        CHECK (overdraft_limit IS NULL OR balance - pending_debits >= -overdraft_limit);

-- kind: what the record asked for. target_id: the hold a post / void / expire acts on, or
-- the transfer a reversal reverses. expires_at: when an unresolved hold expires.
-- posted_amount: what a posted hold moved. reversed_amount: the sum of its completed
-- reversals, never above what the transfer moved.
ALTER TABLE transfers
    ADD COLUMN kind text NOT NULL DEFAULT 'immediate'
        CHECK (kind IN ('immediate', 'pending', 'post', 'void', 'expire', 'reversal')),
    ADD COLUMN target_id uuid,
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN posted_amount bigint,
    ADD COLUMN reversed_amount bigint NOT NULL DEFAULT 0,
    DROP CONSTRAINT transfers_status_check,
    ADD CONSTRAINT transfers_status_check CHECK (status IN
        ('claimed', 'completed', 'rejected', 'pending', 'posted', 'voided', 'expired')),
    ADD CONSTRAINT targeted_kinds_name_their_target
        CHECK ((kind IN ('post', 'void', 'expire', 'reversal')) = (target_id IS NOT NULL)),
    ADD CONSTRAINT holds_have_a_timeout CHECK ((kind = 'pending') = (expires_at IS NOT NULL)),
    ADD CONSTRAINT posted_within_hold
        CHECK (posted_amount IS NULL OR posted_amount BETWEEN 1 AND amount),
    ADD CONSTRAINT reversed_within_moved
        CHECK (reversed_amount BETWEEN 0 AND coalesce(posted_amount, amount));

-- The expiry scan: open holds by deadline.
CREATE INDEX transfers_open_holds ON transfers (expires_at) WHERE status = 'pending';
-- The audit and the API: what acted on a hold, what reversed a transfer.
CREATE INDEX transfers_target ON transfers (target_id) WHERE target_id IS NOT NULL;
