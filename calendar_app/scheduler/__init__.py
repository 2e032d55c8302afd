"""The scheduler: APScheduler with in-memory periodic jobs; the database is the truth.

Several scheduler processes may run: the jobs claim rows in the database, never in the
job store. ``calendar-app scheduler`` runs one in the foreground; with
``CALENDAR_APP_SCHEDULER=embedded`` (the ``make run`` default) the same jobs run in a
background thread of the web process, started once and never inside gunicorn.
"""
