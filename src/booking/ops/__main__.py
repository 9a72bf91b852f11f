"""`python -m booking.ops …`: see `booking.ops.cli`."""

from booking.ops.cli import main

raise SystemExit(main())
