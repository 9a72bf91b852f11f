// What amplify.mjs and apollo.mjs share: their configuration from the environment, one JSON line per
// step on stdout ({"step", "ok", "detail"}), every wait bounded, and a record of the tokens the
// libraries put on the wire (HTTP Authorization, the real-time handshake's header, each `start`).
//
// Import this module before any client library (a dynamic import() of the library after it): Node 20
// has no global WebSocket, and Amplify and aws-appsync-subscription-link call `new WebSocket(…)`.

import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';

const REQUIRED = [
	'GRAPHQL_URL',
	'REGION',
	'USER_POOL_ID',
	'USER_POOL_CLIENT_ID',
	'USER_POOL_ENDPOINT',
	'USERNAME',
	'PASSWORD',
	'FOREIGN_BOOKING_ID',
	'FLIGHT_ID',
	'TOKEN_KIND',
];

/** The run's configuration; exits 2 with a message naming what is missing. */
export function configuration() {
	const missing = REQUIRED.filter(name => !process.env[name]);
	if (missing.length) {
		console.error(`missing environment variables: ${missing.join(', ')}`);
		process.exit(2);
	}
	const config = Object.fromEntries(REQUIRED.map(name => [name, process.env[name]]));
	if (!['id', 'access'].includes(config.TOKEN_KIND)) {
		console.error(`TOKEN_KIND must be id or access, not ${config.TOKEN_KIND}`);
		process.exit(2);
	}
	return config;
}

// ------------------------------------------------------------------ steps
let failed = false;

export function report(step, ok, detail) {
	if (!ok) failed = true;
	process.stdout.write(`${JSON.stringify({ step, ok, detail: String(detail ?? '') })}\n`);
}

export class StepTimeout extends Error {}

/** `promise`, or a StepTimeout after `ms`. */
export function within(ms, promise, what) {
	let timer;
	const timeout = new Promise((_, reject) => {
		timer = setTimeout(
			() => reject(new StepTimeout(`${what}: no answer within ${ms / 1000} s`)),
			ms,
		);
	});
	return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Run one step: `body()` returns [ok, detail, value] (or throws, which fails the step with the error
 * described). Bounded by `ms`. Returns `value` when the step passed, else undefined.
 */
export async function step(name, body, ms = 20_000) {
	try {
		const [ok, detail, value] = await within(ms, Promise.resolve().then(body), name);
		report(name, ok, detail);
		return ok ? value : undefined;
	} catch (error) {
		report(name, false, describe(error));
		return undefined;
	}
}

/** A step that cannot run because an earlier one failed. */
export function notRun(name, because) {
	report(name, false, `not run: ${because} failed`);
}

/** The end: exit 1 if any step failed (sockets and keep-alive timers would keep Node alive). */
export function finish() {
	process.exit(failed ? 1 : 0);
}

/** An error as a line: GraphQL errors (Amplify throws the result, Apollo CombinedGraphQLErrors),
 * service errors (name: message) and the status of an HTTP error. */
export function describe(error) {
	if (error === undefined || error === null) return String(error);
	const errors = graphqlErrors(error);
	if (errors) {
		return errors.map(e => `${e.errorType ?? e.extensions?.code ?? '?'}: ${e.message}`).join('; ');
	}
	const parts = [];
	if (error.name) parts.push(error.name);
	if (error.message) parts.push(error.message);
	const status = error.statusCode ?? error.$metadata?.httpStatusCode;
	if (status) parts.push(`(HTTP ${status})`);
	if (error.bodyText) parts.push(`body ${error.bodyText.slice(0, 300)}`);
	if (error.underlyingError) parts.push(`caused by ${describe(error.underlyingError)}`);
	if (error.cause && error.cause !== error) parts.push(`cause ${describe(error.cause)}`);
	if (parts.length) return parts.join(' ');
	try {
		return JSON.stringify(error).slice(0, 500);
	} catch {
		return String(error);
	}
}

/** The GraphQL errors an error carries, if it is a GraphQL result or wraps one. */
export function graphqlErrors(error) {
	if (Array.isArray(error?.errors) && error.errors.length) return error.errors;
	if (Array.isArray(error?.graphQLErrors) && error.graphQLErrors.length) return error.graphQLErrors;
	return undefined;
}

// ------------------------------------------------------------------ the booking
export const BOOK = `mutation ProcessBooking($input: CreateBookingInput!) {
  processBooking(input: $input) { id status }
}`;
export const ON_STATUS = `subscription OnBookingStatusChanged($id: ID!) {
  onBookingStatusChanged(id: $id) { id customer status bookingReference reason occurredAt sequence }
}`;
export const MINE = `query MyConfirmedBookings {
  getBookingByStatus(status: { eq: "CONFIRMED" }, sortDirection: DESC, limit: 20) {
    items { id status bookingReference outboundFlight { id } }
    nextToken
  }
}`;
export const GET = `query GetBooking($id: ID!) {
  getBooking(id: $id) { id status customer }
}`;

/** processBooking's input as the seed front end sends it: a pre-authorised charge of its own (tok_visa
 * approves), the flight, and an idempotency key so that a retried request is the same booking. */
export function bookingInput(config) {
	const nonce = randomUUID().replaceAll('-', '');
	return {
		paymentToken: `tok_visa_${nonce.slice(0, 12)}`,
		bookingOutboundFlightId: config.FLIGHT_ID,
		idempotencyKey: `js-${nonce}`,
	};
}

// ------------------------------------------------------------------ what goes on the wire
/** The kind of a Cognito JWT ("id" or "access", from token_use), or a description of what it is. */
export function tokenKind(token) {
	if (!token) return 'none';
	try {
		const claims = JSON.parse(Buffer.from(String(token).split('.')[1], 'base64url').toString());
		return claims.token_use ?? 'no token_use';
	} catch {
		return 'not a JWT';
	}
}

export const wire = {
	http: [], // the kind of each Authorization header sent to GRAPHQL_URL
	handshake: [], // {url, protocols, header} of each WebSocket opened
	start: [], // the kind of each `start` message's extensions.authorization.Authorization
	startAcks: [], // the id of each `start_ack` received
	cognito: [], // the operation (X-Amz-Target) and HTTP status of each request to USER_POOL_ENDPOINT
};

/** The Cognito calls made since the last call of this function, e.g. "InitiateAuth 200". */
export function cognitoCalls() {
	return wire.cognito.splice(0).join(', ') || 'none';
}

const startAckWaiters = [];

/** Resolves at the first `start_ack` the server sends on any real-time connection (its id). For a
 * client whose API does not tell it: Apollo Client 4 drops the link's CONNECTED control message
 * (a result without data or error), see apollo.mjs. */
export function startAcknowledged() {
	if (wire.startAcks.length) return Promise.resolve(wire.startAcks[0]);
	return new Promise(resolve => startAckWaiters.push(resolve));
}

function decodeHeaderProtocol(protocols) {
	const header = [].concat(protocols ?? []).find(p => String(p).startsWith('header-'));
	if (!header) return undefined;
	try {
		return JSON.parse(Buffer.from(header.slice('header-'.length), 'base64url').toString());
	} catch {
		return { undecodable: header };
	}
}

/** ws's WebSocket, recording what the clients send in the handshake and in `start`. */
class ObservedWebSocket extends WebSocket {
	constructor(url, protocols, options) {
		super(url, protocols, options);
		wire.handshake.push({
			url: String(url),
			protocols: [].concat(protocols ?? []).map(p =>
				String(p).startsWith('header-') ? 'header-…' : String(p),
			),
			header: decodeHeaderProtocol(protocols),
		});
		this.on('message', (data, isBinary) => {
			if (isBinary) return;
			try {
				const message = JSON.parse(String(data));
				if (message.type === 'start_ack') {
					wire.startAcks.push(message.id);
					startAckWaiters.splice(0).forEach(resolve => resolve(message.id));
				}
			} catch {
				// not JSON: the client reports it
			}
		});
	}

	send(data, ...rest) {
		try {
			const message = JSON.parse(String(data));
			if (message.type === 'start') {
				const authorization = message.payload?.extensions?.authorization ?? {};
				wire.start.push({ kind: tokenKind(authorization.Authorization), keys: Object.keys(authorization) });
			}
		} catch {
			// not JSON: not ours to judge
		}
		return super.send(data, ...rest);
	}
}

globalThis.WebSocket = ObservedWebSocket;

process.on('unhandledRejection', error => {
	report('unexpected', false, `unhandled rejection: ${describe(error)}`);
});

const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init = {}) => {
	const url = typeof input === 'string' ? input : (input?.url ?? String(input));
	const headers = new Headers(init.headers ?? (typeof input === 'object' ? input.headers : undefined));
	if (process.env.GRAPHQL_URL && url.startsWith(process.env.GRAPHQL_URL)) {
		wire.http.push(tokenKind(headers.get('authorization')));
		return realFetch(input, init);
	}
	const target = headers.get('x-amz-target');
	if (process.env.USER_POOL_ENDPOINT && url.startsWith(process.env.USER_POOL_ENDPOINT) && target) {
		const operation = target.split('.').pop();
		try {
			const response = await realFetch(input, init);
			wire.cognito.push(`${operation} ${response.status}`);
			return response;
		} catch (error) {
			wire.cognito.push(`${operation} ${describe(error)}`);
			throw error;
		}
	}
	return realFetch(input, init);
};

/** The `tokens_sent` step: HTTP and each `start` carried the TOKEN_KIND token; the handshake's kind
 * is reported (Amplify always authorizes the connection with the access token in userPool mode). */
export function tokensSentStep(config, { handshakeMustMatch }) {
	const want = config.TOKEN_KIND;
	const handshakeKinds = wire.handshake.map(h => tokenKind(h.header?.Authorization));
	const httpOk = wire.http.length > 0 && wire.http.every(kind => kind === want);
	const startOk = wire.start.length > 0 && wire.start.every(s => s.kind === want);
	const handshakeOk =
		wire.handshake.length > 0 && (!handshakeMustMatch || handshakeKinds.every(kind => kind === want));
	const first = wire.handshake[0];
	const detail = [
		`http ${wire.http.join(',') || 'none'}`,
		`handshake ${handshakeKinds.join(',') || 'none'}`,
		`start ${wire.start.map(s => s.kind).join(',') || 'none'}`,
		first
			? `realtime ${first.url} protocols ${first.protocols.join(',')} header keys ${Object.keys(first.header ?? {}).join(',')}`
			: 'no WebSocket opened',
		wire.start[0] ? `start authorization keys ${wire.start[0].keys.join(',')}` : '',
		`Cognito calls after sign-in: ${cognitoCalls()}`,
	]
		.filter(Boolean)
		.join('; ');
	report('tokens_sent', httpOk && startOk && handshakeOk, detail);
}

/**
 * The session's end as a page lives it: a forced refresh (what Amplify does when the access token
 * expires, an hour in) gives new tokens through GetTokensFromRefreshToken, then signOut revokes the
 * refresh token (RevokeToken) and a refresh after it gets nothing.
 */
export async function sessionSteps(fetchAuthSession, signOut) {
	cognitoCalls(); // what came before is not this step's
	await step('session_refreshed', async () => {
		const before = (await fetchAuthSession()).tokens?.accessToken?.toString();
		const after = (await fetchAuthSession({ forceRefresh: true })).tokens?.accessToken?.toString();
		const calls = cognitoCalls();
		const ok = Boolean(after) && after !== before && calls.includes('GetTokensFromRefreshToken 200');
		return [ok, `Cognito: ${calls}; new access token: ${Boolean(after) && after !== before}`];
	});
	await step('signed_out', async () => {
		await signOut();
		const calls = cognitoCalls();
		return [calls.includes('RevokeToken 200'), `Cognito: ${calls}`];
	});
}

/** Reading another customer's booking (`read()` sends getBooking of FOREIGN_BOOKING_ID) must be refused
 * with `Unauthorized` and no data. */
export async function foreignBookingRefusedStep(read) {
	await step('foreign_booking_refused', async () => {
		try {
			const result = await read();
			return [false, `read: ${JSON.stringify(result.data)}`];
		} catch (error) {
			const errors = graphqlErrors(error);
			const leaked = error?.data?.getBooking;
			return [
				Boolean(errors) && errors[0].errorType === 'Unauthorized' && !leaked,
				describe(error) + (leaked ? ` (and the booking: ${JSON.stringify(leaked)})` : ''),
			];
		}
	});
}

/** The booking's CONFIRMED, pushed (`pushed` resolves with it) within PUSH_WAIT_MS; not run when the
 * subscription was not acknowledged. */
export async function pushConfirmedStep(ready, pushed, pushes, booking) {
	if (!ready) {
		notRun('push_confirmed', 'subscribe');
		return;
	}
	await step(
		'push_confirmed',
		async () => {
			const change = await pushed;
			const ok = change.id === booking.id && Boolean(change.bookingReference);
			return [ok, `pushed ${pushes.map(p => p?.status).join(', ')}: ${JSON.stringify(change)}`];
		},
		PUSH_WAIT_MS,
	);
}

export const PUSH_WAIT_MS = 30_000;

/** processBooking (`send()` sends it): the booking `{id, status}`, or undefined when the step failed. */
export function bookStep(send) {
	return step('book', async () => {
		const { data } = await send();
		const made = data?.processBooking;
		return [Boolean(made?.id), JSON.stringify(made), made];
	});
}

/** Where a subscription's `next` puts the booking's changes: `pushes`, and `pushed`, settled by
 * `confirmed.resolve(change)` at CONFIRMED or `confirmed.reject(error)`. */
export function pushCollector() {
	const confirmed = {};
	const pushed = new Promise((resolve, reject) => {
		confirmed.resolve = resolve;
		confirmed.reject = reject;
	});
	pushed.catch(() => {}); // read by push_confirmed; an error before it is reported by subscribe
	return { pushes: [], pushed, confirmed };
}
