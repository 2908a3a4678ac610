"""The SQL store: SQLite and PostgreSQL on SQLAlchemy Core, migrated with Alembic.

One mixin per aggregate of ``store.base``, combined in ``store.SqlStore``:

=================  ======================================================================
``projects``       ``ProjectStore``: projects, protocol and its audit
``runs``           ``RunStore``: runs, lookups by name and id, lineage
``metrics``        ``MetricStore``: points in batches, the summary kept on write
``records``        ``RecordStore``, part: evaluations and artifacts
``notes``          ``RecordStore``, part: notes, their history and full-text search
``decisions``      ``DecisionStore``: decisions, comparisons, ships
``datasets``       ``DatasetStore``: dataset versions and tags
``queries``        ``QueryStore``: runs table lines, ranked pages, counts, sparklines
=================  ======================================================================

``schema`` holds the tables (and the SQL twins of core rules); ``engine`` the
connections, the transaction helper and the migrations.
"""
