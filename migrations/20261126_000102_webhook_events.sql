-- GHL webhooks already processed (core/webhooks.c): the unique webhook_id makes a
-- replayed delivery detectable. A webhook without webhookId is keyed by
-- "sha256:" || hex(SHA-256 of its raw body).
CREATE TABLE webhook_events (
    id BIGSERIAL PRIMARY KEY,
    webhook_id VARCHAR(255) NOT NULL UNIQUE,
    type VARCHAR(64) NOT NULL,
    company_id VARCHAR(255) NULL,
    location_id VARCHAR(255) NULL,
    received_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_webhook_events_received_at ON webhook_events(received_at);
CREATE INDEX idx_webhook_events_company_id ON webhook_events(company_id);
