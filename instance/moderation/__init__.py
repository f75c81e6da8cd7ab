"""Moderation policy, one home each: which remote domains are blocked, silenced or have their
media rejected (domains.py), and what a suspended account may still do (suspension.py).

The rules here are read by every wing that needs them (the inbox, the fetcher, delivery,
timelines, pages); the actions that federate (an Update on suspension, a Delete of an actor)
live in instance/content/.
"""
