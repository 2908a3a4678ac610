"""The application layer: every use case of trialbook, written once.

The CLI, the web UI and its JSON API, the reports, the demo and (later) the team
server's write endpoints call these functions; none of them re-implements a use case.
Each function takes a :class:`~trialbook.api.Book` and plain arguments, applies the rules
of :mod:`trialbook.core` through the book's store, and returns a typed result (a
``TypedDict``, so the JSON keys users rely on are checked by mypy). Sealed test numbers
appear only in what :mod:`trialbook.services.decisions` returns.

One module per noun:

* ``projects``: the projects and their protocol (create, show, set, overview);
* ``runs``: the runs table (ranked, filtered, paged) and one run's view and history;
* ``compare``: runs side by side on one metric;
* ``decisions``: decide (the only reader of sealed numbers), stored decisions, ship;
* ``notes``: a run's note, its draft result line, history and search;
* ``lint``: lint, the noise estimate and run-name suggestions;
* ``datasets``: dataset versions (tag, status, diff, list, show);
* ``artifacts``: a run's artifact files, checked against their digests;
* ``reports``: a project's report, built once and rendered as md, html, csv or json.
"""
