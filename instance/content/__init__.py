"""Content: posts and what people do with them. Publishing, the Note JSON of our posts,
who may see what (visibility), follows/likes/boosts, timelines, notifications, counters,
pins, collections, quotes and remix lineage. Everything here runs inside the caller's
transaction and hands anything that must leave the instance to instance.outbound."""
