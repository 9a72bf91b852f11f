"""The booking service: the saga's task functions and the domain they share."""
