-- The seed data model (shared/seed/000_59da458cf6ac88f9.txt), to the letter.
-- Never edit once applied: later changes go into new migrations.

-- Create enum types
CREATE TYPE provisioning_job_status AS ENUM (
    'PENDING',
    'IN_PROGRESS',
    'COMPLETED',
    'FAILED',
    'RETRYING'
);

CREATE TYPE user_role AS ENUM (
    'ADMIN',
    'AGENCY_ADMIN',
    'SUPPORT'
);

CREATE TYPE provisioning_step_status AS ENUM (
    'STARTED',
    'COMPLETED',
    'FAILED'
);

-- Agency table
CREATE TABLE agencies (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(255) NOT NULL,
    ghl_agency_id VARCHAR(255) NOT NULL UNIQUE,
    oauth_access_token_encrypted TEXT NOT NULL,
    oauth_refresh_token_encrypted TEXT NOT NULL,
    token_expires_at TIMESTAMP NOT NULL,
    settings_json JSONB,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_agencies_ghl_agency_id ON agencies(ghl_agency_id);
CREATE INDEX idx_agencies_token_expires_at ON agencies(token_expires_at);
CREATE INDEX idx_agencies_created_at ON agencies(created_at);

-- Snapshot table
CREATE TABLE snapshots (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agency_id UUID NOT NULL REFERENCES agencies(id) ON DELETE CASCADE,
    ghl_snapshot_id VARCHAR(255) NOT NULL,
    name VARCHAR(255) NOT NULL,
    niche VARCHAR(255),
    description TEXT,
    is_active BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_snapshots_agency_id ON snapshots(agency_id);
CREATE INDEX idx_snapshots_ghl_snapshot_id ON snapshots(ghl_snapshot_id);
CREATE INDEX idx_snapshots_is_active ON snapshots(is_active);
CREATE UNIQUE INDEX idx_snapshots_agency_ghl_id ON snapshots(agency_id, ghl_snapshot_id);

-- ProvisioningJob table
CREATE TABLE provisioning_jobs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agency_id UUID NOT NULL REFERENCES agencies(id) ON DELETE CASCADE,
    status provisioning_job_status NOT NULL DEFAULT 'PENDING',
    client_data_json JSONB NOT NULL,
    snapshot_id UUID REFERENCES snapshots(id) ON DELETE SET NULL,
    location_id VARCHAR(255),
    error_message TEXT,
    retry_count INTEGER DEFAULT 0,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_provisioning_jobs_agency_id ON provisioning_jobs(agency_id);
CREATE INDEX idx_provisioning_jobs_status ON provisioning_jobs(status);
CREATE INDEX idx_provisioning_jobs_snapshot_id ON provisioning_jobs(snapshot_id);
CREATE INDEX idx_provisioning_jobs_created_at ON provisioning_jobs(created_at);
CREATE INDEX idx_provisioning_jobs_updated_at ON provisioning_jobs(updated_at);
CREATE INDEX idx_provisioning_jobs_agency_status ON provisioning_jobs(agency_id, status);

-- ProvisioningLog table
CREATE TABLE provisioning_logs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id UUID NOT NULL REFERENCES provisioning_jobs(id) ON DELETE CASCADE,
    timestamp TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    step VARCHAR(255) NOT NULL,
    status provisioning_step_status NOT NULL,
    details_json JSONB,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_provisioning_logs_job_id ON provisioning_logs(job_id);
CREATE INDEX idx_provisioning_logs_timestamp ON provisioning_logs(timestamp);
CREATE INDEX idx_provisioning_logs_step ON provisioning_logs(step);
CREATE INDEX idx_provisioning_logs_job_timestamp ON provisioning_logs(job_id, timestamp DESC);

-- User table
CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    email VARCHAR(255) NOT NULL UNIQUE,
    password_hash VARCHAR(255) NOT NULL,
    role user_role NOT NULL DEFAULT 'AGENCY_ADMIN',
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_users_email ON users(email);
CREATE INDEX idx_users_role ON users(role);
CREATE INDEX idx_users_created_at ON users(created_at);
