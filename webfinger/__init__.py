"""RFC 7033 WebFinger: the server-side document builder and the client lookup.

`server.jrd_for(resource, lookup, ...)` answers a resource query from a lookup callback;
`client.finger(client, "user@host")` resolves a handle to an actor URL. No web framework or
database imports here: the instance package wires them to its routes and storage.
"""
