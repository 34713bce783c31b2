// api.js — the REST API (/api/v1) from the browser. The session travels in the
// HttpOnly cookie set at login; unsafe methods echo the readable ghl_csrf
// cookie in X-CSRF-Token. Every failure becomes an ApiError carrying the
// server's {"error": {code, message, details}}.

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const e = (body && body.error) || {};
    super(e.message || (status ? `HTTP ${status}` : 'no answer'));
    this.status = status;
    this.code = e.code || 'error';
    this.details = Array.isArray(e.details) ? e.details : [];
    this.retryAfter = retryAfter || null;
  }
}

let unauthorizedHandler = null;
let csrfFallback = '';

// Called on any 401 (session expired or revoked), except for the login itself.
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

export function rememberCsrf(token) {
  csrfFallback = token || '';
}

function csrfToken() {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === 'ghl_csrf') return decodeURIComponent(v.join('='));
  }
  return csrfFallback;
}

// "?a=1&b=x" from the non-empty entries of params ("" when none).
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {}))
    if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

function failure(status, text, retryAfter, opts) {
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  const err = new ApiError(status, body, retryAfter);
  if (status === 401 && !opts.noAuthRedirect && unauthorizedHandler) unauthorizedHandler(err);
  return err;
}

// One request. body: a value sent as JSON (undefined = none).
// opts: {headers, noAuthRedirect}. Resolves with the parsed answer (null for 204).
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken();
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(`/api/v1${path}`, init);
  } catch (e) {
    throw new ApiError(0, { error: { code: 'network', message: `The agent did not answer (${e.message}): check your connection and that the agent is running, then try again.` } });
  }
  const text = await res.text();
  if (!res.ok) throw failure(res.status, text, res.headers.get('Retry-After'), opts);
  if (!text) return null;
  return JSON.parse(text);
}

// Upload a file as the request body with progress: onProgress(sentBytes,
// totalBytes) while sending, then onProgress(total, total) once sent.
export function upload(path, file, contentType, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/v1${path}`);
    xhr.setRequestHeader('Content-Type', contentType);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('X-CSRF-Token', csrfToken());
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable && onProgress) onProgress(ev.loaded, ev.total);
    };
    xhr.upload.onload = () => onProgress && onProgress(file.size, file.size);
    xhr.onerror = () =>
      reject(new ApiError(0, { error: { code: 'network', message: 'The upload was interrupted: check your connection, then upload the file again.' } }));
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(xhr.responseText ? JSON.parse(xhr.responseText) : null);
        } catch (e) {
          reject(new ApiError(xhr.status, { error: { code: 'bad_answer', message: e.message } }));
        }
      } else {
        reject(failure(xhr.status, xhr.responseText, xhr.getResponseHeader('Retry-After'), {}));
      }
    };
    xhr.send(file);
  });
}

// Every item of a paged list (following next_cursor), up to max items.
// For a load that can overlap itself (a periodic refresh, a filter change):
// each call of the returned function starts a load and returns its
// `superseded()`, true once a newer load has started, so that an older answer
// arriving last does not replace the newer one on the page.
export function newestOnly() {
  let n = 0;
  return () => {
    const mine = ++n;
    return () => mine !== n;
  };
}

export async function fetchAll(path, params = {}, max = 1000) {
  const items = [];
  let cursor = '';
  do {
    const page = await api('GET', path + qs({ ...params, limit: 200, cursor }));
    items.push(...page.items);
    cursor = page.next_cursor || '';
  } while (cursor && items.length < max);
  return items;
}
