// api.js: every call to herald's public API, with the admin key the user signed in
// with (kept in sessionStorage: gone when the tab closes).
const KEY = 'herald.adminKey';

export const getKey = () => sessionStorage.getItem(KEY);
export const setKey = (k) => sessionStorage.setItem(KEY, k);
export const clearKey = () => sessionStorage.removeItem(KEY);

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** api(method, path, body?, {key?}) -> parsed JSON (or null). Throws ApiError with the
 *  server's message on a non-2xx answer; a 401 with the session's key signs out. */
export async function api(method, path, body, { key } = {}) {
  const signedIn = key === undefined; // a sign-in attempt passes its key
  if (signedIn) key = getKey();
  const headers = { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' };
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const msg = (json && json.message) || `${method} ${path}: HTTP ${res.status}`;
    if (res.status === 401 && signedIn) window.dispatchEvent(new CustomEvent('herald:unauthorized'));
    throw new ApiError(res.status, msg, json);
  }
  return json;
}

export const get = (p) => api('GET', p);
export const post = (p, b) => api('POST', p, b ?? {});
export const put = (p, b) => api('PUT', p, b);
export const del = (p) => api('DELETE', p);

/** qs({a: 1, b: ''}) -> "?a=1" (empty values left out). */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, v);
  const s = u.toString();
  return s ? `?${s}` : '';
}
