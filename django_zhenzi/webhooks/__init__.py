"""Delivery reports pushed by the provider: ``parser`` reads a request's body into reports (the one
place that assumes the unpublished format), ``views`` is the callback view that stores them."""
