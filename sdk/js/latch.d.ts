// Type declarations for @latchauth/sdk (latch.js). Hand-written; keep in step
// with latch.js.

/** How the server delivers tokens to this client (as registered for its client_id). */
export type Mode = 'cookie' | 'memory';

export interface ClientOptions {
  /**
   * Where Latch is, e.g. `https://auth.example.com`. Empty or omitted: the
   * page's own origin. A trailing slash is ignored.
   */
  baseUrl?: string;
  /**
   * `'cookie'`: access and refresh tokens in HttpOnly cookies, CSRF header on
   * unsafe methods. `'memory'`: access token in a JS variable, sent as
   * `Authorization: Bearer`; refresh token in an HttpOnly cookie.
   */
  mode: Mode;
  /** The registered public client (`client_id` of the login request). */
  clientId?: string;
  /** The fetch to use underneath (default: `globalThis.fetch` at call time). */
  fetch?: typeof fetch;
  /** Name of the Web Lock tabs queue on to refresh. Default: `latch:<baseUrl>:<clientId>`. */
  lockName?: string;
  /**
   * Name of the BroadcastChannel tabs share news on. Default: `latch:<baseUrl>:<clientId>`.
   * `null`: no cross-tab messages.
   */
  channelName?: string | null;
  /**
   * More origins that receive credentials from `client.fetch` (the Bearer
   * token, the CSRF header, `credentials: 'include'`) and get the refresh-and-retry.
   * Always included: the origin of `baseUrl` and the page's own origin.
   */
  origins?: string[];
  /**
   * Name of the CSRF cookie to read. Default: the first present of
   * `__Host-latch_csrf`, `__Secure-latch_csrf`, `latch_csrf`.
   */
  csrfCookieName?: string;
}

/** A frozen snapshot of the session; a new object after every change. */
export interface Session {
  readonly authenticated: boolean;
  /** The server's session id (`s_…`), or null when signed out. */
  readonly sessionId: string | null;
  /**
   * When the current access token expires, in milliseconds since the epoch
   * (local clock), or null when unknown (signed out, or restored through `/v1/me`).
   */
  readonly expiresAt: number | null;
}

export type EventType = 'login' | 'refresh' | 'logout' | 'sessionExpired';

export interface LatchEvent<T extends EventType = EventType> {
  readonly type: T;
  /** The session after the change. */
  readonly session: Session;
  /** True when another tab made the change and this tab learned it over the BroadcastChannel. */
  readonly fromOtherTab: boolean;
}

export interface LatchClient {
  /** Signs in. Rejects with a {@link LatchError} (`invalid_credentials`, `challenge_required` with `challengeId`: see `completeChallenge`, `rate_limited`, `account_locked`, `temporarily_unavailable`, `invalid_request`, `mode_mismatch`), or the fetch error when offline. */
  login(email: string, password: string): Promise<Session>;
  /**
   * Finishes a sign-in that `login` rejected with `challenge_required` (a
   * step-up challenge: the server emailed the user a 6-digit code), with the
   * error's `challengeId` and the code. Resolves like `login`. Rejects with a
   * {@link LatchError}: `invalid_code` (see `attemptsLeft`), `invalid_challenge`
   * (unknown, used, expired or out of attempts: sign in again),
   * `invalid_request`, `csrf_failed`.
   */
  completeChallenge(challengeId: string, code: string): Promise<Session>;
  /**
   * Ends this session on the server and in every tab. Local state is cleared
   * even when the request fails; the promise then rejects with the error.
   */
  logout(): Promise<void>;
  /** Like {@link LatchClient.logout}, through `/v1/auth/logout-all`: every session of the user ends. */
  logoutAll(): Promise<void>;
  /**
   * Picks up a session that survived a page load: cookie mode asks `GET
   * /v1/me` (and refreshes when only the refresh cookie is left); memory mode
   * refreshes once. Resolves null when there is no session.
   */
  restore(): Promise<Session | null>;
  /**
   * A drop-in `fetch`. URLs are passed through as given (relative ones resolve
   * against the page as usual). For trusted origins (see `origins`) it adds
   * the credentials, and on a 401 `invalid_token` refreshes once (single
   * flight, shared with other tabs) and retries once. A 401 after that, or
   * after a failed refresh, is returned as is. Rejects with the network error
   * when the refresh could not reach the server.
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /**
   * Refreshes now, sharing any refresh in flight (here or in another tab).
   * Rejects with a {@link LatchError} when the session is over (`invalid_grant`,
   * `csrf_failed`, `no_session`) or the server is unavailable.
   */
  refresh(): Promise<Session>;
  /** The current session (a frozen snapshot). */
  readonly session: Session;
  readonly mode: Mode;
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<T extends EventType>(type: T, handler: (event: LatchEvent<T>) => void): () => void;
  /** Stops listening to other tabs (closes the BroadcastChannel). The client keeps working in this tab. */
  close(): void;
}

/** An error from the Latch server, or detected by the SDK. */
export class LatchError extends Error {
  constructor(code: string, details?: { status?: number; retryAfter?: number | null; description?: string; challengeId?: string | null; attemptsLeft?: number | null });
  readonly name: 'LatchError';
  /** The server's `error` code, e.g. `invalid_credentials`; `http_error` when the answer was not Latch JSON. */
  readonly code: string;
  /** The HTTP status; 0 when no response was involved. */
  readonly status: number;
  /** Seconds to wait before trying again (from `Retry-After`), or null. */
  readonly retryAfter: number | null;
  /** The server's `error_description`, or ''. */
  readonly description: string;
  /** With `challenge_required`: the challenge to pass to `completeChallenge`; otherwise null. */
  readonly challengeId: string | null;
  /** With `invalid_code`: how many more codes may be tried; otherwise null. */
  readonly attemptsLeft: number | null;
}

export function createClient(options: ClientOptions): LatchClient;
