"""`eib farm`: build many plans on many machines through Celery and Redis.

`submit` compiles every plan locally and sends one Celery task per plan to
the queue of its architecture; `worker` runs a Celery worker whose task runs
the plan with the executor in a child process; `status` reads what the
broker and result backend know.  Redelivered or duplicate tasks are made
idempotent by the plan digest: a marker object written last at the publish
target says "built", and a Redis lock keeps two workers from building the
same digest at once.  No scheduler of our own: Celery delivers, Redis keeps.
"""
