"""Temporary stand-in; to be replaced by the lead's module."""


class BookingError(Exception):
    pass


class PaymentDeclined(BookingError):
    pass


class PaymentUnavailable(BookingError):
    pass


class InvalidPaymentRequest(BookingError):
    pass
