"""The booking service on one machine, with no AWS account, built from `template.yaml`.

One module per emulated piece, so "where does X go offline?" has one answer:

- `template`   reads template.yaml and resolves its intrinsic functions;
- `lambdas`    runs the template's functions in sandbox processes, as Lambda does (`Invoke`);
- `aws`        the AWS endpoint: Lambda to `lambdas`, everything else to moto, DynamoDB atomic;
- `deployer`   creates tables, topic, queue, parameters, user pool and the state machine on moto;
- `payment_gateway`  the embedded Payment API with its ledger;
- `auth`       verifies the user pool's RS256 ID tokens, and mints and verifies per-run HS256 ones;
- `appsync`    executes schema.graphql as AppSync does and calls the direct Lambda resolvers;
- `stack`      puts them together: `with OfflineStack() as stack: ...`.
"""
