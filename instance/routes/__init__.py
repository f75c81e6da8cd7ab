"""The federation endpoints: what other servers (and anyone, for public objects) GET and POST.

    wellknown.py  WebFinger, host-meta, NodeInfo
    inbox.py      the inboxes: check, store, 202
    actors.py     actor documents and their collections
    posts.py      Notes, their Creates, counters, lineage, quote stamps
    media.py      our image files
    common.py     content negotiation and the JSON responses every route module uses

Handlers are thin: parse, call a plain function, shape the response. The HTML pages are
instance/web/'s; instance/app.py puts both route tables together.
"""
