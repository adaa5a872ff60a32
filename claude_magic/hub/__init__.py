"""claude-magic on JupyterHub: the proxy as a Hub service (``claude-magic-proxy``).

The service holds the key, apart from every user's server: a user's server runs claude-magic's
Jupyter server extension with ``c.ClaudeServer.hub_service_url`` set, and forwards its kernels'
requests here with its own Hub token; the Hub says whose token it is and which groups they are in
(:mod:`.gate`). The proxy core is the extension's (:mod:`claude_magic.server.proxy`): one rate
limiter for the whole Hub, round-robin by user then by kernel; one ledger with per-user budgets and
model policies by group (:mod:`claude_magic.server.policy`); admins read the ledger as JSON and as a
page with a chart of the last 30 days (:mod:`.ledger_page`). :mod:`.app` is the console script.
"""
