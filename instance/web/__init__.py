"""The HTML pages.

    pages.py          public: home, about, profiles, post permalinks
    login.py          log in and out
    timelines.py      /home, /local, /federated
    compose.py        compose a prompt, watch its job
    follow.py         follow and unfollow
    notifications.py  the notifications page
    post_actions.py   like, boost, remix buttons
    cards.py          a post as the templates show it
    sessions.py       the signed-cookie session
    forms.py          the checks every form post passes (Origin, size, CSRF, login)
    throttle.py       the login throttle
    templating.py     templates and `page()`
    common.py         the login redirect and refusal pages
"""
