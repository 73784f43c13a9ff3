"""Rosetta's ASGI gateway: routes, auth, routing, streaming relay and the Responses encoder."""
