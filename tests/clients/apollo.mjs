// Apollo Client with AWS's two AppSync links, as their README configures them for a Cognito user pool:
// createAuthLink({url, region, auth}) and createSubscriptionHandshakeLink({url, region, auth}, httpLink)
// with auth {type: AUTH_TYPE.AMAZON_COGNITO_USER_POOLS, jwtToken}. The links send whatever jwtToken gives:
// here the ID token (TOKEN_KIND=id) or the access token (TOKEN_KIND=access) of the signed-in user.
//
// The links do not sign in: the user signs in with Amplify Auth (signIn, SRP, with the pool's
// userPoolEndpoint), the usual companion of these links, and jwtToken reads the token from
// fetchAuthSession at each request.
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
	startAcknowledged,
	step,
	tokenKind,
	sessionSteps,
	tokensSentStep,
} from './steps.mjs';

const config = configuration();
// After steps.mjs (the WebSocket global).
const { Amplify } = await import('aws-amplify');
const { signIn, signOut, fetchAuthSession } = await import('aws-amplify/auth');
const { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } = await import('@apollo/client');
const { AUTH_TYPE, createAuthLink } = await import('aws-appsync-auth-link');
const { CONTROL_EVENTS_KEY, createSubscriptionHandshakeLink } = await import(
	'aws-appsync-subscription-link'
);


Amplify.configure({
	Auth: {
		Cognito: {
			userPoolId: config.USER_POOL_ID,
			userPoolClientId: config.USER_POOL_CLIENT_ID,
			userPoolEndpoint: config.USER_POOL_ENDPOINT,
		},
	},
});

const url = config.GRAPHQL_URL;
const region = config.REGION;
const auth = {
	type: AUTH_TYPE.AMAZON_COGNITO_USER_POOLS,
	jwtToken: async () => {
		const { tokens } = await fetchAuthSession();
		return (config.TOKEN_KIND === 'id' ? tokens?.idToken : tokens?.accessToken)?.toString();
	},
};
const httpLink = new HttpLink({ uri: url });
const link = ApolloLink.from([
	createAuthLink({ url, region, auth }),
	createSubscriptionHandshakeLink({ url, region, auth }, httpLink),
]);
const client = new ApolloClient({ link, cache: new InMemoryCache() });

// 1. A wrong password is refused.
await step('sign_in_wrong_password', async () => {
	try {
		const result = await signIn({ username: config.USERNAME, password: `${config.PASSWORD}-wrong` });
		return [false, `signed in with a wrong password: ${JSON.stringify(result)}`];
	} catch (error) {
		return [error.name === 'NotAuthorizedException', `${describe(error)} (Cognito: ${cognitoCalls()})`];
	}
});

// 2. The right one signs in.
const signedIn = await step('sign_in', async () => {
	const result = await signIn({ username: config.USERNAME, password: config.PASSWORD });
	if (!result.isSignedIn) return [false, `next step ${JSON.stringify(result.nextStep)}`];
	const token = await auth.jwtToken();
	const detail = `jwtToken gives a token with token_use ${tokenKind(token)} (Cognito: ${cognitoCalls()})`;
	return [tokenKind(token) === config.TOKEN_KIND, detail, true];
});

const AFTER_SIGN_IN = ['book', 'subscribe', 'push_confirmed', 'get_booking_by_status', 'foreign_booking_refused', 'tokens_sent', 'session_refreshed', 'signed_out'];
if (!signedIn) {
	for (const name of AFTER_SIGN_IN) notRun(name, 'sign_in');
	finish();
}

// 3. processBooking over HTTP (the auth link adds Authorization).
const booking = await bookStep(() =>
	client.mutate({
		mutation: gql(BOOK),
		variables: { input: bookingInput(config) },
	}),
);

if (!booking) {
	for (const name of AFTER_SIGN_IN.slice(1, 3)) notRun(name, 'book');
}

// 4. Subscribe; ready at the server's start_ack. The subscription link passes start_ack on as a
// control message (extensions.controlMsgType CONNECTED, when the context asks for control events), but
// Apollo Client 4 drops a result with neither data nor error (core/QueryManager.js), so the script
// reads start_ack on the socket itself (steps.mjs). The saga is held at its payment until then
// (test_js_clients.py), so the push cannot come before the client listens.
let subscription;
const { pushes, pushed, confirmed } = pushCollector();
if (booking) {
	const ready = await step('subscribe', async () => {
		const failed = new Promise((_, reject) => {
			subscription = client
				.subscribe({
					query: gql(ON_STATUS),
					variables: { id: booking.id },
					context: { controlMessages: { [CONTROL_EVENTS_KEY]: true } },
				})
				.subscribe({
					next: result => {
						if (result.error) {
							const problem = new Error(`subscription error: ${describe(result.error)}`);
							confirmed.reject(problem);
							reject(problem);
							return;
						}
						if (result.extensions?.controlMsgType) return; // were Apollo to pass it on
						const change = result.data?.onBookingStatusChanged;
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
		const id = await Promise.race([startAcknowledged(), failed]);
		return [true, `start_ack ${id}`, true];
	}, 20_000);

	// 5. The booking's CONFIRMED, pushed.
	await pushConfirmedStep(ready, pushed, pushes, booking);
}

// 6. The customer's confirmed bookings.
if (booking) {
	await step('get_booking_by_status', async () => {
		const { data } = await client.query({ query: gql(MINE), fetchPolicy: 'no-cache' });
		const items = data?.getBookingByStatus?.items ?? [];
		const mine = items.find(item => item.id === booking.id);
		return [mine?.status === 'CONFIRMED', `${items.length} item(s): ${JSON.stringify(items)}`];
	});
} else {
	notRun('get_booking_by_status', 'book');
}

// 7. Another customer's booking is refused (errorPolicy none: Apollo throws the GraphQL errors).
await foreignBookingRefusedStep(() =>
	client.query({
		query: gql(GET),
		variables: { id: config.FOREIGN_BOOKING_ID },
		fetchPolicy: 'no-cache',
	}),
);

// 8. What the links put on the wire: the TOKEN_KIND token everywhere, the handshake included.
tokensSentStep(config, { handshakeMustMatch: true });

// 9. A forced refresh and the sign-out, as a page open for an hour and then closed.
await sessionSteps(fetchAuthSession, signOut);

subscription?.unsubscribe();
finish();
