"""One thin module per Lambda function: parse the payload, call the domain, return a result."""
