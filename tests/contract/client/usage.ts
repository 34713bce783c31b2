// usage.ts — what an integrator's code does with the client generated from
// docs/openapi.yaml (openapi-typescript → generated/api.d.ts). It must compile
// under `strict`: a path that disappears, a field that is renamed, removed, made
// optional or changes its type breaks this file, so a breaking change to the
// contract fails the contract/client test. Additions break nothing.
// Extending: a new operation integrators rely on gets a line in Paths and, for
// its answer, a function below that reads every field it promises.
import type { components, paths } from "./generated/api";

type S = components["schemas"];

// Every path integrators call; removing or renaming one fails to compile.
type Paths = [
  paths["/api/v1/auth/login"]["post"],
  paths["/api/v1/auth/logout"]["post"],
  paths["/api/v1/me"]["get"],
  paths["/api/v1/agencies"]["get"],
  paths["/api/v1/agencies/{id}"]["get"],
  paths["/api/v1/agencies/{id}"]["patch"],
  paths["/api/v1/agencies/{id}/api-keys"]["post"],
  paths["/api/v1/agencies/{id}/jobs"]["post"],
  paths["/api/v1/agencies/{id}/jobs/batch"]["post"],
  paths["/api/v1/jobs"]["get"],
  paths["/api/v1/jobs/{id}"]["get"],
  paths["/api/v1/jobs/{id}/logs"]["get"],
  paths["/api/v1/jobs/{id}/retry"]["post"],
  paths["/api/v1/jobs/{id}/cancel"]["post"],
  paths["/api/v1/agencies/{id}/snapshots"]["get"],
  paths["/api/v1/reports/success-rates"]["get"],
];
export type { Paths };

// The JSON body of an operation's answer with the given status.
type Answer<Op, Status extends number> = Op extends {
  responses: { [K in Status]: { content: { "application/json": infer B } } };
}
  ? B
  : never;

// A tiny typed client over fetch (the generated types are all it needs).
export class Client {
  constructor(
    private base: string,
    private token: string,
  ) {}

  private async call<T>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    const r = await fetch(this.base + path, {
      method,
      headers: { Authorization: `Bearer ${this.token}`, "Content-Type": "application/json", ...headers },
      body: body === undefined ? null : JSON.stringify(body),
    });
    const data: unknown = r.status === 204 ? undefined : await r.json();
    if (!r.ok) throw new ApiError(r.status, data as S["Error"]);
    return data as T;
  }

  submitJob(agency: string, job: S["JobSubmission"], idempotencyKey?: string): Promise<S["Job"]> {
    const h: Record<string, string> = idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {};
    return this.call("POST", `/api/v1/agencies/${agency}/jobs`, job, h);
  }

  submitBatch(agency: string, jobs: S["JobSubmission"][]): Promise<Answer<paths["/api/v1/agencies/{id}/jobs/batch"]["post"], 201>> {
    return this.call("POST", `/api/v1/agencies/${agency}/jobs/batch`, { jobs });
  }

  job(id: string): Promise<S["Job"]> {
    return this.call("GET", `/api/v1/jobs/${id}`);
  }

  jobs(cursor?: string): Promise<S["JobPage"]> {
    return this.call("GET", `/api/v1/jobs${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ""}`);
  }

  logs(id: string): Promise<S["JobLogPage"]> {
    return this.call("GET", `/api/v1/jobs/${id}/logs`);
  }

  retry(id: string): Promise<S["Job"]> {
    return this.call("POST", `/api/v1/jobs/${id}/retry`);
  }

  me(): Promise<Answer<paths["/api/v1/me"]["get"], 200>> {
    return this.call("GET", "/api/v1/me");
  }

  agency(id: string): Promise<S["Agency"]> {
    return this.call("GET", `/api/v1/agencies/${id}`);
  }

  snapshots(agency: string): Promise<S["SnapshotPage"]> {
    return this.call("GET", `/api/v1/agencies/${agency}/snapshots`);
  }

  createKey(agency: string, name: string): Promise<Answer<paths["/api/v1/agencies/{id}/api-keys"]["post"], 201>> {
    return this.call("POST", `/api/v1/agencies/${agency}/api-keys`, { name });
  }

  rates(): Promise<Answer<paths["/api/v1/reports/success-rates"]["get"], 200>> {
    return this.call("GET", "/api/v1/reports/success-rates");
  }
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public body: S["Error"],
  ) {
    super(`${status} ${body.error.code}: ${body.error.message}`);
  }
  // Validation problems, by field ("client_data.email").
  problems(): string[] {
    return (this.body.error.details ?? []).map((d) => `${d.field}: ${d.message}`);
  }
}

// ---- what integrators read: every promised field, with its type ----------------

export function describeJob(j: S["Job"]): string {
  const status: "PENDING" | "IN_PROGRESS" | "COMPLETED" | "FAILED" | "RETRYING" | "CANCELLED" =
    j.status;
  const retries: number = j.retry_count + j.attempt;
  const when: string = j.finished_at ?? j.started_at ?? j.run_at;
  const location: string | null = j.location_id;
  const snapshot: string | null = j.snapshot_id;
  const key: string | null = j.idempotency_key;
  const cancelling: boolean = j.cancel_requested;
  const step: string | null = j.current_step;
  const outputs: Record<string, unknown> = j.outputs;
  const client: Record<string, unknown> = j.client_data;
  return [j.id, j.agency_id, status, retries, when, location, snapshot, key, cancelling,
    step ?? "", Object.keys(outputs).length, Object.keys(client).length, j.error_message ?? "",
    j.created_at, j.updated_at].join(" ");
}

export function describeLog(l: S["JobLog"]): string {
  const status: "STARTED" | "COMPLETED" | "FAILED" | "WAITING" | "SKIPPED" = l.status;
  const details: Record<string, unknown> | null = l.details;
  return [l.id, l.job_id, l.step, status, details === null, l.timestamp, l.created_at].join(" ");
}

export function describeAgency(a: S["Agency"]): string {
  const reconnect: boolean = a.needs_reconnect;
  const reason: string | null = a.reconnect_reason;
  const settings: S["AgencySettings"] | null = a.settings;
  const retries: number | undefined = settings?.max_retries;
  const onFailure: "fail" | "rollback" | undefined = settings?.on_failure;
  const steps: string[] = (settings?.pipeline ?? []).map((p) => `${p.step}:${p.on_error ?? "fail"}`);
  return [a.id, a.name, a.ghl_agency_id, reconnect, reason, retries, onFailure, steps.join(","),
    settings?.max_concurrent_jobs, a.token_expires_at, a.created_at, a.updated_at].join(" ");
}

export function describeSnapshot(s: S["Snapshot"]): string {
  const niche: string | null = s.niche;
  const active: boolean = s.is_active;
  return [s.id, s.agency_id, s.ghl_snapshot_id, s.name, niche, s.description, active,
    s.created_at, s.updated_at].join(" ");
}

export function describeKey(k: S["ApiKey"]): string {
  const revoked: string | null = k.revoked_at;
  const used: string | null = k.last_used_at;
  const by: string | null = k.created_by;
  return [k.id, k.agency_id, k.name, k.prefix, revoked, used, by, k.created_at].join(" ");
}

export function describeUser(u: S["User"]): string {
  const role: "ADMIN" | "AGENCY_ADMIN" | "SUPPORT" = u.role;
  const agencies: string[] = u.agency_ids;
  return [u.id, u.email, role, agencies.length, u.created_at, u.updated_at].join(" ");
}

export async function example(c: Client, agency: string): Promise<string[]> {
  const out: string[] = [];
  const me = await c.me();
  out.push(me.kind === "session" ? me.user.email + me.user.agency_ids.length : me.api_key.agency_id);
  const job = await c.submitJob(agency, { client_data: { name: "Acme", email: "a@acme.example" } }, "crm-1");
  out.push(describeJob(job), describeJob(await c.job(job.id)), describeJob(await c.retry(job.id)));
  const batch = await c.submitBatch(agency, [{ client_data: { name: "B", email: "b@b.example" } }]);
  const count: number = batch.count;
  const ids: string[] = batch.job_ids;
  out.push(`${count} ${ids.join(",")}`);
  const page = await c.jobs();
  const next: string | null = page.next_cursor;
  out.push(...page.items.map(describeJob), next ?? "");
  out.push(...(await c.logs(job.id)).items.map(describeLog));
  out.push(describeAgency(await c.agency(agency)));
  out.push(...(await c.snapshots(agency)).items.map(describeSnapshot));
  const created = await c.createKey(agency, "crm");
  const secret: string = created.key;
  out.push(secret.slice(0, 4), describeKey(created.api_key));
  const rates = await c.rates();
  const refreshed: string | null = rates.refreshed_at;
  for (const r of rates.items) {
    const rate: number | null = r.success_rate;
    out.push(`${r.agency_id ?? r.niche} ${r.total} ${r.completed} ${r.failed} ${r.cancelled} ${rate}`);
  }
  out.push(refreshed ?? "");
  return out;
}
