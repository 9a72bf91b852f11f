// Amplify JS v6 against the booking API, configured as Amplify's documentation configures it for an
// AppSync API with a Cognito user pool: Amplify.configure with API.GraphQL (endpoint, region,
// defaultAuthMode userPool) and Auth.Cognito (userPoolId, userPoolClientId, userPoolEndpoint for a
// pool that is not Cognito's own endpoint), signIn from aws-amplify/auth (SRP), and
// generateClient().graphql from aws-amplify/api for the mutation, the queries and the subscription.
//
// TOKEN_KIND=access is Amplify's default: userPool mode sends the access token. TOKEN_KIND=id sends the
// ID token the way Amplify's documentation offers for custom claims: the GraphQL library option
// `headers` returning Authorization, which HTTP requests and each subscription's `start` carry
// (the real-time handshake keeps the access token: Amplify builds it from fetchAuthSession alone).
//
// Prints one JSON line per step; exit 1 if any failed. Run by test_js_clients.py.

import {
	BOOK,
	bookStep,
	GET,
	MINE,
	ON_STATUS,
	bookingInput,
	cognitoCalls,
	configuration,
	describe,
	finish,
	foreignBookingRefusedStep,
	notRun,
	pushCollector,
	pushConfirmedStep,
	report,
	step,
	tokenKind,
	sessionSteps,
	tokensSentStep,
} from './steps.mjs';

const config = configuration();
// After steps.mjs (the WebSocket global), as a browser app's bundle would have one.
const { Amplify } = await import('aws-amplify');
const { signIn, signOut, fetchAuthSession } = await import('aws-amplify/auth');
const { generateClient, CONNECTION_STATE_CHANGE, ConnectionState } = await import('aws-amplify/api');
const { Hub } = await import('aws-amplify/utils');


Amplify.configure(
	{
		API: {
			GraphQL: {
				endpoint: config.GRAPHQL_URL,
				region: config.REGION,
				defaultAuthMode: 'userPool',
			},
		},
		Auth: {
			Cognito: {
				userPoolId: config.USER_POOL_ID,
				userPoolClientId: config.USER_POOL_CLIENT_ID,
				userPoolEndpoint: config.USER_POOL_ENDPOINT,
			},
		},
	},
	config.TOKEN_KIND === 'id'
		? {
				API: {
					GraphQL: {
						headers: async () => ({
							Authorization: (await fetchAuthSession()).tokens?.idToken?.toString(),
						}),
					},
				},
			}
		: undefined,
);

const client = generateClient();

// 1. A wrong password is refused (before the right one: signIn refuses while a user is signed in).
await step('sign_in_wrong_password', async () => {
	try {
		const result = await signIn({ username: config.USERNAME, password: `${config.PASSWORD}-wrong` });
		return [false, `signed in with a wrong password: ${JSON.stringify(result)}`];
	} catch (error) {
		return [error.name === 'NotAuthorizedException', `${describe(error)} (Cognito: ${cognitoCalls()})`];
	}
});

// 2. The right one signs in over SRP.
const signedIn = await step('sign_in', async () => {
	const result = await signIn({ username: config.USERNAME, password: config.PASSWORD });
	if (!result.isSignedIn) return [false, `next step ${JSON.stringify(result.nextStep)}`];
	const { tokens } = await fetchAuthSession();
	const detail = `id token ${tokenKind(tokens?.idToken?.toString())}, access token ${tokenKind(tokens?.accessToken?.toString())} (Cognito: ${cognitoCalls()})`;
	return [Boolean(tokens?.idToken && tokens?.accessToken), detail, true];
});

const AFTER_SIGN_IN = ['book', 'subscribe', 'push_confirmed', 'get_booking_by_status', 'foreign_booking_refused', 'tokens_sent', 'session_refreshed', 'signed_out'];
if (!signedIn) {
	for (const name of AFTER_SIGN_IN) notRun(name, 'sign_in');
	finish();
}

// 3. processBooking over HTTP.
const booking = await bookStep(() =>
	client.graphql({
		query: BOOK,
		variables: { input: bookingInput(config) },
		authMode: 'userPool',
	}),
);

if (!booking) {
	for (const name of AFTER_SIGN_IN.slice(1, 3)) notRun(name, 'book');
}

// 4. Subscribe to the booking's changes; ready once the server acknowledges the subscription (start_ack:
// Amplify's Hub tells it as the connection state Connected). The saga is held at its payment until then
// (test_js_clients.py), so the push cannot come before the client listens.
let subscription;
const { pushes, pushed, confirmed } = pushCollector();
if (booking) {
	const ready = await step('subscribe', async () => {
		const states = [];
		let stopListening;
		const acknowledged = new Promise(resolve => {
			stopListening = Hub.listen('api', ({ payload }) => {
				if (payload.event === CONNECTION_STATE_CHANGE) {
					states.push(payload.data.connectionState);
					if (payload.data.connectionState === ConnectionState.Connected) resolve();
				}
			});
		});
		const failedEarly = new Promise((_, reject) => {
			subscription = client
				.graphql({ query: ON_STATUS, variables: { id: booking.id }, authMode: 'userPool' })
				.subscribe({
					next: ({ data }) => {
						const change = data?.onBookingStatusChanged;
						pushes.push(change);
						if (change?.status === 'CONFIRMED') confirmed.resolve(change);
					},
					error: error => {
						const problem = new Error(`subscription error: ${describe(error)}`);
						confirmed.reject(problem);
						reject(problem);
					},
				});
		});
		try {
			await Promise.race([acknowledged, failedEarly]);
		} finally {
			stopListening();
		}
		return [true, `connection states ${states.join(' → ')}`, true];
	}, 20_000);

	// 5. The booking's CONFIRMED, pushed.
	await pushConfirmedStep(ready, pushed, pushes, booking);
}

// 6. The customer's confirmed bookings.
if (booking) {
	await step('get_booking_by_status', async () => {
		const { data } = await client.graphql({ query: MINE, authMode: 'userPool' });
		const items = data?.getBookingByStatus?.items ?? [];
		const mine = items.find(item => item.id === booking.id);
		return [mine?.status === 'CONFIRMED', `${items.length} item(s): ${JSON.stringify(items)}`];
	});
} else {
	notRun('get_booking_by_status', 'book');
}

// 7. Another customer's booking is refused.
await foreignBookingRefusedStep(() =>
	client.graphql({
		query: GET,
		variables: { id: config.FOREIGN_BOOKING_ID },
		authMode: 'userPool',
	}),
);

// 8. What Amplify put on the wire for this TOKEN_KIND.
tokensSentStep(config, { handshakeMustMatch: false });

// 9. A forced refresh and the sign-out, as a page open for an hour and then closed.
await sessionSteps(fetchAuthSession, signOut);

subscription?.unsubscribe();
finish();
