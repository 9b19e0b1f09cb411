"""The explorer: server-rendered pages of the ledger for logged-in users, kept live by /ws/dashboard/.

views.py is thin (fetch, check, call one selector, render); selectors.py holds
every query and says in each docstring which index serves it; search.py
resolves the header's search box; events.py builds the typed events the
engine publishes once per commit to the channel-layer group that
explorer.dashboard fans out to browsers.
"""
