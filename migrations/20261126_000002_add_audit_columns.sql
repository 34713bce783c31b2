-- The seed's 002_add_audit_columns example: agencies are soft-deleted through deleted_at.
ALTER TABLE agencies ADD COLUMN deleted_at TIMESTAMP NULL;
CREATE INDEX idx_agencies_deleted_at ON agencies(deleted_at) WHERE deleted_at IS NULL;
