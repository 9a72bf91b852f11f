"""Tools for the people who run the booking service: `python -m booking.ops dlq list|redrive`.

Run from an operator's shell with the operator's credentials, never from a Lambda function: no
handler imports this package, so it adds nothing to a cold start (it ships in the code package only
because `CodeUri: src/` takes the whole folder). See `booking.ops.dlq` and docs/decisions/0010.
"""
