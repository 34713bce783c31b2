-- When an agency's snapshots were last synced from GHL (issue 14 item 6):
-- set by POST /agencies/{id}/snapshots/sync, shown on the snapshots page.
ALTER TABLE agencies ADD COLUMN snapshots_synced_at TIMESTAMPTZ NULL;
