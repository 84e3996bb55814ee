-- Packed records (load/design-ingest-records.md): one record of the transfers topic may carry
-- several transfers, in acceptance order. kafka_index is a transfer's place in its packed
-- record, NULL for a record carrying one transfer; acceptance order per debit account is
-- (kafka_partition, kafka_offset, kafka_index), which the audit's order check follows.
ALTER TABLE transfers ADD COLUMN kafka_index integer CHECK (kafka_index >= 0);

DROP INDEX transfers_debit_order;
CREATE INDEX transfers_debit_order
    ON transfers (debit_account_id, kafka_partition, kafka_offset, kafka_index);
