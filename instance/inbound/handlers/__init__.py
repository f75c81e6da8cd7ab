"""Inbox handlers: one small function per (activity type, object type), called by the one
`match` in instance/inbound/dispatch.py. They run inside the item's transaction, touch only
the database and the outbound queue, and are idempotent: a redelivered or repeated activity
changes nothing twice (unique rows and counters recounted from rows, never bumped blindly).

    follows.py       Follow, Accept/Reject of our Follows, Undo{Follow}
    interactions.py  Like (and EmojiReact), Announce, their Undos
    notes.py         Create/Update/Delete of Notes
    actors.py        Update of an actor, Delete of an actor, Block
    moderation.py    Flag (reports about our accounts and posts)
    quoting.py       FEP-044f QuoteRequest and its answers (instance/content/quotes.py does
                     the work)
    lookup.py        the local rows an activity refers to
"""
